"""Notifications service settings (env prefix CMHL_NOTIFICATIONS_)."""

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from cmhl_servicekit.settings import ServiceSettings


class NotificationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CMHL_NOTIFICATIONS_", extra="ignore", frozen=True)

    http_port: int = 8007
    mongo_database: str = "cmhl_notifications"
    link_base_url: str = Field(
        default="http://127.0.0.1:8006",
        pattern=r"^https?://[^\s]+$",
        description="The workspace's address as liaisons open it: every notification is a link "
        "into it (its public_url)",
    )
    smtp_host: str = Field(default="127.0.0.1", min_length=1)
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_starttls: bool = Field(
        default=False, description="Upgrade with STARTTLS (a relay outside the cluster needs it)"
    )
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = Field(default="CMHL <no-reply@cmhl.example.org>", min_length=3)
    mail_scan_seconds: float = Field(default=5.0, gt=0, description="How often mail goes out")
