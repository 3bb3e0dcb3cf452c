"""Fixtures of the reporting service's tests: a mixed event stream and its ground truth.

The ground truth (`expected_raw`) is recomputed from the distinct events with plain Python, on
purpose independently of the projections, so a test compares two separate derivations."""

import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from statistics import median_low
from typing import Any
from zoneinfo import ZoneInfo

from cmhl_contracts import (
    FollowUpCancelledV1,
    FollowUpCompletedV1,
    FollowUpDueV1,
    FollowUpOverdueV1,
    FollowUpScheduledV1,
    IntegrationEvent,
    ReferralContactAttemptedV1,
    ReferralCreatedV1,
    ReferralReassignedV1,
    ReferralStatusChangedV1,
    TrainingCompletedV1,
)
from cmhl_contracts.counties import MISSOURI_COUNTIES

SOURCES = ["municipal_police"] * 76 + ["sheriff"] * 11 + ["court"] * 10 + ["other"] * 3
NEEDS = ["threat_to_self_or_others"] * 43 + ["behavioral_needs"] * 39 + ["substance_use"] * 18
COURTS = ["mental_health", "treatment_drug", "veterans"]
CLOSINGS = ["connected_to_treatment", "declined_by_person", "lost_to_follow_up"]
OUTCOMES = ["engaged_in_treatment", "hospitalized", "arrested_or_jailed", "housing_stable"]
FUNNEL_STATUSES = (
    "accepted",
    "declined",
    "appointment_scheduled",
    "attended",
    "connected_to_treatment",
    "declined_by_person",
    "unable_to_contact",
    "referred_elsewhere",
    "lost_to_follow_up",
)

CHICAGO = ZoneInfo("America/Chicago")
"""The program's time zone (the services' default): streams are months of Chicago days."""


@dataclass
class Stream:
    """Distinct events of one calendar month (a month of its own, 1900-2010, so tests on the
    shared topics see only their own events in it)."""

    month: str
    events: list[IntegrationEvent] = field(default_factory=list)

    @property
    def window_start(self) -> datetime:
        return datetime.fromisoformat(self.month + "-01T00:00:00").replace(tzinfo=CHICAGO)

    @property
    def window_end(self) -> datetime:
        start = self.window_start
        return datetime(start.year + (start.month == 12), start.month % 12 + 1, 1, tzinfo=CHICAGO)


def _header(n: int) -> dict[str, Any]:
    return {"producer": "test", "correlation_id": f"c{n}"}


