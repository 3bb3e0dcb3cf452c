"""Reporting service settings (env prefix CMHL_REPORTING_)."""

from pydantic_settings import SettingsConfigDict

from cmhl_servicekit.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CMHL_REPORTING_", extra="ignore", frozen=True)

    http_port: int = 8004
    mongo_database: str = "cmhl_reporting"
