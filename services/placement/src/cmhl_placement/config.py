"""Placement service settings (env prefix CMHL_PLACEMENT_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cmhl_servicekit.settings import ServiceSettings


class PlacementSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CMHL_PLACEMENT_", extra="ignore", frozen=True)

    http_port: int = 8005
    mongo_database: str = "cmhl_placement"
    stale_after_hours: float = Field(
        default=12.0, gt=0, description="Bed numbers older than this are stale"
    )
    timer_scan_seconds: float = Field(default=30.0, gt=0)
    seed_demo_facilities: bool = Field(
        default=False,
        description="List the demo facilities at start (tests, the dev overlay); `make up` "
        "posts them through the registry API instead",
    )
    referral_url: str = Field(
        pattern=r"^https?://[^\s]+$",
        description="The referral service: a bed search is opened only for a referral the "
        "caller may see there, and takes the person from it",
    )