def make_stream(referrals: int, seed: int, *, lifecycle: bool = True) -> Stream:
    rng = random.Random(seed)
    month = f"{rng.randrange(1900, 2011)}-{rng.randrange(1, 13):02d}"
    stream = Stream(month)
    start = stream.window_start
    people = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(max(1, referrals * 3 // 4))]
    counties = sorted(MISSOURI_COUNTIES)[:20]
    for n in range(referrals):
        referral_id = uuid.UUID(int=rng.getrandbits(128))
        person = rng.choice(people)
        source = rng.choice(SOURCES)
        referred_at = start + timedelta(seconds=rng.randrange(27 * 86_400))
        liaison = f"liaison-{rng.randrange(1, 6):02d}"
        cmhc = f"cmhc-{rng.randrange(1, 4):02d}"
        about = (str(referral_id),)
        stream.events.append(
            ReferralCreatedV1.create(
                about=about,
                **_header(n),
                referral_id=referral_id,
                person_id=person,
                agency_id=f"agency-{rng.randrange(1, 9)}",
                source=source,
                court_type=rng.choice(COURTS) if source == "court" else None,
                county_fips=rng.choice(counties),
                primary_need=rng.choice(NEEDS),
                person_location="community",
                liaison_id=liaison,
                cmhc_id=cmhc,
                referred_at=referred_at,
                repeat_involvement=rng.random() < 0.2,
            )
        )
        ids: dict[str, Any] = {"referral_id": referral_id, "person_id": person}
        if lifecycle:
            path = ["accepted", rng.choice(CLOSINGS)] if rng.random() < 0.8 else ["declined"]
            for seq, status in enumerate(path, start=1):
                stream.events.append(
                    ReferralStatusChangedV1.create(
                        about=(*about, str(seq)),
                        **_header(n),
                        **ids,
                        liaison_id=liaison,
                        cmhc_id=cmhc,
                        from_status="received" if seq == 1 else path[seq - 2],
                        to_status=status,
                        sequence=seq,
                        changed_at=referred_at + timedelta(hours=seq),
                        referred_at=referred_at,
                    )
                )
            for attempt in range(rng.randrange(3)):
                stream.events.append(
                    ReferralContactAttemptedV1.create(
                        about=(*about, "contact", str(attempt + 1)),
                        **_header(n),
                        **ids,
                        liaison_id=liaison,
                        cmhc_id=cmhc,
                        sequence=attempt + 1,
                        attempted_at=referred_at + timedelta(days=rng.randrange(6), hours=attempt),
                        referred_at=referred_at,
                        place="detention",
                        reached=rng.random() < 0.6,
                    )
                )
            if rng.random() < 0.1:
                stream.events.append(
                    ReferralReassignedV1.create(
                        about=(*about, "reassigned"),
                        **_header(n),
                        **ids,
                        sequence=9,
                        from_liaison_id=liaison,
                        to_liaison_id="liaison-09",
                        cmhc_id=cmhc,
                        reassigned_at=referred_at + timedelta(days=1),
                    )
                )
        follow_up_id = uuid.UUID(int=rng.getrandbits(128))
        common: dict[str, Any] = {
            "follow_up_id": follow_up_id,
            "referral_id": referral_id,
            "liaison_id": liaison,
            "due_at": referred_at + timedelta(days=7),
            "referred_at": referred_at,
        }
        fu = (str(follow_up_id),)
        stream.events.append(
            FollowUpScheduledV1.create(
                about=fu, **_header(n), person_id=person, kind="scheduled_check", **common
            )
        )
        roll = rng.random()
        if roll < 0.6:
            stream.events.append(FollowUpDueV1.create(about=fu, **_header(n), **common))
        if lifecycle and roll < 0.2:
            stream.events.append(
                FollowUpOverdueV1.create(
                    about=fu, **_header(n), overdue_at=referred_at + timedelta(days=9), **common
                )
            )
        if lifecycle and roll < 0.4:
            stream.events.append(
                FollowUpCompletedV1.create(
                    about=fu,
                    **_header(n),
                    outcome=rng.choice(OUTCOMES),
                    completed_at=referred_at + timedelta(days=10),
                    overdue=roll < 0.2,
                    **common,
                )
            )
        elif lifecycle and roll > 0.9:
            stream.events.append(
                FollowUpCancelledV1.create(
                    about=fu,
                    **_header(n),
                    reason="referral_closed",
                    cancelled_at=referred_at + timedelta(days=2),
                    **common,
                )
            )
    return stream


def add_trainings(stream: Stream, sessions: int, seed: int, *, revise: bool = True) -> None:
    """Sessions in the stream's month; with `revise`, some rosters are corrected (revision 2)."""
    rng = random.Random(seed)
    officers = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(max(sessions * 4, 6))]
    first = stream.window_start.date()
    for n in range(sessions):
        roster = rng.sample(officers, 6)
        session_id = uuid.UUID(int=rng.getrandbits(128))
        fields: dict[str, Any] = {
            "session_id": session_id,
            "course_id": rng.choice(["umh", "de-escalation"]),
            "county_fips": "29019",
            "host_agency_id": "boone-so",
            "trainer_liaison_id": "liaison-01",
            "held_on": first + timedelta(days=rng.randrange(27)),
            "credit_hours": 4,
        }
        stream.events.append(
            TrainingCompletedV1.create(
                about=(str(session_id), "1"),
                **_header(n),
                revision=1,
                officer_ids=roster,
                officer_agency_ids=[f"agency-{rng.randrange(1, 12)}" for _ in roster],
                **fields,
            )
        )
        if revise and rng.random() < 0.3:
            stream.events.append(
                TrainingCompletedV1.create(
                    about=(str(session_id), "2"),
                    **_header(n),
                    revision=2,
                    officer_ids=roster[:4],
                    officer_agency_ids=["agency-1"] * 4,
                    **fields,
                )
            )


def with_duplicates(events: list[IntegrationEvent], share: float, seed: int) -> list[Any]:
    """The same events again (same id, later offset), as a retrying producer would send them."""
    rng = random.Random(seed)
    stream = list(events)
    for event in rng.sample(events, int(len(events) * share)):
        position = stream.index(event)
        stream.insert(rng.randrange(position + 1, len(stream) + 1), event)
    return stream


def expected_raw(events: list[IntegrationEvent]) -> dict[str, Any]:
    """The statewide view of one calendar month, recomputed from the distinct events."""
    distinct = list({e.event_id: e for e in events}.values())
    created = [e for e in distinct if isinstance(e, ReferralCreatedV1)]
    months: Counter[str] = Counter(
        e.referred_at.astimezone(CHICAGO).strftime("%Y-%m") for e in created
    )
    changes = [e for e in distinct if isinstance(e, ReferralStatusChangedV1)]
    reached = [e for e in distinct if isinstance(e, ReferralContactAttemptedV1) and e.reached]
    first_reached: dict[uuid.UUID, ReferralContactAttemptedV1] = {}
    for attempt in sorted(reached, key=lambda a: a.sequence):
        first_reached.setdefault(attempt.referral_id, attempt)
    days = sorted(max(0, (a.attempted_at - a.referred_at).days) for a in first_reached.values())
    follow: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for e in distinct:
        match e:
            case FollowUpScheduledV1():
                follow["scheduled"] += 1
            case FollowUpDueV1():
                follow["due"] += 1
            case FollowUpOverdueV1():
                follow["overdue"] += 1
            case FollowUpCompletedV1():
                follow["completed"] += 1
                follow["completed_late"] += e.overdue
                outcomes[e.outcome.value] += 1
            case FollowUpCancelledV1():
                follow["cancelled"] += 1
    latest: dict[uuid.UUID, TrainingCompletedV1] = {}
    for t in (e for e in distinct if isinstance(e, TrainingCompletedV1)):
        if t.session_id not in latest or latest[t.session_id].revision < t.revision:
            latest[t.session_id] = t
    referring = {e.agency_id for e in created}
    trained = {a for t in latest.values() for a in t.officer_agency_ids}
    return {
        "referrals": {
            "total": len(created),
            "people": len({e.person_id for e in created}),
            "by_source": dict(Counter(e.source.value for e in created)),
            "by_presenting_need": dict(Counter(e.primary_need.value for e in created)),
            "by_month": dict(months),
            "repeat_involvement": sum(e.repeat_involvement for e in created),
            "people_with_repeat_involvement": len(
                {e.person_id for e in created if e.repeat_involvement}
            ),
            "by_court_type": dict(Counter(e.court_type.value for e in created if e.court_type)),
        },
        "funnel": {
            s: len({c.referral_id for c in changes if c.to_status.value == s})
            for s in FUNNEL_STATUSES
        }
        | {"contacted": len(first_reached)},
        "first_contact": {
            "referrals": len(days),
            "median_days": float(median_low(days)) if days else None,
        },
        "follow_ups": {
            s: follow[s]
            for s in ("scheduled", "due", "completed", "overdue", "cancelled", "completed_late")
        }
        | {"outcomes": dict(outcomes)},
        "trainings": {
            "sessions": len(latest),
            "seats_filled": sum(len(t.officer_ids) for t in latest.values()),
            "officers_trained": len({o for t in latest.values() for o in t.officer_ids}),
            "referring_agencies": len(referring),
            "referring_agencies_with_trained_officers": len(referring & trained),
        },
    }


def comparable(raw: dict[str, Any]) -> dict[str, Any]:
    """Sorted funnel keys and no empty cells, so dicts compare whatever their order."""
    out = {k: dict(v) for k, v in raw.items()}
    out["funnel"] = dict(sorted(raw["funnel"].items()))
    return out


def month_bounds(month: str) -> tuple[date, date]:
    start = date.fromisoformat(month + "-01")
    return start, date(start.year + (start.month == 12), start.month % 12 + 1, 1)


def by_referral(events: list[IntegrationEvent]) -> dict[str, list[IntegrationEvent]]:
    grouped: dict[str, list[IntegrationEvent]] = defaultdict(list)
    for e in events:
        grouped[e.kafka_key().decode()].append(e)
    return grouped
