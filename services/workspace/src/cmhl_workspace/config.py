"""Workspace settings (env prefix CMHL_WORKSPACE_)."""

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from cmhl_servicekit.settings import HttpSettings

URL = r"^https?://[^\s]+$"


class WorkspaceSettings(HttpSettings):
    model_config = SettingsConfigDict(env_prefix="CMHL_WORKSPACE_", extra="ignore", frozen=True)

    http_port: int = 8006
    public_url: str = Field(
        default="http://127.0.0.1:8006",
        pattern=URL,
        description="Where browsers reach the workspace; the sign-in redirect derives from it. "
        "https, or http on 127.0.0.1/localhost only: the cookies are Secure",
    )
    mongo_uri: SecretStr = Field(
        min_length=1, description="Where sessions are kept (no PHI), as the workspace's own user"
    )
    mongo_database: str = "cmhl_workspace"
    referral_url: str = Field(pattern=URL)
    followup_url: str = Field(pattern=URL)
    training_url: str = Field(pattern=URL)
    placement_url: str = Field(pattern=URL)
    notifications_url: str = Field(pattern=URL)
    oidc_client_id: str = Field(default="cmhl-workspace", min_length=1)
    session_key: str = Field(
        min_length=44,
        description="base64 of 32 random bytes: seals the users' tokens in the session store",
    )
    idle_minutes: int = Field(default=15, ge=1, le=120, description="Signed out after this idle")
    session_hours: float = Field(default=10, gt=0, le=24, description="Longest session")
    api_timeout_seconds: float = Field(default=10, gt=0)
