"""A training session and its roster rules."""

from dataclasses import dataclass
from datetime import date, timedelta

# Sessions are recorded after they are held; a year back covers late paperwork.
MAX_RECORDING_DELAY = timedelta(days=365)


class InvalidSession(ValueError):
    """Breaks a roster or session rule; the message names the rule."""


@dataclass(frozen=True)
class Attendee:
    agency_id: str
    officer_ref: str


def check_session(held_on: date, today: date, roster: list[Attendee], capacity: int) -> None:
    if held_on > today:
        raise InvalidSession("a session can be completed only on or after the day it is held")
    if held_on < today - MAX_RECORDING_DELAY:
        raise InvalidSession("the session was held more than a year ago")
    if len(roster) > capacity:
        raise InvalidSession(f"roster has {len(roster)} officers, over the capacity of {capacity}")
    keys = [(a.agency_id, a.officer_ref) for a in roster]
    if len(set(keys)) != len(keys):
        raise InvalidSession("an officer is listed twice on the roster")
