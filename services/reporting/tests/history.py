"""A program history over several fiscal years, with the facts behind it kept apart from the
events, so a test can say which referrals, people or follow-ups each published number counts.

`many_small_cells` spreads few referrals over many counties, agencies and liaisons (most cells
of a quarter hold 1 to 10); `demo_like` is the demo's shape at a few thousand referrals."""

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from cmhl_contracts import (
    FollowUpCancelledV1,
    FollowUpCompletedV1,
    FollowUpDueV1,
    FollowUpOverdueV1,
    FollowUpScheduledV1,
    IntegrationEvent,
    ReferralContactAttemptedV1,
    ReferralCreatedV1,
    ReferralStatusChangedV1,
)
from cmhl_contracts.counties import MISSOURI_COUNTIES

from .conftest import CHICAGO, NEEDS, SOURCES

# Fewer court types and outcomes than the streams of conftest.py: more cells of 1 to 10.
COURTS = ["mental_health", "treatment_drug"]
OUTCOMES = ["engaged_in_treatment", "hospitalized", "housing_stable"]
PATHS = [  # as the lifecycle allows (services/referral/.../lifecycle.py); they overlap as it does
    ["accepted", "appointment_scheduled", "attended", "connected_to_treatment"],
    ["accepted", "connected_to_treatment"],
    ["accepted", "unable_to_contact", "lost_to_follow_up"],
    [
        "accepted",
        "unable_to_contact",
        "appointment_scheduled",
        "attended",
        "connected_to_treatment",
    ],
    ["accepted", "declined_by_person"],
    ["accepted", "appointment_scheduled", "declined_by_person"],
    ["accepted", "appointment_scheduled", "attended", "lost_to_follow_up"],
    ["accepted", "appointment_scheduled", "attended"],
    ["accepted", "referred_elsewhere"],
    ["declined"],
    ["referred_elsewhere"],
    [],
]


@dataclass
class Referral:
    index: int
    person: int
    day: date  # in the program's time zone
    source: str
    need: str
    court_type: str | None
    county: str
    cmhc: str
    liaison: str
    agency: str
    repeat: bool
    statuses: list[str]
    contacted: bool


@dataclass
class FollowUp:
    index: int
    referral: Referral
    stages: set[str]
    outcome: str | None


@dataclass
class History:
    referrals: list[Referral] = field(default_factory=list)
    follow_ups: list[FollowUp] = field(default_factory=list)
    events: list[IntegrationEvent] = field(default_factory=list)


def make_history(
    referrals: int,
    seed: int,
    *,
    first: date,
    days: int,
    counties: int,
    agencies: int,
    liaisons: int,
) -> History:
    rng = random.Random(seed)
    county_codes = sorted(MISSOURI_COUNTIES)[:counties]
    # Uneven counties: a few busy ones and a long tail of small ones, as in Missouri.
    weights = [1 / (i + 1) for i in range(counties)]
    people = max(1, referrals * 4 // 5)
    history = History()
    for n in range(referrals):
        source = rng.choice(SOURCES)
        # The last hours of a day in Chicago are the next day in UTC: the boundary is exercised.
        moment = datetime.combine(first, datetime.min.time(), CHICAGO) + timedelta(
            days=rng.randrange(days),
            hours=rng.choice([1, 9, 14, 19, 23]),
            minutes=rng.randrange(60),
        )
        referral = Referral(
            index=n,
            person=rng.randrange(people),
            day=moment.date(),
            source=source,
            need=rng.choice(NEEDS),
            court_type=rng.choice(COURTS) if source == "court" else None,
            county=rng.choices(county_codes, weights)[0],
            cmhc=f"cmhc-{rng.randrange(3) + 1:02d}",
            liaison=f"liaison-{rng.randrange(liaisons) + 1:02d}",
            agency=f"agency-{rng.randrange(agencies) + 1:02d}",
            repeat=rng.random() < 0.2,
            statuses=list(rng.choice(PATHS)),
            contacted=rng.random() < 0.5,
        )
        history.referrals.append(referral)
        history.events += _referral_events(referral, moment, rng, history)
    return history


def _uuid(kind: str, index: int) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"history:{kind}:{index}")


