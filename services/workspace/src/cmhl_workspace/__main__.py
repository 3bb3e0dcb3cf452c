"""`python -m cmhl_workspace`: run the workspace."""

from cmhl_servicekit.serve import run_service
from cmhl_workspace.bootstrap import SERVICE, build
from cmhl_workspace.config import WorkspaceSettings

if __name__ == "__main__":
    run_service(WorkspaceSettings, build, SERVICE)
