"""Fixtures of the reporting service's tests: a synthetic event stream with ground truth."""

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cmhl_contracts import (
    FollowUpDueV1,
    FollowUpScheduledV1,
    IntegrationEvent,
    ReferralCreatedV1,
    TrainingCompletedV1,
)
from cmhl_contracts.counties import MISSOURI_COUNTIES

SOURCES = ["municipal_police"] * 76 + ["sheriff"] * 11 + ["court"] * 10 + ["other"] * 3
NEEDS = ["threat_to_self_or_others"] * 43 + ["behavioral_needs"] * 39 + ["substance_use"] * 18


@dataclass
class Stream:
    """Distinct events and the counts they imply, for comparing views with the ground truth."""

    window_start: datetime
    window_end: datetime
    events: list[IntegrationEvent] = field(default_factory=list)
    by_source: Counter[str] = field(default_factory=Counter)
    by_need: Counter[str] = field(default_factory=Counter)
    people: set[str] = field(default_factory=set)
    due: int = 0
    scheduled: int = 0
    sessions: int = 0
    officers: set[str] = field(default_factory=set)

    def expected(self) -> dict[str, object]:
        return {
            "referrals": {
                "total": sum(self.by_source.values()),
                "people": len(self.people),
                "by_source": dict(self.by_source),
                "by_presenting_need": dict(self.by_need),
            },
            "follow_ups": {"scheduled": self.scheduled, "due": self.due},
            "trainings": {"sessions": self.sessions, "officers_trained": len(self.officers)},
        }


def make_stream(referrals: int, seed: int) -> Stream:
    """Referrals in a window of their own (a day in 2011-2014, or one within the last year for
    trainings), with follow-ups and trainings whose officers repeat across sessions."""
    rng = random.Random(seed)
    day = date(2011, 1, 1) + timedelta(days=rng.randrange(1400))
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    stream = Stream(start, start + timedelta(days=1))
    people = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(max(1, referrals * 3 // 4))]
    counties = sorted(MISSOURI_COUNTIES)
    for n in range(referrals):
        referral_id = uuid.UUID(int=rng.getrandbits(128))
        person = rng.choice(people)
        source = rng.choice(SOURCES)
        need = rng.choice(NEEDS)
        referred_at = start + timedelta(seconds=rng.randrange(86_400))
        stream.events.append(
            ReferralCreatedV1.create(
                about=(str(referral_id),),
                producer="test",
                correlation_id=f"c{n}",
                referral_id=referral_id,
                person_id=person,
                agency_id="agency-1",
                source=source,
                court_type="mental_health" if source == "court" else None,
                county_fips=rng.choice(counties),
                primary_need=need,
                person_location="community",
                liaison_id="liaison-01",
                cmhc_id="cmhc-01",
                referred_at=referred_at,
                repeat_involvement=False,
            )
        )
        stream.by_source[source] += 1
        stream.by_need[need] += 1
        stream.people.add(person)
        follow_up_id = uuid.UUID(int=rng.getrandbits(128))
        common: dict[str, Any] = {
            "follow_up_id": follow_up_id,
            "referral_id": referral_id,
            "liaison_id": "liaison-01",
            "due_at": referred_at + timedelta(days=7),
            "referred_at": referred_at,
        }
        stream.events.append(
            FollowUpScheduledV1.create(
                about=(str(follow_up_id),),
                producer="test",
                correlation_id=f"c{n}",
                person_id=person,
                kind="scheduled_check",
                **common,
            )
        )
        stream.scheduled += 1
        if rng.random() < 0.5:
            stream.events.append(
                FollowUpDueV1.create(
                    about=(str(follow_up_id),), producer="test", correlation_id=f"c{n}", **common
                )
            )
            stream.due += 1
    return stream


def add_trainings(stream: Stream, sessions: int, seed: int) -> None:
    rng = random.Random(seed)
    officers = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(max(sessions * 4, 6))]
    held_on = stream.window_start.date()
    for n in range(sessions):
        roster = rng.sample(officers, 6)
        session_id = uuid.UUID(int=rng.getrandbits(128))
        stream.events.append(
            TrainingCompletedV1.create(
                about=(str(session_id), "1"),
                producer="test",
                correlation_id=f"t{n}",
                session_id=session_id,
                revision=1,
                course_id="umh",
                county_fips="29019",
                host_agency_id="boone-so",
                trainer_liaison_id="liaison-01",
                held_on=held_on,
                credit_hours=4,
                officer_ids=roster,
                officer_agency_ids=["boone-so"] * 6,
            )
        )
        stream.sessions += 1
        stream.officers.update(roster)
