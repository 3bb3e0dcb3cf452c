"""The integration-event envelope: header, derived topic names, deterministic event ids."""

import re
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

# Fixed namespace for UUIDv5 event ids: changing it would change every id and break dedupe.
EVENT_ID_NAMESPACE = uuid.UUID("6f1f3f4e-2c1a-5b7e-9d1e-0c4d5a6b7c8d")


def deterministic_event_id(*parts: str) -> uuid.UUID:
    """An event id derived from what the event is about, so a retry, a relay crash or a second
    replica emit the *same* id and every consumer can drop the duplicate."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, "\x1f".join(parts))


# Every date-time the system takes in lies within these years. Checked before any conversion:
# near year 1 or 9999 an offset or a day's rounding overflows Python's datetime (a 500 where a
# 422 naming the rule belongs), and no referral, follow-up or training is dated outside them.
EARLIEST_YEAR = 1900
LATEST_YEAR = 2100


def within_bounds(value: datetime) -> datetime:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"date-times must lie between {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


BoundedDatetime = Annotated[datetime, AfterValidator(within_bounds)]


def _date_within_bounds(value: date) -> date:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"dates must lie between {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


BoundedDate = Annotated[date, AfterValidator(_date_within_bounds)]
"""A day between 1900 and 2100: a day's arithmetic near year 1 or 9999 would overflow."""


def _month_within_bounds(value: str) -> str:
    if not EARLIEST_YEAR <= int(value[:4]) < LATEST_YEAR:
        raise ValueError(f"months must lie between {EARLIEST_YEAR} and {LATEST_YEAR - 1}")
    return value


YearMonth = Annotated[
    str,
    Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="A month, as YYYY-MM"),
    AfterValidator(_month_within_bounds),
]
"""A calendar month within the years every date-time lies in: checked before any date is made
from it, so a year 0 or 9999 is a 422, never an error in a conversion."""
"""A date-time between 1900 and 2100, with or without a zone (query windows that default to UTC)."""
UtcDatetime = Annotated[AwareDatetime, AfterValidator(within_bounds), AfterValidator(_to_utc)]
"""A date-time with a zone, between 1900 and 2100, normalised to UTC."""

_WORD = re.compile(r"(?<!^)(?=[A-Z])")
_VERSION = re.compile(r"V(\d+)$")


class IntegrationEvent(BaseModel):
    """Base of every wire event: immutable, tolerant of fields added by newer minor versions."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    CONTEXT: ClassVar[str]
    PERSONAL_FIELDS: ClassVar[frozenset[str]] = frozenset()
    """Top-level fields that identify or describe a person (a name, a birth date, a narrative):
    never copied into a dead letter, whose topic is read by operators."""
    """The bounded context that owns the event; the first part of its topic."""

    event_id: uuid.UUID
    event_type: str
    schema_version: int
    occurred_at: UtcDatetime
    producer: str = Field(min_length=1, max_length=64)
    correlation_id: str = Field(min_length=1, max_length=128)
    causation_id: str | None = Field(default=None, max_length=128)

    @classmethod
    def event_name(cls) -> str:
        """`ReferralCreatedV1` -> `referral-created`."""
        base = _VERSION.sub("", cls.__name__)
        return _WORD.sub("-", base).lower()

    @classmethod
    def major_version(cls) -> int:
        match = _VERSION.search(cls.__name__)
        if match is None:
            raise TypeError(f"{cls.__name__} must end in V<major>")
        return int(match.group(1))

    @classmethod
    def topic(cls) -> str:
        """Topics are derived, never typed: `cmhl.<context>.<event>.v<major>`."""
        return f"cmhl.{cls.CONTEXT}.{cls.event_name()}.v{cls.major_version()}"

    @classmethod
    def dlq_topic(cls) -> str:
        return f"{cls.topic()}.dlq"

    def destination(self) -> str:
        """The topic this event is published to: its type's, unless the type routes each event
        to a topic of its own (an agency's, for instance)."""
        return type(self).topic()

    @classmethod
    def create(
        cls,
        *,
        about: tuple[str, ...],
        producer: str,
        correlation_id: str,
        causation_id: str | None = None,
        occurred_at: datetime | None = None,
        **fields: Any,
    ) -> Self:
        """Build an event whose id is derived from `about` (the aggregate id and the fact)."""
        return cls(
            event_id=deterministic_event_id(cls.event_name(), *about),
            event_type=cls.event_name(),
            schema_version=cls.major_version(),
            occurred_at=occurred_at or datetime.now(UTC),
            producer=producer,
            correlation_id=correlation_id,
            causation_id=causation_id,
            **fields,
        )

    def kafka_key(self) -> bytes:
        """The aggregate id, so one aggregate's events stay in order on one partition."""
        raise NotImplementedError
