"""Pure projections: what each event adds to the views, as day-bucketed counter increments.

An event contributes two kinds of increments (see docs/adr/0003-reporting-counters.md):
- `always`: applied once if the event is new (its `e|<event_id>` claim is won), e.g. a referral
  adds 1 to `referrals|source=court` on the day it was referred;
- `claimed`: applied only if this event wins a named claim, e.g. the first referral of a person
  in a month wins `p|<person>|source=court|2018-09` and adds 1 to `people|source=court@month`.
Claims make distinct counts (unique people, the funnel, first contact) exact across partitions
and replicas: a claim is an insert keyed by what it is about, so only one event ever wins it.
Unique people are claimed through a `PersonSeen` (see its docstring): most people are referred
once, and their first referral makes one claim instead of one per trait and period.

Metric names are `<family>[|<dim>=<value>]...[@<period kind>]`; values are identifiers or enum
values, which never contain `|`, `=` or `@`. Days are `YYYY-MM-DD` in the program's time zone
(domain/calendar.py), so a fiscal year's counts are the days of its July to June."""

from dataclasses import dataclass, field
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
from cmhl_reporting.domain.activity import ACTIVITY_COUNTED_EVENTS, project_activity
from cmhl_reporting.domain.calendar import PERIOD_KINDS, period_keys, program_day
from cmhl_reporting.domain.placement import PLACEMENT_COUNTED_EVENTS, project_placement

Increment = tuple[str, str]
"""(metric, day): one more of `metric` on `day`."""


REFERRAL_DIMENSIONS = ("source", "court_type", "need", "county", "cmhc", "liaison", "agency")


@dataclass(frozen=True)
class PersonSeen:
    """A referral's person on its day, with the traits people are counted by: `""` (the person
    at all), `source=court`, `county=29019`..., `repeat`. Each (trait, period) is one unique-person
    claim, `p|<person>|<trait>|<period>`, which adds one to `people[|<trait>]@<kind>`.

    The person's first referral wins `anchor` (their all-time claim) and stores its day and
    traits in it: that one insert stands for every claim it implies, all of which it counts.
    A later referral reads the anchor and inserts only the claims it does not imply, so most
    people cost one claim instead of one per trait and period (40). An anchor without a day
    (written before anchors held one) implies nothing but itself; its person's other claims
    were inserted one by one, and later referrals lose them as before.

    Only a generation this version created counts through anchors (`ViewStore.people_anchored`):
    in one an earlier version created, whose writers may still be running beside this version's
    during an upgrade, every claim is inserted on its own, as they do, since they would win the
    claims an anchor implies and count those people twice."""

    person: str
    day: str
    traits: tuple[str, ...]

    @property
    def anchor(self) -> str:
        return _person_claim(self.person, "", "all")

    def claims(self) -> list[tuple[str, list[Increment]]]:
        """Every (trait, period) claim of this referral, with the increment it adds if won."""
        periods = period_keys(self.day)
        return [
            (
                _person_claim(self.person, trait, periods[kind]),
                [(f"people|{trait}@{kind}" if trait else f"people@{kind}", self.day)],
            )
            for trait in self.traits
            for kind in PERIOD_KINDS
        ]

    def claims_beyond(self, first: "PersonSeen | None") -> list[tuple[str, list[Increment]]]:
        """The claims the person's first referral (`None`: one whose anchor holds no day) did
        not imply: the ones this referral must insert."""
        if first is None:
            return self.claims()
        implied = {key for key, _ in first.claims()}
        return [(key, increments) for key, increments in self.claims() if key not in implied]


def _person_claim(person: str, trait: str, period: str) -> str:
    return f"p|{person}|{trait}|{period}"


@dataclass(frozen=True)
class Effects:
    always: list[Increment] = field(default_factory=list)
    claimed: list[tuple[str, list[Increment]]] = field(default_factory=list)
    seen: PersonSeen | None = None
    """The person counted by unique-people claims, if any (a referral's)."""


def project_referral_created(event: ReferralCreatedV1, zone: ZoneInfo) -> Effects:
    day = program_day(event.referred_at, zone)
    dims = [
        ("source", event.source.value),
        ("need", event.primary_need.value),
        ("county", event.county_fips),
        ("cmhc", event.cmhc_id),
        ("liaison", event.liaison_id),
        ("agency", event.agency_id),
    ]
    if event.court_type is not None:
        dims.append(("court_type", event.court_type.value))
    always = [("referrals", day)] + [(f"referrals|{d}={v}", day) for d, v in dims]
    # County cross-tabs: the dashboard filters the brochure's picture by county.
    county = f"referrals|county={event.county_fips}"
    always += [(f"{county}|source={event.source.value}", day)]
    always += [(f"{county}|need={event.primary_need.value}", day)]
    traits = ["", *(f"{d}={v}" for d, v in dims)]
    if event.repeat_involvement:
        always.append(("referrals|repeat", day))
        traits.append("repeat")
    return Effects(always, seen=PersonSeen(event.person_id, day, tuple(traits)))


