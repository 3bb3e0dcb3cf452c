"""`python -m cmhl_placement`: run the placement service."""

from cmhl_placement.bootstrap import SERVICE, build
from cmhl_placement.config import PlacementSettings
from cmhl_servicekit.serve import run_service

if __name__ == "__main__":
    run_service(PlacementSettings, build, SERVICE)
