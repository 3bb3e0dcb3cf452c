"""Referral service settings (env prefix CMHL_REFERRAL_)."""

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from cmhl_referral.domain.registry import Strategy
from cmhl_servicekit.settings import ServiceSettings


class ReferralSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CMHL_REFERRAL_", extra="ignore", frozen=True)

    http_port: int = 8001
    mongo_database: str = "cmhl_referral"
    pseudonym_key: SecretStr = Field(description="HMAC key that turns identifiers into person ids")
    encryption_key: SecretStr = Field(description="base64 of 32 bytes; seals identifiers at rest")
    assignment_strategy: Strategy = Field(
        default=Strategy.ROUND_ROBIN,
        description="How a CMHC's active liaisons share its new referrals: round_robin (a "
        "counter shared by every replica) or least_loaded (fewest open referrals)",
    )
    kafka_feedback_agencies: list[str] = Field(
        default=[],
        description="Agencies on Kafka: each reads its referral feedback and sends its "
        "submissions on topics of its own (deploy/topics.toml [agency_topics], which must list "
        "the same ids; ADR 0008, 0010)",
    )
