"""The settings every service shares; each service subclasses it with its own env prefix."""

from dataclasses import fields
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cmhl_servicekit.audit import AUDIT_DATABASE
from cmhl_servicekit.auth import ClaimNames, TokenSettings, token_settings_from
from cmhl_servicekit.kafka import KafkaAccess, SecurityProtocol

S = TypeVar("S", bound="HttpSettings")


class HttpSettings(BaseSettings):
    """What every process that answers HTTP shares: where it listens and whose tokens it trusts.
    Required settings have no default, so a missing one stops the process at start with
    pydantic's message naming the variable."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    http_host: str = "127.0.0.1"
    http_port: int = Field(ge=1, le=65535)
    log_level: str = "INFO"
    auth_issuer: str = Field(
        pattern=r"^https?://",
        description="The OpenID Connect issuer URL; its keys come from its discovery document",
    )
    auth_discovery_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Where the services reach the issuer when that differs from the issuer URL "
        "(a container network's name for it); the issuer URL itself by default",
    )
    auth_audience: str = Field(default="cmhl", min_length=1)
    auth_clock_skew_seconds: int = Field(default=30, ge=0, le=300)
    auth_claims: dict[str, str] = Field(
        default_factory=dict,
        description="Claim names where the provider differs from Keycloak's realm, e.g. "
        '{"roles": "realm_access.roles", "subject": "oid"} (auth.ClaimNames)',
    )
    auth_refused_clients: list[str] = Field(
        default=["cmhl-test"],
        description="Client ids whose tokens are refused: the local stack's password-grant "
        "test client everywhere but the local stack",
    )
    max_body_bytes: int = 1_048_576
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="The OpenTelemetry collector's OTLP/HTTP base URL (traces go to "
        "<url>/v1/traces); no traces are recorded or exported when unset",
    )
    time_zone: str = Field(
        default="America/Chicago",
        description="The program's time zone: its days (a consent's expiry, a report's day) "
        "end at midnight here, and pages show times in it",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @field_validator("auth_claims")
    @classmethod
    def _known_claims(cls, value: dict[str, str]) -> dict[str, str]:
        known = {f.name for f in fields(ClaimNames)}
        if unknown := sorted(set(value) - known):
            raise ValueError(f"unknown claim roles {unknown}; known: {sorted(known)}")
        return value

    def token_settings(
        self, *, audience: str | None = None, refused_clients: list[str] | None = None
    ) -> TokenSettings:
        """How this process checks tokens from its issuer: by default access tokens for the
        services' audience; an ID token names the client it was issued to instead."""
        return token_settings_from(
            issuer=self.auth_issuer,
            audience=audience or self.auth_audience,
            clock_skew_seconds=self.auth_clock_skew_seconds,
            claims=self.auth_claims,
            refused_clients=(
                self.auth_refused_clients if refused_clients is None else refused_clients
            ),
        )


class ServiceSettings(HttpSettings):
    """A back-end service: HTTP plus its broker and database."""

    kafka_bootstrap: str = Field(min_length=1, description="host:port[,host:port]")
    kafka_username: str = Field(min_length=1, description="This service's Kafka principal")
    kafka_password: SecretStr
    kafka_security_protocol: SecurityProtocol = Field(
        default="SASL_SSL", description="SASL_SSL; SASL_PLAINTEXT on a loopback-only broker"
    )
    kafka_ssl_cafile: str | None = Field(
        default=None, description="CA bundle for the brokers' certificates (system CAs if unset)"
    )
    mongo_uri: SecretStr = Field(
        min_length=1,
        description="mongodb://user:password@host:port/: this service's own database user",
    )
    mongo_database: str = Field(min_length=1)
    audit_database: str = Field(
        default=AUDIT_DATABASE,
        min_length=1,
        description="The database every service appends its audit entries to",
    )
    consumer_group_prefix: str = Field(
        default="cmhl",
        pattern=r"^[a-z0-9-]+$",
        description="First part of every consumer group id; tests isolate themselves with it",
    )

    def kafka_access(self) -> KafkaAccess:
        return KafkaAccess(
            self.kafka_bootstrap,
            self.kafka_username,
            self.kafka_password.get_secret_value(),
            self.kafka_security_protocol,
            self.kafka_ssl_cafile,
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
