"""A placement request: the search for a bed for one detention, its calls and how it ended."""

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from cmhl_contracts.placement import AgeGroup, AttemptResult, ClinicalNeed
from cmhl_placement.domain.clock import DetentionClock

Status = Literal["open", "placed", "failed"]
# A detention start this far back is a typing error, not a live hold.
MAX_DETENTION_AGE = timedelta(days=30)
# Clocks of phones and servers differ a little; more than this in the future is an error.
CLOCK_SKEW = timedelta(minutes=1)


class InvalidRequest(ValueError):
    """Breaks a placement rule (422); the message names the rule."""


class RequestClosed(Exception):
    """The request is already placed or failed (409)."""


@dataclass(frozen=True)
class Attempt:
    sequence: int
    facility_id: str
    attempted_at: datetime
    result: AttemptResult
    reason_code: str | None
    attempt_id: str | None = None
    """The client's id for the call, so a retried request logs it once."""


@dataclass
class PlacementRequest:
    request_id: uuid.UUID
    referral_id: uuid.UUID
    person_id: str | None
    liaison_id: str
    cmhc_id: str | None
    county_fips: str
    age_group: AgeGroup
    needs: frozenset[ClinicalNeed]
    detention_started_at: datetime
    requested_at: datetime
    status: Status = "open"
    attempts: list[Attempt] = field(default_factory=list)
    placed_facility_id: str | None = None
    completed_at: datetime | None = None
    failure_reason: str | None = None
    version: int = 1

    @property
    def clock(self) -> DetentionClock:
        return DetentionClock(self.detention_started_at)

    @property
    def facilities_contacted(self) -> int:
        return len({a.facility_id for a in self.attempts})

    def record_attempt(
        self,
        facility_id: str,
        result: AttemptResult,
        reason_code: str | None,
        at: datetime,
        attempt_id: str | None = None,
    ) -> Attempt | None:
        """Logs a call; None when a call with this `attempt_id` is logged already (a retry)."""
        if attempt_id is not None and any(a.attempt_id == attempt_id for a in self.attempts):
            return None
        self._require_open()
        if result is AttemptResult.OTHER and not reason_code:
            raise InvalidRequest("a result of 'other' needs a reason_code")
        if at < self.detention_started_at:
            raise InvalidRequest("an attempt cannot be before the detention started")
        attempt = Attempt(len(self.attempts) + 1, facility_id, at, result, reason_code, attempt_id)
        self.attempts.append(attempt)
        return attempt

    def place(self, facility_id: str, at: datetime) -> None:
        """Placed only where a call was accepted: the log of calls must explain the placement."""
        self._require_open()
        if not any(
            a.facility_id == facility_id and a.result is AttemptResult.ACCEPTED
            for a in self.attempts
        ):
            raise InvalidRequest(f"no accepted attempt at {facility_id!r}; record the call first")
        self.status, self.placed_facility_id, self.completed_at = "placed", facility_id, at

    def fail(self, reason: str, at: datetime) -> None:
        self._require_open()
        self.status, self.failure_reason, self.completed_at = "failed", reason, at

    def _require_open(self) -> None:
        if self.status != "open":
            raise RequestClosed(f"the request is already {self.status}")


def check_detention_start(detention_started_at: datetime, now: datetime) -> None:
    if detention_started_at > now + CLOCK_SKEW:
        raise InvalidRequest("detention_started_at is in the future")
    if detention_started_at < now - MAX_DETENTION_AGE:
        raise InvalidRequest("detention_started_at is more than 30 days ago")
