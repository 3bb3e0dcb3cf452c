"""`python -m cmhl_training`: run the training service."""

from cmhl_servicekit.serve import run_service
from cmhl_training.bootstrap import SERVICE, build
from cmhl_training.config import TrainingSettings

if __name__ == "__main__":
    run_service(TrainingSettings, build, SERVICE)
