"""What the pages show, computed without I/O: labels, the 96-hour clock, timelines, rosters."""

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

CLOSED = frozenset(
    {
        "declined",
        "connected_to_treatment",
        "declined_by_person",
        "referred_elsewhere",
        "lost_to_follow_up",
    }
)
# The decline reasons a liaison picks from (codes, never free text: the history is not a note).
DECLINE_REASONS = {
    "not_in_service_area": "Not in the service area",
    "not_eligible": "Not eligible for the program",
    "already_in_treatment": "Already in treatment",
    "duplicate": "Duplicate of another referral",
    "insufficient_information": "Not enough information to act on",
}
ELSEWHERE_REASONS = {
    "other_provider": "Another provider serves the person",
    "crisis_services": "Crisis services took over",
    "substance_use_program": "Substance-use program",
}
PLACEMENT_FAILURES = {
    "no_bed_found": "No bed found in time",
    "released": "Released from detention",
    "transferred": "Transferred elsewhere",
}
OFFICER_REF = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def local_time(moment: str | datetime, zone: tzinfo, with_time: bool = True) -> str:
    """A moment from a service (ISO 8601, UTC) in the program's time zone, as people read it:
    `2026-11-29 22:24 CST`; the date alone without `with_time`."""
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    here = value.astimezone(zone)
    return f"{here:%Y-%m-%d %H:%M %Z}" if with_time else f"{here:%Y-%m-%d}"


def label(code: str | None) -> str:
    """`appointment_scheduled` → `Appointment scheduled`."""
    if not code:
        return ""
    text = code.replace("_", " ")
    return text[0].upper() + text[1:]


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    text: str


def timeline(
    history: Iterable[Mapping[str, str]],
    follow_ups: Iterable[Mapping[str, Any]],
    placements: Iterable[Mapping[str, Any]],
) -> list[TimelineEntry]:
    """One referral's record, newest first: status changes, contacts, reassignments,
    follow-ups and bed searches."""
    entries: list[TimelineEntry] = []
    for item in history:
        at = datetime.fromisoformat(item["at"])
        match item.get("kind"):
            case "status":
                text = f"{label(item['from'])} → {label(item['to'])}"
                if item.get("reason"):
                    text += f" (reason: {label(item['reason'])})"
                if item.get("appointment_at"):
                    when = datetime.fromisoformat(item["appointment_at"])
                    text += f", appointment {when:%Y-%m-%d %H:%M} UTC"
                entries.append(TimelineEntry(at, "Status", text))
            case "contact":
                reached = "reached" if item.get("reached") == "yes" else "not reached"
                entries.append(TimelineEntry(at, "Contact", f"{label(item['place'])}: {reached}"))
            case "reassign":
                text = f"Reassigned from {item['from']} to {item['to']}"
                entries.append(TimelineEntry(at, "Assignment", text))
            case "consent":
                text = (
                    f"Consent to disclose to {item['recipient']} revoked"
                    if item.get("to") == "revoked"
                    else f"Consent to disclose to {item['recipient']} until {item['expires_on']}"
                )
                entries.append(TimelineEntry(at, "Consent", text))
    for follow_up in follow_ups:
        due = datetime.fromisoformat(str(follow_up["due_at"]))
        state = follow_up.get("outcome") or follow_up["state"]
        text = f"{label(follow_up['kind'])} follow-up: {label(state)}"
        entries.append(TimelineEntry(due, "Follow-up", text))
    for placement in placements:
        started = datetime.fromisoformat(str(placement["clock"]["detention_started_at"]))
        text = (
            f"Bed search {placement['status']}, {placement['facilities_contacted']} "
            "facilities called"
        )
        entries.append(TimelineEntry(started, "Bed search", text))
    return sorted(entries, key=lambda e: e.at, reverse=True)


@dataclass(frozen=True)
class ConsentState:
    consent_id: str
    recipient: str
    purpose: str
    scope: list[str]
    signed_on: str
    expires_on: str
    state: str
    """in force, expired or revoked: what a liaison needs before telling anyone anything."""


def consent_states(consents: Iterable[Mapping[str, Any]], today: date) -> list[ConsentState]:
    """The referral's consents, those in force first, as the page lists them."""
    states = []
    for c in consents:
        if c.get("revoked_at"):
            state = "revoked"
        elif date.fromisoformat(c["expires_on"]) < today:
            state = "expired"
        else:
            state = "in force"
        states.append(
            ConsentState(
                c["consent_id"],
                c["recipient"],
                c["purpose"],
                list(c["scope"]),
                c["signed_on"],
                c["expires_on"],
                state,
            )
        )
    return sorted(states, key=lambda s: s.state != "in force")


class RosterError(ValueError):
    """A roster file the workspace cannot read; the message says which line and why."""


def parse_roster(text: str, default_agency: str) -> list[dict[str, str]]:
    """Officers from a CSV upload: one officer id per line, or `agency_id,officer_ref` lines,
    with or without a header. Ids only, never names: the roster is not a personnel file."""
    officers: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row if c.strip()]
        if not cells:
            continue
        if number == 1 and cells[-1].lower() in {"officer_ref", "officer_id", "officer"}:
            continue
        if len(cells) > 2:
            raise RosterError(f"line {number}: expected an officer id, or agency id and officer id")
        agency, officer = (default_agency, cells[0]) if len(cells) == 1 else (cells[0], cells[1])
        if not OFFICER_REF.match(officer) or not OFFICER_REF.match(agency):
            raise RosterError(
                f"line {number}: ids are letters, digits and . _ : - (up to 64); no names"
            )
        if (agency, officer) not in seen:
            seen.add((agency, officer))
            officers.append({"agency_id": agency, "officer_ref": officer})
    if len(officers) > 500:
        raise RosterError("a roster holds at most 500 officers")
    return officers
