"""The v1 wire events of the CMHL platform. Internal events carry a pseudonymous person id only."""

import unicodedata
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, ClassVar, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_contracts.envelope import EARLIEST_YEAR, IntegrationEvent, UtcDatetime
from cmhl_contracts.vocabulary import (
    ContactPlace,
    CourtType,
    FeedbackStatus,
    FollowUpOutcome,
    PersonLocation,
    PresentingNeed,
    ReferralSource,
    ReferralStatus,
)


def _known_county(value: str) -> str:
    if value not in MISSOURI_COUNTIES:
        raise ValueError("not a Missouri county FIPS code (29001-29229 or 29510)")
    return value


CountyFips = Annotated[str, Field(pattern=r"^29\d{3}$"), AfterValidator(_known_county)]
# Pseudonymous ids are hex digests of a keyed hash: never a name, never reversible without the key.
PseudonymousId = Annotated[str, Field(pattern=r"^[0-9a-f]{32,64}$")]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


def _no_control_characters(value: str) -> str:
    # Control characters and lone surrogates in a name break logs, CSV and the pseudonym's
    # normalisation; no person's name has them.
    if any(unicodedata.category(c) in {"Cc", "Cs"} for c in value):
        raise ValueError("names may not contain control characters")
    return value


def _born_in_the_past(value: date) -> date:
    if value.year < EARLIEST_YEAR or value > datetime.now(UTC).date():
        raise ValueError(f"birth_date must be a past date, from {EARLIEST_YEAR} on")
    return value


PersonName = Annotated[
    str, Field(min_length=1, max_length=100), AfterValidator(_no_control_characters)
]

# Invisible to a reader: control, format (zero-width), surrogate, private-use and unassigned.
_UNREADABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def _readable(value: str) -> str:
    # Text that people read in lists, forms and CSV files: what they see is all there is.
    if any(unicodedata.category(c) in _UNREADABLE for c in value):
        raise ValueError("text may not contain control or invisible characters")
    if not value.strip():
        raise ValueError("text must not be blank")
    return value


