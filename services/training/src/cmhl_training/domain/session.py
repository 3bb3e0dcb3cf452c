"""A training session, its roster and attendance, and the rules they keep. No I/O."""

from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from cmhl_training.domain.catalog import Course, PostCategory

# Sessions are planned up to a year ahead and recorded up to a year late (late paperwork); a
# date outside that window is a typo far more often than a real session.
DATE_WINDOW = timedelta(days=365)


class Rule(StrEnum):
    """The rule an invalid request breaks; HTTP answers name it so a client can act on it."""

    UNKNOWN_COURSE = "unknown_course"
    RETIRED_COURSE = "retired_course"
    DATE_OUT_OF_RANGE = "session_date_out_of_range"
    NOT_YET_HELD = "session_not_yet_held"
    OFFICER_TWICE = "officer_listed_twice"
    OVER_CAPACITY = "roster_over_capacity"
    NOBODY_ATTENDED = "no_officer_attended"
    # Conflicts with the session's or catalog's current state (HTTP 409).
    ALREADY_COMPLETED = "session_already_completed"
    NOT_COMPLETED = "session_not_completed"
    COURSE_EXISTS = "course_exists"


class InvalidSession(ValueError):
    """The request breaks a session, roster or catalog rule (HTTP 422)."""

    def __init__(self, rule: Rule, message: str) -> None:
        super().__init__(message)
        self.rule = rule


class SessionConflict(Exception):
    """The request does not fit the current state of the session or catalog (HTTP 409)."""

    def __init__(self, rule: Rule, message: str) -> None:
        super().__init__(message)
        self.rule = rule


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"


def _normal(value: str) -> str:
    # The same normalisation as the officer pseudonym: " O-12 " and "o-12" are one officer.
    return " ".join(value.casefold().split())


@dataclass(frozen=True)
class Officer:
    """An officer as their agency identifies them: agency id and agency-issued officer id.
    Never a name."""

    agency_id: str
    officer_ref: str
    post_license: str | None = None
    """The officer's Missouri POST license number, when the roster gives it: the same officer
    across agencies (a move, a second job) is then counted once."""

    @classmethod
    def of(cls, agency_id: str, officer_ref: str, post_license: str | None = None) -> "Officer":
        license_number = "".join(post_license.split()).upper() if post_license else None
        return cls(_normal(agency_id), " ".join(officer_ref.split()), license_number or None)

    def key(self) -> tuple[str, str]:
        return (_normal(self.agency_id), _normal(self.officer_ref))


def check_course_open(course: Course | None, course_id: str) -> Course:
    if course is None:
        raise InvalidSession(Rule.UNKNOWN_COURSE, f"unknown course {course_id!r}")
    if course.retired:
        raise InvalidSession(
            Rule.RETIRED_COURSE, f"course {course_id!r} is retired: no new sessions"
        )
    return course


def check_course_known(course: Course | None, course_id: str) -> Course:
    if course is None:
        raise InvalidSession(Rule.UNKNOWN_COURSE, f"unknown course {course_id!r}")
    return course


def check_held_already(held_on: date, today: date) -> None:
    if held_on > today:
        raise InvalidSession(
            Rule.NOT_YET_HELD, "an imported session must have been held (its date is in the future)"
        )


def check_date(held_on: date, today: date) -> None:
    if abs(held_on - today) > DATE_WINDOW:
        raise InvalidSession(
            Rule.DATE_OUT_OF_RANGE, "a session date must be within a year of today"
        )


def check_roster(officers: list[Officer], capacity: int) -> None:
    keys = [o.key() for o in officers]
    if len(set(keys)) != len(keys):
        raise InvalidSession(
            Rule.OFFICER_TWICE,
            "an officer is listed twice on the roster (ids compare without case and spaces)",
        )
    if len(officers) > capacity:
        raise InvalidSession(
            Rule.OVER_CAPACITY,
            f"roster has {len(officers)} officers, over the capacity of {capacity}",
        )


def same_officers(a: list[Officer], b: list[Officer]) -> bool:
    return {o.key() for o in a} == {o.key() for o in b}


