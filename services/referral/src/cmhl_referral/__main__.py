"""`python -m cmhl_referral`: run the referral service."""

from cmhl_referral.bootstrap import SERVICE, build
from cmhl_referral.config import ReferralSettings
from cmhl_servicekit.serve import run_service

if __name__ == "__main__":
    run_service(ReferralSettings, build, SERVICE)