ReadableText = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_readable)]
"""A short text people read (a title, a consent's purpose): visible characters only."""
BirthDate = Annotated[date, AfterValidator(_born_in_the_past)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReferringAgency(_Strict):
    agency_id: Identifier
    source: ReferralSource
    court_type: CourtType | None = None

    @model_validator(mode="after")
    def _court_type_only_for_courts(self) -> "ReferringAgency":
        if (self.source is ReferralSource.COURT) != (self.court_type is not None):
            raise ValueError("court_type is required for a court and only for a court")
        return self


class PersonIdentifiers(_Strict):
    """What an agency knows about the person. Travels only on the restricted agency intake topic
    and is reduced to a pseudonymous person id by the referral service at once."""

    given_name: PersonName
    family_name: PersonName
    birth_date: BirthDate
    agency_person_ref: str | None = Field(default=None, max_length=64)


class AgencyReferralSubmittedV1(IntegrationEvent):
    """An agency's records system submitted a referral to a liaison."""

    CONTEXT: ClassVar[str] = "agency"
    PERSONAL_FIELDS: ClassVar[frozenset[str]] = frozenset({"person", "narrative"})

    agency: ReferringAgency
    agency_reference: Identifier = Field(description="The agency's own id for this referral")
    officer_reference: Identifier | None = None
    county_fips: CountyFips
    primary_need: PresentingNeed
    other_needs: list[PresentingNeed] = Field(default_factory=list, max_length=4)
    person_location: PersonLocation
    person: PersonIdentifiers
    narrative: str | None = Field(default=None, max_length=4000)
    referred_at: UtcDatetime

    def kafka_key(self) -> bytes:
        return f"{self.agency.agency_id}:{self.agency_reference}".encode()

    @classmethod
    def agency_topic(cls, agency_id: str) -> str:
        """An agency on Kafka sends on a topic of its own, which only its principal may write:
        the topic, not the message, says which agency sent it (ADR 0010)."""
        return f"{cls.topic()}.{agency_id}"

    @classmethod
    def sender_of(cls, topic: str) -> str | None:
        """The agency whose own topic `topic` is, or None (the shared topic)."""
        prefix = f"{cls.topic()}."
        return topic.removeprefix(prefix) if topic.startswith(prefix) else None


class ReferralCreatedV1(IntegrationEvent):
    """A referral from law enforcement or a court was received and assigned to a liaison."""

    CONTEXT: ClassVar[str] = "referral"

    referral_id: uuid.UUID
    person_id: PseudonymousId
    agency_id: Identifier
    source: ReferralSource
    court_type: CourtType | None = None
    county_fips: CountyFips
    primary_need: PresentingNeed
    other_needs: list[PresentingNeed] = Field(default_factory=list)
    person_location: PersonLocation
    liaison_id: Identifier
    cmhc_id: Identifier
    referred_at: UtcDatetime
    repeat_involvement: bool = Field(
        description="The same person had another referral in the 90 days before this one"
    )
    part2_consent: bool = False
    imported: bool = Field(
        default=False,
        description="Loaded from the program's earlier records (a history import), not received "
        "now: its status changes follow as events of their own, with their own dates",
    )
    status_at_import: ReferralStatus | None = Field(
        default=None, description="An imported referral's status as the import states it"
    )

    def kafka_key(self) -> bytes:
        return str(self.referral_id).encode()


class ReferralStatusChangedV1(IntegrationEvent):
    """A referral moved to another lifecycle status."""

    CONTEXT: ClassVar[str] = "referral"

    referral_id: uuid.UUID
    person_id: PseudonymousId
    liaison_id: Identifier
    cmhc_id: Identifier
    from_status: ReferralStatus
    to_status: ReferralStatus
    sequence: int = Field(ge=1, description="Position of this change in the referral's history")
    changed_at: UtcDatetime
    referred_at: UtcDatetime
    reason: str | None = Field(default=None, max_length=64)
    appointment_at: UtcDatetime | None = Field(
        default=None, description="When the appointment is, for `appointment_scheduled`"
    )

    def kafka_key(self) -> bytes:
        return str(self.referral_id).encode()


class ReferralContactAttemptedV1(IntegrationEvent):
    """A liaison tried to reach the referred person (in detention, hospital or the community)."""

    CONTEXT: ClassVar[str] = "referral"

    referral_id: uuid.UUID
    person_id: PseudonymousId
    liaison_id: Identifier
    cmhc_id: Identifier
    sequence: int = Field(ge=1, description="Position of this attempt in the referral's history")
    attempted_at: UtcDatetime
    referred_at: UtcDatetime
    place: ContactPlace
    reached: bool

    def kafka_key(self) -> bytes:
        return str(self.referral_id).encode()


class ReferralReassignedV1(IntegrationEvent):
    """A referral was handed to another liaison."""

    CONTEXT: ClassVar[str] = "referral"

    referral_id: uuid.UUID
    person_id: PseudonymousId
    sequence: int = Field(ge=1)
    from_liaison_id: Identifier
    to_liaison_id: Identifier
    cmhc_id: Identifier
    reassigned_at: UtcDatetime

    def kafka_key(self) -> bytes:
        return str(self.referral_id).encode()


FollowUpKind = Literal["scheduled_check", "appointment_check", "ad_hoc"]
FollowUpCancelReason = Literal["referral_closed", "appointment_moved"]


class _FollowUpEvent(IntegrationEvent):
    """What every follow-up event is about; keyed by the referral, so one referral's follow-up
    events stay in order on one partition."""

    CONTEXT: ClassVar[str] = "followup"

    follow_up_id: uuid.UUID
    referral_id: uuid.UUID
    liaison_id: Identifier
    due_at: UtcDatetime
    referred_at: UtcDatetime

    def kafka_key(self) -> bytes:
        return str(self.referral_id).encode()


class FollowUpScheduledV1(_FollowUpEvent):
    """A follow-up with a referred person was scheduled."""

    person_id: PseudonymousId
    kind: FollowUpKind


class FollowUpDueV1(_FollowUpEvent):
    """A follow-up came due: the assigned liaison should contact the person."""


class FollowUpOverdueV1(_FollowUpEvent):
    """A due follow-up had no outcome recorded within the grace period."""

    overdue_at: UtcDatetime = Field(description="The end of the grace period after due_at")


class FollowUpCompletedV1(_FollowUpEvent):
    """A liaison recorded the outcome of a follow-up."""

    outcome: FollowUpOutcome
    completed_at: UtcDatetime
    overdue: bool = Field(description="Recorded after the grace period past its due time")


class FollowUpReassignedV1(_FollowUpEvent):
    """A pending follow-up moved to another liaison (`liaison_id`) with its referral."""

    from_liaison_id: Identifier
    reassigned_at: UtcDatetime


class FollowUpCancelledV1(_FollowUpEvent):
    """A pending follow-up was cancelled: its referral closed, or its appointment moved."""

    reason: FollowUpCancelReason
    cancelled_at: UtcDatetime


class TrainingCompletedV1(IntegrationEvent):
    """A training session for officers was held; lists who completed it. A later revision of the
    same session replaces the earlier one (roster corrections)."""

    CONTEXT: ClassVar[str] = "training"

    session_id: uuid.UUID
    revision: int = Field(ge=1, description="Higher revisions supersede lower ones")
    course_id: Identifier
    county_fips: CountyFips
    host_agency_id: Identifier
    trainer_liaison_id: Identifier
    held_on: date
    credit_hours: float = Field(gt=0, le=40)
    officer_ids: list[PseudonymousId] = Field(max_length=500)
    officer_agency_ids: list[Identifier] = Field(
        max_length=500, description="Agency of each officer, in the order of officer_ids"
    )
    officer_person_ids: list[PseudonymousId] = Field(
        default_factory=list,
        max_length=500,
        description="Who each officer is across agencies, in the order of officer_ids: the "
        "pseudonym of their POST license number when the roster gave it, else their officer_id "
        "(empty in events written before it existed)",
    )

    @model_validator(mode="after")
    def _one_agency_per_officer(self) -> "TrainingCompletedV1":
        if len(self.officer_ids) != len(self.officer_agency_ids):
            raise ValueError("officer_ids and officer_agency_ids must have the same length")
        if self.officer_person_ids and len(self.officer_person_ids) != len(self.officer_ids):
            raise ValueError("officer_person_ids and officer_ids must have the same length")
        return self

    def kafka_key(self) -> bytes:
        return str(self.session_id).encode()


class ReferralFeedbackV1(IntegrationEvent):
    """What a referring agency may learn about a referral it sent, whenever that changes: that
    it was received, and the coarse status while a 42 CFR Part 2 consent covers the agency
    (with the §2.32 notice). Published to the agency's own topic (`agency_topic`), which only
    that agency may read (ADR 0008); no person identifier beyond the agency's own reference."""

    CONTEXT: ClassVar[str] = "referral"

    referral_id: uuid.UUID
    agency_id: Identifier
    agency_reference: Identifier
    sequence: int = Field(ge=0, description="How many changes the referral had: orders feedback")
    received_at: UtcDatetime
    status: FeedbackStatus | None = None
    status_withheld: bool
    consent_expires_on: date | None = None
    redisclosure_notice: str | None = Field(default=None, max_length=2000)

    @classmethod
    def agency_topic(cls, agency_id: str) -> str:
        return f"{cls.topic()}.{agency_id}"

    def destination(self) -> str:
        return self.agency_topic(self.agency_id)

    def kafka_key(self) -> bytes:
        return str(self.referral_id).encode()


# Events published to one topic per agency (`destination`), created for each agency that reads
# them on Kafka (deploy/topics.toml, [agency_topics]).
AGENCY_EVENTS: Final[tuple[type[ReferralFeedbackV1], ...]] = (ReferralFeedbackV1,)


# Placement events live in their own module, which builds on the field types above.
from cmhl_contracts.activity import ACTIVITY_EVENTS  # noqa: E402
from cmhl_contracts.directory import DIRECTORY_EVENTS  # noqa: E402
from cmhl_contracts.placement import PLACEMENT_EVENTS  # noqa: E402
from cmhl_contracts.registry import REGISTRY_EVENTS  # noqa: E402

ALL_EVENTS: Final[tuple[type[IntegrationEvent], ...]] = (
    AgencyReferralSubmittedV1,
    ReferralCreatedV1,
    ReferralStatusChangedV1,
    ReferralContactAttemptedV1,
    ReferralReassignedV1,
    FollowUpScheduledV1,
    FollowUpDueV1,
    FollowUpOverdueV1,
    FollowUpCompletedV1,
    FollowUpCancelledV1,
    FollowUpReassignedV1,
    TrainingCompletedV1,
    *PLACEMENT_EVENTS,
    *ACTIVITY_EVENTS,
    *REGISTRY_EVENTS,
    *DIRECTORY_EVENTS,
)
