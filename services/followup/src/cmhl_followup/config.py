"""Follow-up service settings (env prefix CMHL_FOLLOWUP_)."""

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from cmhl_followup.domain.policy import DEFAULT_GRACE, DEFAULT_OFFSETS_DAYS
from cmhl_servicekit.settings import ServiceSettings


class FollowUpSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CMHL_FOLLOWUP_", extra="ignore", frozen=True)

    http_port: int = 8002
    mongo_database: str = "cmhl_followup"
    offsets_days: tuple[int, ...] = Field(default=DEFAULT_OFFSETS_DAYS, min_length=1)
    grace_hours: float = Field(
        default=DEFAULT_GRACE.total_seconds() / 3600,
        gt=0,
        description="How long after its due time a follow-up without an outcome is overdue",
    )
    due_scan_seconds: float = Field(default=5.0, gt=0)

    @field_validator("offsets_days")
    @classmethod
    def _distinct_positive_days(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if any(d <= 0 for d in days) or len(set(days)) != len(days):
            raise ValueError(
                "offsets_days must be distinct whole days after the referral, e.g. [7, 30, 90]"
            )
        return tuple(sorted(days))