@dataclass
class Session:
    """A session is scheduled with a roster of registered officers, then completed with the
    officers who attended (walk-ins included). Each completed attendance is a `revision`:
    corrections raise it, and reporting keeps only the highest, so a correction replaces the
    earlier roster exactly instead of adding to it."""

    session_id: str
    course_id: str
    course_title: str
    category: PostCategory
    credit_hours: float
    held_on: date
    county_fips: str
    host_agency_id: str
    trainer_liaison_id: str
    trainer_cmhc_id: str | None
    capacity: int
    registered: list[Officer] = field(default_factory=list)
    attended: list[Officer] = field(default_factory=list)
    status: SessionStatus = SessionStatus.SCHEDULED
    revision: int = 0
    """0 until completed; then the number of the attendance published last."""
    version: int = 0
    """Storage version for optimistic concurrency; 0 until stored."""

    @classmethod
    def schedule(
        cls,
        *,
        session_id: str,
        course: Course | None,
        course_id: str,
        held_on: date,
        today: date,
        county_fips: str,
        host_agency_id: str,
        trainer_liaison_id: str,
        trainer_cmhc_id: str | None,
        capacity: int,
        registered: list[Officer],
        imported: bool = False,
    ) -> "Session":
        """A new session. An `imported` one (from the program's earlier records) may be years
        old and of a course retired since, but not in the future."""
        if imported:
            open_course = check_course_known(course, course_id)
            check_held_already(held_on, today)
        else:
            open_course = check_course_open(course, course_id)
            check_date(held_on, today)
        check_roster(registered, capacity)
        return cls(
            session_id=session_id,
            course_id=open_course.course_id,
            course_title=open_course.title,
            category=open_course.category,
            credit_hours=open_course.credit_hours,
            held_on=held_on,
            county_fips=county_fips,
            host_agency_id=_normal(host_agency_id),
            trainer_liaison_id=trainer_liaison_id,
            trainer_cmhc_id=trainer_cmhc_id,
            capacity=capacity,
            registered=list(registered),
        )

    def replace_registrations(self, officers: list[Officer]) -> None:
        if self.status is SessionStatus.COMPLETED:
            raise SessionConflict(
                Rule.ALREADY_COMPLETED,
                "the session is completed: correct its attendance instead of its registrations",
            )
        check_roster(officers, self.capacity)
        self.registered = list(officers)

    def complete(self, attended: list[Officer], today: date) -> bool:
        """Record who attended. True if this completed the session; False for a repeat of the
        same completion (a retry). A different attendance on a completed session is a
        correction, which is a separate, deliberate request."""
        if self.status is SessionStatus.COMPLETED:
            if same_officers(attended, self.attended):
                return False
            raise SessionConflict(
                Rule.ALREADY_COMPLETED,
                "the session is completed already; correct its attendance to change it",
            )
        if self.held_on > today:
            raise InvalidSession(
                Rule.NOT_YET_HELD, "a session can be completed only on or after the day it is held"
            )
        self._check_attendance(attended)
        self.attended = list(attended)
        self.status = SessionStatus.COMPLETED
        self.revision = 1
        return True

    def correct_attendance(self, attended: list[Officer]) -> bool:
        """Replace the attendance of a completed session. True if it changed (a new revision);
        False if it is the same officers again, so a repeated correction publishes nothing."""
        if self.status is not SessionStatus.COMPLETED:
            raise SessionConflict(
                Rule.NOT_COMPLETED, "only a completed session's attendance can be corrected"
            )
        self._check_attendance(attended)
        if same_officers(attended, self.attended):
            return False
        self.attended = list(attended)
        self.revision += 1
        return True

    def walk_ins(self) -> list[Officer]:
        registered = {o.key() for o in self.registered}
        return [o for o in self.attended if o.key() not in registered]

    def _check_attendance(self, attended: list[Officer]) -> None:
        if not attended:
            raise InvalidSession(
                Rule.NOBODY_ATTENDED, "a completed session needs at least one officer who attended"
            )
        check_roster(attended, self.capacity)
