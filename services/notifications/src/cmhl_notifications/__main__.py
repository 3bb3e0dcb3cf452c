"""`python -m cmhl_notifications`: run the notifications service."""

from cmhl_notifications.bootstrap import SERVICE, build
from cmhl_notifications.config import NotificationSettings
from cmhl_servicekit.serve import run_service

if __name__ == "__main__":
    run_service(NotificationSettings, build, SERVICE)
