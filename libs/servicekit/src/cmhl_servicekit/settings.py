"""The settings every service shares; each service subclasses it with its own env prefix."""

from typing import TypeVar

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound="ServiceSettings")


class ServiceSettings(BaseSettings):
    """Infrastructure and auth settings. Required ones have no default, so a missing one stops the
    service at start with pydantic's message naming the variable."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    kafka_bootstrap: str = Field(min_length=1, description="host:port[,host:port]")
    mongo_uri: str = Field(min_length=1, description="mongodb://host:port/")
    mongo_database: str = Field(min_length=1)
    audit_database: str = Field(
        default="cmhl_audit",
        min_length=1,
        description="The database every service appends its audit entries to",
    )
    http_host: str = "127.0.0.1"
    http_port: int = Field(ge=1, le=65535)
    log_level: str = "INFO"
    auth_issuer: str = "cmhl-local"
    auth_audience: str = "cmhl"
    auth_signing_key: SecretStr = Field(
        min_length=32, description="HS256 key for liaison/supervisor tokens"
    )
    max_body_bytes: int = 1_048_576
    consumer_group_prefix: str = Field(
        default="cmhl",
        pattern=r"^[a-z0-9-]+$",
        description="First part of every consumer group id; tests isolate themselves with it",
    )


def load_settings(settings_class: type[S]) -> S:
    """Read settings from the environment, or stop with the variables that are missing or wrong."""
    try:
        return settings_class()
    except ValidationError as exc:
        prefix = settings_class.model_config.get("env_prefix", "")
        problems = [
            f"  {prefix}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        ]
        raise SystemExit(
            f"{settings_class.__name__}: cannot start, settings missing or invalid:\n"
            + "\n".join(problems)
            + "\nSet them in the environment (deploy/local/stack.py shows the local values)."
        ) from None