def _referral_events(
    r: Referral, moment: datetime, rng: random.Random, history: History
) -> list[IntegrationEvent]:
    referral_id = _uuid("referral", r.index)
    person = _uuid("person", r.person).hex
    header: dict[str, Any] = {"producer": "test", "correlation_id": f"h{r.index}"}
    about = (str(referral_id),)
    events: list[IntegrationEvent] = [
        ReferralCreatedV1.create(
            about=about,
            **header,
            referral_id=referral_id,
            person_id=person,
            agency_id=r.agency,
            source=r.source,
            court_type=r.court_type,
            county_fips=r.county,
            primary_need=r.need,
            person_location="community",
            liaison_id=r.liaison,
            cmhc_id=r.cmhc,
            referred_at=moment,
            repeat_involvement=r.repeat,
        )
    ]
    ids: dict[str, Any] = {"referral_id": referral_id, "person_id": person}
    previous = "received"
    for seq, status in enumerate(r.statuses, start=1):
        events.append(
            ReferralStatusChangedV1.create(
                about=(*about, str(seq)),
                **header,
                **ids,
                liaison_id=r.liaison,
                cmhc_id=r.cmhc,
                from_status=previous,
                to_status=status,
                sequence=seq,
                changed_at=moment + timedelta(hours=seq),
                referred_at=moment,
            )
        )
        previous = status
    if r.contacted:
        events.append(
            ReferralContactAttemptedV1.create(
                about=(*about, "contact"),
                **header,
                **ids,
                liaison_id=r.liaison,
                cmhc_id=r.cmhc,
                sequence=1,
                attempted_at=moment + timedelta(days=rng.randrange(5)),
                referred_at=moment,
                place="detention",
                reached=True,
            )
        )
    follow_up = FollowUp(len(history.follow_ups), r, {"scheduled"}, None)
    history.follow_ups.append(follow_up)
    follow_up_id = _uuid("follow-up", follow_up.index)
    common: dict[str, Any] = {
        "follow_up_id": follow_up_id,
        "referral_id": referral_id,
        "liaison_id": r.liaison,
        "due_at": moment + timedelta(days=7),
        "referred_at": moment,
    }
    fu = (str(follow_up_id),)
    events.append(
        FollowUpScheduledV1.create(
            about=fu, **header, person_id=person, kind="scheduled_check", **common
        )
    )
    # As the follow-up service runs them: one is due when its time comes unless completed first;
    # an overdue one is completed late or stays open; some are cancelled when the referral closes.
    roll = rng.random()
    due = roll < 0.4 or 0.5 <= roll < 0.7
    overdue = roll < 0.25
    completed = roll < 0.15 or 0.25 <= roll < 0.5
    if due:
        follow_up.stages.add("due")
        events.append(FollowUpDueV1.create(about=fu, **header, **common))
    if overdue:
        follow_up.stages.add("overdue")
        events.append(
            FollowUpOverdueV1.create(
                about=fu, **header, overdue_at=moment + timedelta(days=9), **common
            )
        )
    if completed:
        follow_up.stages.add("completed")
        if overdue:
            follow_up.stages.add("completed_late")
        follow_up.outcome = rng.choice(OUTCOMES)
        events.append(
            FollowUpCompletedV1.create(
                about=fu,
                **header,
                outcome=follow_up.outcome,
                completed_at=moment + timedelta(days=10 if overdue else 5),
                overdue=overdue,
                **common,
            )
        )
    elif roll > 0.9:
        follow_up.stages.add("cancelled")
        events.append(
            FollowUpCancelledV1.create(
                about=fu,
                **header,
                reason="referral_closed",
                cancelled_at=moment + timedelta(days=2),
                **common,
            )
        )
    return events
