"""Reporting service settings (env prefix CMHL_REPORTING_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cmhl_servicekit.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CMHL_REPORTING_", extra="ignore", frozen=True)

    http_port: int = 8004
    mongo_database: str = "cmhl_reporting"
    view_refresh_seconds: float = Field(
        default=0.5, ge=0, description="Reads follow the views' segment chains at most this often"
    )
    grid_refresh_seconds: float = Field(
        default=300,
        ge=0,
        description="The publication grid (what the public and metrics consumers see) is "
        "suppressed anew from changed views at most this often; it takes seconds at full history",
    )