def project_referral_status_changed(event: ReferralStatusChangedV1, zone: ZoneInfo) -> Effects:
    """The funnel counts referrals that ever reached a status, once each, on their referral day."""
    day = program_day(event.referred_at, zone)
    status = event.to_status.value
    return Effects(
        [(f"status_changes|to={status}", day)],
        [(f"s|{event.referral_id}|{status}", [(f"funnel|{status}", day)])],
    )


def project_referral_contact_attempted(
    event: ReferralContactAttemptedV1, zone: ZoneInfo
) -> Effects:
    """The first reached contact of a referral counts it as contacted and records the days it
    took; a referral's attempts share one partition, so the first applied is the earliest."""
    day = program_day(event.referred_at, zone)
    always = [("contacts|attempts", day), (f"contacts|place={event.place.value}", day)]
    if not event.reached:
        return Effects(always)
    days = max(0, (event.attempted_at - event.referred_at).days)
    first = [("funnel|contacted", day), (f"first_contact_days={days}", day)]
    return Effects(always, [(f"c|{event.referral_id}", first)])


def project_referral_reassigned(event: ReferralReassignedV1, zone: ZoneInfo) -> Effects:
    return Effects([("referrals|reassigned", program_day(event.reassigned_at, zone))])


def project_follow_up(event: IntegrationEvent, zone: ZoneInfo) -> Effects:
    """Follow-ups count on the day their referral was received, like the referrals they serve."""
    assert isinstance(
        event,
        FollowUpScheduledV1
        | FollowUpDueV1
        | FollowUpOverdueV1
        | FollowUpCompletedV1
        | FollowUpCancelledV1,
    )
    day = program_day(event.referred_at, zone)
    match event:
        case FollowUpScheduledV1():
            return Effects([("follow_ups|scheduled", day), (f"follow_ups|kind={event.kind}", day)])
        case FollowUpDueV1():
            return Effects([("follow_ups|due", day)])
        case FollowUpOverdueV1():
            return Effects([("follow_ups|overdue", day)])
        case FollowUpCompletedV1():
            always = [
                ("follow_ups|completed", day),
                (f"follow_ups|outcome={event.outcome.value}", day),
            ]
            if event.overdue:
                always.append(("follow_ups|completed_late", day))
            return Effects(always)
        case FollowUpCancelledV1():
            return Effects(
                [("follow_ups|cancelled", day), (f"follow_ups|cancelled={event.reason}", day)]
            )
    raise TypeError(type(event).__name__)  # pragma: no cover


def project(event: IntegrationEvent, zone: ZoneInfo) -> Effects:
    match event:
        case ReferralCreatedV1():
            return project_referral_created(event, zone)
        case ReferralStatusChangedV1():
            return project_referral_status_changed(event, zone)
        case ReferralContactAttemptedV1():
            return project_referral_contact_attempted(event, zone)
        case ReferralReassignedV1():
            return project_referral_reassigned(event, zone)
        case (
            FollowUpScheduledV1()
            | FollowUpDueV1()
            | FollowUpOverdueV1()
            | FollowUpCompletedV1()
            | FollowUpCancelledV1()
        ):
            return project_follow_up(event, zone)
    if isinstance(event, PLACEMENT_COUNTED_EVENTS):
        return Effects(*project_placement(event, zone))
    if isinstance(event, ACTIVITY_COUNTED_EVENTS):
        return Effects(*project_activity(event, zone))
    raise TypeError(f"no counter projection for {type(event).__name__}")


@dataclass(frozen=True)
class TrainingFact:
    """A training session as its latest revision says; rosters are replaced, not merged."""

    session_id: str
    revision: int
    course_id: str
    county_fips: str
    host_agency_id: str
    held_on: str
    officer_ids: tuple[str, ...]
    officer_agency_ids: tuple[str, ...]
    officer_person_ids: tuple[str, ...] = ()
    """Who each officer is across agencies (POST license), when the event says."""

    def officers(self) -> tuple[str, ...]:
        """Unique officers are counted by these: across agencies where the license is known."""
        return self.officer_person_ids or self.officer_ids


def training_fact(event: TrainingCompletedV1) -> TrainingFact:
    return TrainingFact(
        str(event.session_id),
        event.revision,
        event.course_id,
        event.county_fips,
        event.host_agency_id,
        event.held_on.isoformat(),
        tuple(event.officer_ids),
        tuple(event.officer_agency_ids),
        tuple(event.officer_person_ids),
    )


COUNTED_EVENTS: tuple[type[IntegrationEvent], ...] = (
    ReferralCreatedV1,
    ReferralStatusChangedV1,
    ReferralContactAttemptedV1,
    ReferralReassignedV1,
    FollowUpScheduledV1,
    FollowUpDueV1,
    FollowUpOverdueV1,
    FollowUpCompletedV1,
    FollowUpCancelledV1,
    *PLACEMENT_COUNTED_EVENTS,
    *ACTIVITY_COUNTED_EVENTS,
)
PROJECTED_EVENTS: tuple[type[IntegrationEvent], ...] = (*COUNTED_EVENTS, TrainingCompletedV1)
