"""The referral lifecycle of DOMAIN.md as an explicit transition table."""

from cmhl_contracts.vocabulary import FollowUpOutcome as O
from cmhl_contracts.vocabulary import ReferralStatus as S

ALLOWED_TRANSITIONS: dict[S, frozenset[S]] = {
    S.RECEIVED: frozenset({S.ACCEPTED, S.DECLINED, S.REFERRED_ELSEWHERE}),
    S.ACCEPTED: frozenset(
        {
            S.UNABLE_TO_CONTACT,
            S.APPOINTMENT_SCHEDULED,
            S.DECLINED_BY_PERSON,
            S.REFERRED_ELSEWHERE,
            S.CONNECTED_TO_TREATMENT,
            S.LOST_TO_FOLLOW_UP,
        }
    ),
    S.UNABLE_TO_CONTACT: frozenset(
        {
            S.ACCEPTED,
            S.APPOINTMENT_SCHEDULED,
            S.LOST_TO_FOLLOW_UP,
            S.DECLINED_BY_PERSON,
            S.REFERRED_ELSEWHERE,
        }
    ),
    # Scheduling again moves the appointment.
    S.APPOINTMENT_SCHEDULED: frozenset(
        {S.APPOINTMENT_SCHEDULED, S.ATTENDED, S.NO_SHOW, S.DECLINED_BY_PERSON}
    ),
    S.NO_SHOW: frozenset(
        {S.APPOINTMENT_SCHEDULED, S.UNABLE_TO_CONTACT, S.LOST_TO_FOLLOW_UP, S.DECLINED_BY_PERSON}
    ),
    S.ATTENDED: frozenset(
        {
            S.APPOINTMENT_SCHEDULED,
            S.CONNECTED_TO_TREATMENT,
            S.REFERRED_ELSEWHERE,
            S.DECLINED_BY_PERSON,
            S.LOST_TO_FOLLOW_UP,
        }
    ),
    # Closed states: a new episode is a new referral.
    S.DECLINED: frozenset(),
    S.CONNECTED_TO_TREATMENT: frozenset(),
    S.DECLINED_BY_PERSON: frozenset(),
    S.REFERRED_ELSEWHERE: frozenset(),
    S.LOST_TO_FOLLOW_UP: frozenset(),
}

CLOSED = frozenset(status for status, nxt in ALLOWED_TRANSITIONS.items() if not nxt)


# What a follow-up's outcome says about the referral. Closing facts hold whatever status the
# liaison last recorded (the person was found in treatment, declined, moved away); whether an
# appointment was kept moves only a referral waiting for one.
OUTCOME_MOVES: dict[O, S] = {
    O.ENGAGED_IN_TREATMENT: S.CONNECTED_TO_TREATMENT,
    O.DECLINED_SERVICES: S.DECLINED_BY_PERSON,
    O.MOVED_AWAY: S.LOST_TO_FOLLOW_UP,
    O.APPOINTMENT_KEPT: S.ATTENDED,
    O.APPOINTMENT_MISSED: S.NO_SHOW,
}


def status_after_outcome(current: S, outcome: O) -> S | None:
    """The status a follow-up's outcome moves the referral to, or None (no move)."""
    target = OUTCOME_MOVES.get(outcome)
    if target is None or current in CLOSED:
        return None
    if target in (S.ATTENDED, S.NO_SHOW):
        return target if current is S.APPOINTMENT_SCHEDULED else None
    return target


class IllegalTransition(Exception):
    def __init__(self, current: S, requested: S) -> None:
        self.current = current
        self.requested = requested
        self.allowed = sorted(ALLOWED_TRANSITIONS[current])
        super().__init__(f"cannot go from {current} to {requested}")


def check_transition(current: S, requested: S) -> None:
    if requested not in ALLOWED_TRANSITIONS[current]:
        raise IllegalTransition(current, requested)
