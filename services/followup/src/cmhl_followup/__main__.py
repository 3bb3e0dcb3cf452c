"""`python -m cmhl_followup`: run the followup service."""

from cmhl_followup.bootstrap import SERVICE, build
from cmhl_followup.config import FollowUpSettings
from cmhl_servicekit.serve import run_service

if __name__ == "__main__":
    run_service(FollowUpSettings, build, SERVICE)
