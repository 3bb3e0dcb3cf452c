"""`python -m cmhl_reporting`: run the reporting service."""

from cmhl_reporting.bootstrap import SERVICE, build
from cmhl_reporting.config import ReportingSettings
from cmhl_servicekit.serve import run_service

if __name__ == "__main__":
    run_service(ReportingSettings, build, SERVICE)
