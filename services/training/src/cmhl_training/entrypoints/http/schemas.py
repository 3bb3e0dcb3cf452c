"""Request and response bodies of the training API. Officers appear by agency and the id their
agency issued (and its pseudonym), never by name."""

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_contracts.events import CountyFips, Identifier, ReadableText
from cmhl_servicekit.audit import AuditEntry
from cmhl_training.application.ports import SESSION_RECORD
from cmhl_training.application.service import OfficerRecord
from cmhl_training.domain.catalog import Course, PostCategory
from cmhl_training.domain.session import Officer, Session, SessionStatus

# Agencies' officer ids sometimes carry spaces ("B 1042"); spaces and case do not distinguish
# officers. No free text beyond that, so a name cannot be slipped in with punctuation.
PostLicense = Annotated[str, Field(min_length=3, max_length=20, pattern=r"^[A-Za-z0-9-]+$")]
OfficerRef = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^ *[A-Za-z0-9._:-][A-Za-z0-9._: -]*$")
]


class RuleError(BaseModel):
    detail: str
    rule: str = Field(description="The rule the request breaks, e.g. roster_over_capacity")


class CoursePublic(BaseModel):
    course_id: str
    title: str
    category: PostCategory
    credit_hours: float
    retired: bool

    @classmethod
    def of(cls, course: Course) -> "CoursePublic":
        return cls(
            course_id=course.course_id,
            title=course.title,
            category=course.category,
            credit_hours=course.credit_hours,
            retired=course.retired,
        )


class CourseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    course_id: Identifier
    title: ReadableText = Field(min_length=3)
    category: PostCategory
    credit_hours: float = Field(gt=0, le=40)


class OfficerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agency_id: Identifier
    officer_ref: OfficerRef = Field(description="The agency-issued officer id (not a name)")
    post_license: PostLicense | None = Field(
        default=None,
        description="The officer's POST license number, if known: counts an officer who moved "
        "between agencies once (never shown back; kept only as a pseudonym in events)",
    )

    def officer(self) -> Officer:
        return Officer.of(self.agency_id, self.officer_ref, self.post_license)


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: uuid.UUID | None = Field(
        default=None, description="Give one to make retries safe; a repeat returns the first"
    )
    course_id: Identifier
    held_on: date = Field(description="Within a year of today, past or future")
    county_fips: CountyFips
    host_agency_id: Identifier
    capacity: int = Field(ge=1, le=500)
    roster: list[OfficerIn] = Field(default_factory=list, max_length=500)
    status: Literal["scheduled", "completed"] = Field(
        default="completed",
        description="completed (default): the session was held and the roster lists who "
        "attended, published at once. scheduled: the roster lists registrations; complete it "
        "later.",
    )


class Roster(BaseModel):
    model_config = ConfigDict(extra="forbid")
    officers: list[OfficerIn] = Field(max_length=500)


class OfficerPublic(BaseModel):
    agency_id: str
    officer_ref: str
    officer_id: str = Field(description="The pseudonym events and reports carry")


class SessionPublic(BaseModel):
    session_id: str
    course_id: str
    course_title: str
    category: PostCategory
    credit_hours: float
    held_on: date
    county_fips: str
    county_name: str
    host_agency_id: str
    trainer_liaison_id: str
    capacity: int
    status: SessionStatus
    revision: int = Field(description="0 until completed; each attendance correction adds one")
    officers_registered: int
    officers_completed: int
    walk_ins: int

    @classmethod
    def of(cls, session: Session) -> "SessionPublic":
        return cls(**cls._fields(session))

    @staticmethod
    def _fields(session: Session) -> dict[str, object]:
        return {
            "session_id": session.session_id,
            "course_id": session.course_id,
            "course_title": session.course_title,
            "category": session.category,
            "credit_hours": session.credit_hours,
            "held_on": session.held_on,
            "county_fips": session.county_fips,
            "county_name": MISSOURI_COUNTIES.get(session.county_fips, session.county_fips),
            "host_agency_id": session.host_agency_id,
            "trainer_liaison_id": session.trainer_liaison_id,
            "capacity": session.capacity,
            "status": session.status,
            "revision": session.revision,
            "officers_registered": len(session.registered),
            "officers_completed": len(session.attended),
            "walk_ins": len(session.walk_ins()),
        }


class SessionDetail(SessionPublic):
    registered: list[OfficerPublic]
    attended: list[OfficerPublic]


class SessionsPublic(BaseModel):
    sessions: list[SessionPublic]


class TrainingPublic(BaseModel):
    session_id: str
    course_id: str
    course_title: str
    category: PostCategory
    credit_hours: float
    held_on: date


class YearHoursPublic(BaseModel):
    year: int
    by_category: dict[PostCategory, float]
    total: float
    required: float = Field(description="POST continuing education asked per year")
    remaining: float


class OfficerRecordPublic(BaseModel):
    officer_id: str
    trainings: list[TrainingPublic]
    hours: list[YearHoursPublic]

    @classmethod
    def of(cls, record: OfficerRecord) -> "OfficerRecordPublic":
        return cls(
            officer_id=record.officer_id,
            trainings=[
                TrainingPublic(
                    session_id=t.session_id,
                    course_id=t.course_id,
                    course_title=t.course_title,
                    category=t.category,
                    credit_hours=t.credit_hours,
                    held_on=t.held_on,
                )
                for t in record.trainings
            ],
            hours=[
                YearHoursPublic(
                    year=y.year,
                    by_category=y.by_category,
                    total=y.total,
                    required=y.required,
                    remaining=y.remaining,
                )
                for y in record.hours
            ],
        )


class AccessPublic(BaseModel):
    actor: str
    actor_roles: list[str]
    action: str
    session_id: str | None
    at: datetime
    source_address: str | None
    outcome: str

    @classmethod
    def of(cls, entry: AuditEntry) -> "AccessPublic":
        return cls(
            actor=entry.actor,
            actor_roles=list(entry.actor_roles),
            action=entry.action,
            session_id=entry.record.removeprefix(SESSION_RECORD)
            if entry.record.startswith(SESSION_RECORD)
            else None,
            at=entry.at,
            source_address=entry.source_address,
            outcome=entry.outcome,
        )


class AccountingPublic(BaseModel):
    officer_id: str
    accesses: list[AccessPublic]
