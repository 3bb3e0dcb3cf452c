"""What the pages compute: the timeline, rosters from CSV files, labels and counts."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from cmhl_workspace.domain.views import (
    RosterError,
    label,
    local_time,
    parse_roster,
    timeline,
)


def test_the_timeline_merges_history_follow_ups_and_bed_searches_newest_first() -> None:
    history = [
        {
            "kind": "status",
            "from": "received",
            "to": "accepted",
            "at": "2026-01-02T10:00:00+00:00",
            "reason": "",
        },
        {
            "kind": "contact",
            "place": "detention",
            "reached": "no",
            "at": "2026-01-03T09:00:00+00:00",
        },
        {
            "kind": "reassign",
            "from": "liaison-01",
            "to": "liaison-02",
            "at": "2026-01-04T09:00:00+00:00",
        },
        {
            "kind": "consent",
            "to": "given",
            "recipient": "Boone County Sheriff",
            "expires_on": "2026-12-31",
            "at": "2026-01-05T09:00:00+00:00",
        },
        {
            "kind": "status",
            "from": "accepted",
            "to": "referred_elsewhere",
            "at": "2026-01-06T09:00:00+00:00",
            "reason": "other_provider",
        },
    ]
    follow_ups = [
        {
            "due_at": "2026-01-08T10:00:00+00:00",
            "kind": "scheduled_check",
            "state": "completed",
            "outcome": "reached",
        },
    ]
    placements = [
        {
            "clock": {"detention_started_at": "2026-01-05T01:00:00+00:00"},
            "status": "placed",
            "facilities_contacted": 2,
        },
    ]
    entries = timeline(history, follow_ups, placements)
    assert [(e.kind, e.text) for e in entries] == [
        ("Follow-up", "Scheduled check follow-up: Reached"),
        ("Status", "Accepted → Referred elsewhere (reason: Other provider)"),
        ("Consent", "Consent to disclose to Boone County Sheriff until 2026-12-31"),
        ("Bed search", "Bed search placed, 2 facilities called"),
        ("Assignment", "Reassigned from liaison-01 to liaison-02"),
        ("Contact", "Detention: not reached"),
        ("Status", "Received → Accepted"),
    ]
    assert entries[0].at == datetime(2026, 1, 8, 10, tzinfo=UTC)


def test_a_roster_file_gives_officer_ids_once_each() -> None:
    text = "officer_ref\nB-101\n\n b-102 \nB-101\nboone-so,D7\n"
    assert parse_roster(text, "columbia-pd") == [
        {"agency_id": "columbia-pd", "officer_ref": "B-101"},
        {"agency_id": "columbia-pd", "officer_ref": "b-102"},
        {"agency_id": "boone-so", "officer_ref": "D7"},
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Jane Smith\n", "line 1: ids are letters"),
        ("B-1\nB-2,x,y\n", "line 2: expected an officer id"),
        ("\n".join(f"B-{n}" for n in range(501)), "at most 500"),
    ],
)
def test_a_roster_with_names_or_too_many_columns_is_refused_naming_the_line(
    text: str, problem: str
) -> None:
    with pytest.raises(RosterError, match=problem):
        parse_roster(text, "columbia-pd")


def test_labels() -> None:
    assert label("appointment_scheduled") == "Appointment scheduled"
    assert label(None) == ""


def test_times_are_shown_in_the_programs_zone() -> None:
    chicago = ZoneInfo("America/Chicago")
    assert local_time("2026-11-30T04:24:00Z", chicago) == "2026-11-29 22:24 CST"
    assert local_time("2026-07-01T15:00:00+00:00", chicago) == "2026-07-01 10:00 CDT"
    assert local_time("2026-11-30T04:24:00Z", chicago, with_time=False) == "2026-11-29"
