"""What a court may learn about a participant under a §2.35 consent: whether they attend and
comply with treatment, counted over a period, and nothing else (no diagnosis, no narrative, no
contacts, no reasons)."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cmhl_contracts.vocabulary import FollowUpOutcome as O
from cmhl_contracts.vocabulary import ReferralStatus as S


class Engagement(StrEnum):
    ENGAGED = "engaged"
    NOT_ENGAGED = "not_engaged"
    UNKNOWN = "unknown"
    """Nothing in the period says either way."""


# What a follow-up's outcome or a status says about engagement with treatment.
ENGAGED_OUTCOMES = frozenset(
    {O.ENGAGED_IN_TREATMENT, O.APPOINTMENT_KEPT, O.COURT_MANDATED_TREATMENT}
)
NOT_ENGAGED_OUTCOMES = frozenset({O.DECLINED_SERVICES, O.APPOINTMENT_MISSED})
ENGAGED_STATUSES = frozenset({S.ATTENDED, S.CONNECTED_TO_TREATMENT})
NOT_ENGAGED_STATUSES = frozenset({S.NO_SHOW, S.DECLINED_BY_PERSON})


@dataclass(frozen=True)
class Progress:
    appointments_kept: int
    appointments_missed: int
    engagement: Engagement
    """As the latest telling fact of the period says."""


def progress_in(history: Iterable[Mapping[str, str]], start: datetime, end: datetime) -> Progress:
    """Attendance and compliance from the referral's history, for [start, end)."""
    kept = missed = 0
    latest: tuple[datetime, Engagement] | None = None
    for entry in history:
        at = datetime.fromisoformat(entry["at"])
        if not start <= at < end:
            continue
        said = None
        if entry["kind"] == "status":
            status = S(entry["to"])
            kept += status is S.ATTENDED
            missed += status is S.NO_SHOW
            if status in ENGAGED_STATUSES:
                said = Engagement.ENGAGED
            elif status in NOT_ENGAGED_STATUSES:
                said = Engagement.NOT_ENGAGED
        elif entry["kind"] == "follow_up":
            outcome = O(entry["outcome"])
            if outcome in ENGAGED_OUTCOMES:
                said = Engagement.ENGAGED
            elif outcome in NOT_ENGAGED_OUTCOMES:
                said = Engagement.NOT_ENGAGED
        if said is not None and (latest is None or at >= latest[0]):
            latest = (at, said)
    return Progress(kept, missed, latest[1] if latest else Engagement.UNKNOWN)
