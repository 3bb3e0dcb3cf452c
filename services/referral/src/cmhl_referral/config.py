"""Referral service settings (env prefix CMHL_REFERRAL_)."""

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from cmhl_servicekit.settings import ServiceSettings


class ReferralSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CMHL_REFERRAL_", extra="ignore", frozen=True)

    http_port: int = 8001
    mongo_database: str = "cmhl_referral"
    pseudonym_key: SecretStr = Field(description="HMAC key that turns identifiers into person ids")
    encryption_key: SecretStr = Field(description="base64 of 32 bytes; seals identifiers at rest")
    kafka_feedback_agencies: list[str] = Field(
        default=[],
        description="Agencies on Kafka: each reads its referral feedback and sends its "
        "submissions on topics of its own (deploy/topics.toml [agency_topics], which must list "
        "the same ids; ADR 0008, 0010)",
    )
