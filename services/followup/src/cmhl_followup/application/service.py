"""Follow-up use cases: schedule, adjust to the referral's life, announce due and overdue follow-ups
on time, and record outcomes.

The referral's events arrive on three topics that Kafka does not order with one another, so a
closure or a reassignment can be read before the referral itself. Each consumer therefore writes
its fact first (a closure, an assignment, the follow-ups) and reads the others' after: whichever
runs second sees the first, and every adjustment is idempotent, so running it twice is harmless."""

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from cmhl_contracts import (
    FollowUpCancelledV1,
    FollowUpCompletedV1,
    FollowUpDueV1,
    FollowUpOverdueV1,
    FollowUpReassignedV1,
    FollowUpScheduledV1,
    IntegrationEvent,
    ReferralCreatedV1,
    ReferralReassignedV1,
    ReferralStatusChangedV1,
)
from cmhl_contracts.vocabulary import FollowUpOutcome, ReferralStatus
from cmhl_followup.application.ports import (
    Document,
    FollowUpQuery,
    FollowUpRepository,
)
from cmhl_followup.domain.policy import (
    CLOSING_STATUSES,
    OutcomeRefused,
    PlannedFollowUp,
    State,
    ad_hoc_follow_up_id,
    check_outcome,
    follow_ups_apply,
    past_horizon,
    plan_appointment_check,
    plan_follow_ups,
    possible_follow_up_ids,
    retention_check_ids,
    state_of,
)
from cmhl_servicekit.audit import AuditEntry, AuditLog
from cmhl_servicekit.auth import Principal, Role
from cmhl_servicekit.clock import Clock
from cmhl_servicekit.consuming import run_bounded
from cmhl_servicekit.timers import Timer, fire_due, orphaned
from cmhl_servicekit.versioned import CONFLICT, Conflict, retry_on_conflict

PRODUCER = "cmhl-followup"
# Referrals (after scheduling) or timers (when due) handled at once: their round trips overlap.
IN_FLIGHT = 16
# How far ahead a liaison may plan a follow-up of their own.
AD_HOC_HORIZON = timedelta(days=400)
CONNECTED = ReferralStatus.CONNECTED_TO_TREATMENT
log = logging.getLogger(__name__)

Decision = tuple[dict[str, Any], list[IntegrationEvent]] | None


class NotFound(Exception):
    """No such follow-up, or not the asker's: the same answer for both."""


class NotAllowed(Exception):
    """The principal may not list what was asked; the message names the rule."""


class InvalidFollowUp(ValueError):
    """A follow-up asked for that breaks a rule (422); the message names the rule."""


class ReferralClosed(Exception):
    """The referral is closed: it takes no new follow-up (409)."""


class ChangedMeanwhile(Exception):
    """Another writer kept changing the follow-up; the caller may retry."""


@dataclass(frozen=True)
class ReferralOf:
    """The referral's fields a follow-up repeats."""

    referral_id: str
    person_id: str
    liaison_id: str
    cmhc_id: str | None
    referred_at: datetime
    correlation_id: str


@dataclass(frozen=True)
class Listed:
    """A follow-up as a liaison sees it: stored fields, its deadline and its state now."""

    document: Document
    overdue_at: datetime
    state: State


def _subject(follow_up: Document) -> dict[str, Any]:
    """The fields every follow-up event repeats, from the stored follow-up."""
    return {
        "follow_up_id": follow_up["_id"],
        "referral_id": follow_up["referral_id"],
        "liaison_id": follow_up["liaison_id"],
        "due_at": follow_up["due_at"],
        "referred_at": follow_up["referred_at"],
    }


class FollowUpService:
    def __init__(
        self,
        repository: FollowUpRepository,
        audit: AuditLog,
        clock: Clock,
        offsets_days: tuple[int, ...],
        grace: timedelta,
    ) -> None:
        self._repository = repository
        self._audit = audit
        self._clock = clock
        self._offsets_days = offsets_days
        self._grace = grace

    # ------------------------------------------------------------------ scheduling

    async def on_referral_created(self, events: list[ReferralCreatedV1]) -> int:
        """Idempotent: follow-up ids derive from the referral, so redelivery schedules nothing.
        An imported referral that is closed or past the follow-ups' horizon gets none."""
        now = self._clock.now()
        events = [
            event
            for event in events
            if follow_ups_apply(
                event.imported,
                event.status_at_import,
                event.referred_at,
                now,
                self._offsets_days,
                self._grace,
            )
        ]
        rows = [
            self._scheduled(event, planned, event.liaison_id)
            for event in events
            for planned in plan_follow_ups(event.referral_id, event.referred_at, self._offsets_days)
        ]
        created = await self._repository.schedule(rows, self._clock.now())
        by_referral: dict[uuid.UUID, set[str]] = {e.referral_id: set() for e in events}
        for document, _ in rows:
            by_referral[uuid.UUID(document["referral_id"])].add(document["_id"])
        # Different referrals' follow-ups are independent: their lookups overlap.
        await run_bounded(
            (self._catch_up(key, sorted(ids)) for key, ids in by_referral.items()),
            IN_FLIGHT,
        )
        return created

    async def on_status_changed(self, events: list[ReferralStatusChangedV1]) -> None:
        """An appointment adds a check the day after it (and cancels the check of a moved one);
        a closure cancels every follow-up still pending, except, when the person was connected
        to treatment, the retention checks and the liaison's own follow-ups."""
        for event in events:
            referral_id = event.referral_id
            if event.to_status in CLOSING_STATUSES:
                await self._repository.note_closure(
                    str(referral_id), event.to_status.value, event.changed_at
                )
                pending = await self._repository.pending_of(str(referral_id))
                await self._cancel_pending(
                    [
                        follow_up["_id"]
                        for follow_up in pending
                        if not self._survives(event.to_status.value, referral_id, follow_up)
                    ],
                    "referral_closed",
                    str(event.event_id),
                )
            elif event.to_status is ReferralStatus.APPOINTMENT_SCHEDULED and event.appointment_at:
                earlier_checks = self._possible_ids(referral_id, event.sequence)[
                    len(set(self._offsets_days)) :
                ]
                await self._cancel_pending(earlier_checks, "appointment_moved", str(event.event_id))
                planned = plan_appointment_check(referral_id, event.appointment_at, event.sequence)
                if past_horizon(planned.due_at, self._clock.now(), self._offsets_days, self._grace):
                    continue
                document, scheduled = self._scheduled(event, planned, event.liaison_id)
                document["assignment_sequence"] = event.sequence
                await self._repository.schedule([(document, scheduled)], self._clock.now())
                await self._catch_up(referral_id, [document["_id"]])

    async def on_referral_reassigned(self, events: list[ReferralReassignedV1]) -> None:
        """Pending follow-ups move to the new liaison and are announced to them again."""
        for event in events:
            await self._repository.note_assignment(
                str(event.referral_id), event.to_liaison_id, event.sequence
            )
            ids = [f["_id"] for f in await self._repository.pending_of(str(event.referral_id))]
            await self._move_pending(ids, event.to_liaison_id, event.sequence, str(event.event_id))

    def _survives(self, closing_status: str, referral_id: uuid.UUID, follow_up: Document) -> bool:
        """Whether a pending follow-up goes on after the referral closed in this status: after a
        connection to treatment, the checks that show whether the person stayed in it."""
        if closing_status != CONNECTED.value:
            return False
        retention = {str(i) for i in retention_check_ids(referral_id, self._offsets_days)}
        return follow_up["_id"] in retention or follow_up["kind"] == "ad_hoc"

    async def _catch_up(self, referral_id: uuid.UUID, follow_up_ids: list[str]) -> None:
        """Applies a closure or reassignment that was read before these follow-ups existed."""
        key = str(referral_id)
        closure = await self._repository.closure_of(key)
        if closure is not None:
            written = [await self._repository.get(i) for i in follow_up_ids]
            cancelled = [
                f["_id"]
                for f in written
                if f is not None and not self._survives(closure["status"], referral_id, f)
            ]
            await self._cancel_pending(cancelled, "referral_closed", f"closure:{key}")
            follow_up_ids = [i for i in follow_up_ids if i not in cancelled]
        assignment = await self._repository.assignment_of(key)
        if assignment is not None:
            await self._move_pending(
                follow_up_ids,
                assignment["liaison_id"],
                assignment["sequence"],
                f"assignment:{key}:{assignment['sequence']}",
            )

    def _possible_ids(self, referral_id: uuid.UUID, before_sequence: int) -> list[str]:
        return [
            str(i) for i in possible_follow_up_ids(referral_id, self._offsets_days, before_sequence)
        ]

    def _scheduled(
        self,
        cause: ReferralCreatedV1 | ReferralStatusChangedV1,
        planned: PlannedFollowUp,
        liaison_id: str,
    ) -> tuple[Document, FollowUpScheduledV1]:
        referral = ReferralOf(
            str(cause.referral_id),
            cause.person_id,
            liaison_id,
            cause.cmhc_id,
            cause.referred_at,
            cause.correlation_id,
        )
        return self._planned(referral, planned, str(cause.event_id), cause.occurred_at)

    def _planned(
        self, referral: "ReferralOf", planned: PlannedFollowUp, causation_id: str, at: datetime
    ) -> tuple[Document, FollowUpScheduledV1]:
        event = FollowUpScheduledV1.create(
            about=(str(planned.follow_up_id),),
            producer=PRODUCER,
            correlation_id=referral.correlation_id,
            causation_id=causation_id,
            occurred_at=at,
            follow_up_id=planned.follow_up_id,
            referral_id=uuid.UUID(referral.referral_id),
            person_id=referral.person_id,
            liaison_id=referral.liaison_id,
            kind=planned.kind,
            due_at=planned.due_at,
            referred_at=referral.referred_at,
        )
        document = {
            "_id": str(planned.follow_up_id),
            "referral_id": referral.referral_id,
            "person_id": referral.person_id,
            "liaison_id": referral.liaison_id,
            # Supervisors list their CMHC's follow-ups by it; reassignment stays inside a CMHC.
            "cmhc_id": referral.cmhc_id,
            "assignment_sequence": 0,
            "kind": planned.kind,
            "due_at": planned.due_at,
            "overdue_at": planned.due_at + self._grace,
            "referred_at": referral.referred_at,
            "status": State.SCHEDULED.value,
            "correlation_id": referral.correlation_id,
        }
        return document, event

    async def add_follow_up(
        self, referral_id: uuid.UUID, due_at: datetime, principal: Principal
    ) -> tuple[Listed, bool]:
        """A follow-up the liaison plans themselves (or a supervisor for them), for a referral
        in their caseload; returns it and whether it is new (the same time again adds none).
        Allowed until the referral closes, and after a connection to treatment."""
        now = self._clock.now()
        referral = await self._referral_of(referral_id)
        if referral is None or not self._may_manage(principal, referral):
            await self._record(principal, "add_follow_up", str(referral_id), None, "not_found")
            raise NotFound
        record = {"person_id": referral.person_id, "referral_id": referral.referral_id}
        closure = await self._repository.closure_of(referral.referral_id)
        if closure is not None and closure["status"] != CONNECTED.value:
            await self._record(principal, "add_follow_up", referral.referral_id, record, "refused")
            raise ReferralClosed(f"the referral is closed ({closure['status']})")
        if not now - timedelta(minutes=5) <= due_at <= now + AD_HOC_HORIZON:
            await self._record(principal, "add_follow_up", referral.referral_id, record, "refused")
            raise InvalidFollowUp("due_at must be from now to 400 days ahead")
        planned = PlannedFollowUp(ad_hoc_follow_up_id(referral_id, due_at), "ad_hoc", due_at)
        document, event = self._planned(referral, planned, f"ad-hoc:{principal.subject}", now)
        created = await self._repository.schedule([(document, event)], now)
        await self._catch_up(referral_id, [document["_id"]])
        stored = await self._repository.get(document["_id"])
        assert stored is not None
        await self._record(
            principal, "add_follow_up", stored["_id"], stored, "created" if created else "unchanged"
        )
        return self._listed(stored, now), bool(created)

    async def _referral_of(self, referral_id: uuid.UUID) -> "ReferralOf | None":
        """What the follow-up service knows of a referral: its scheduled checks (every referral
        gets them) say whose person and CMHC it is, the latest assignment whose caseload."""
        anchor = None
        for follow_up_id in self._possible_ids(referral_id, 1):
            if (anchor := await self._repository.get(follow_up_id)) is not None:
                break
        if anchor is None:
            return None
        assignment = await self._repository.assignment_of(str(referral_id))
        return ReferralOf(
            anchor["referral_id"],
            anchor["person_id"],
            assignment["liaison_id"] if assignment else anchor["liaison_id"],
            anchor.get("cmhc_id"),
            anchor["referred_at"],
            anchor["correlation_id"],
        )

    @staticmethod
    def _may_manage(principal: Principal, referral: "ReferralOf") -> bool:
        if principal.has(Role.LIAISON) and referral.liaison_id == principal.subject:
            return True
        return bool(
            principal.has(Role.SUPERVISOR)
            and referral.cmhc_id
            and referral.cmhc_id == principal.cmhc_id
        )

    async def _cancel_pending(self, follow_up_ids: list[str], reason: str, cause: str) -> None:
        now = self._clock.now()

        def cancel(follow_up: Document) -> Decision:
            if follow_up["status"] != State.SCHEDULED:
                return None  # recorded or cancelled already
            event = FollowUpCancelledV1.create(
                about=(follow_up["_id"],),
                producer=PRODUCER,
                correlation_id=follow_up["correlation_id"],
                causation_id=cause,
                occurred_at=now,
                reason=reason,
                cancelled_at=now,
                **_subject(follow_up),
            )
            return {"status": State.CANCELLED.value, "cancelled_at": now}, [event]

        for follow_up_id in follow_up_ids:
            await self._change(follow_up_id, cancel)

    def _overdue_at(self, follow_up: Document) -> datetime:
        """The stored deadline: a later change of the grace setting does not move it."""
        overdue_at: datetime = follow_up.get("overdue_at") or follow_up["due_at"] + self._grace
        return overdue_at

    async def _move_pending(
        self, follow_up_ids: list[str], liaison_id: str, sequence: int, cause: str
    ) -> None:
        now = self._clock.now()

        def move(follow_up: Document) -> Decision:
            if follow_up["status"] != State.SCHEDULED:
                return None
            if follow_up.get("assignment_sequence", 0) >= sequence:
                return None  # this or a later assignment is applied already
            event = FollowUpReassignedV1.create(
                about=(follow_up["_id"], "reassigned", str(sequence)),
                producer=PRODUCER,
                correlation_id=follow_up["correlation_id"],
                causation_id=cause,
                occurred_at=now,
                from_liaison_id=follow_up["liaison_id"],
                reassigned_at=now,
                **_subject(follow_up | {"liaison_id": liaison_id}),
            )
            return {"liaison_id": liaison_id, "assignment_sequence": sequence}, [event]

        for follow_up_id in follow_up_ids:
            await self._change(follow_up_id, move)

    async def _change(
        self, follow_up_id: str, decide: Callable[[Document], Decision]
    ) -> tuple[Document | None, bool]:
        """Read, decide, write if nobody wrote meanwhile; returns the follow-up as it ends up
        (None if it does not exist) and whether this call wrote it."""

        async def attempt() -> tuple[Document | None, bool] | Conflict:
            follow_up = await self._repository.get(follow_up_id)
            if follow_up is None:
                return None, False
            decision = decide(follow_up)
            if decision is None:
                return follow_up, False
            changes, events = decision
            if await self._repository.update(follow_up_id, follow_up["version"], changes, events):
                return follow_up | changes, True
            return CONFLICT

        return await retry_on_conflict(attempt, lambda: ChangedMeanwhile(follow_up_id))

    # ------------------------------------------------------------------ timers

    async def emit_due(self, limit: int = 500) -> int:
        """Announces the follow-ups whose time has come (due) or whose grace has passed without
        an outcome (overdue); returns how many timers it settled.

        Each announcement is an insert keyed by the follow-up carrying its event (with an id
        derived from the follow-up), so two replicas racing here store one; a restart loses
        nothing, because timers are in the database and dropped only after the pass's claims
        are stored."""
        # Timers are independent (one follow-up's due and overdue claims are separate inserts),
        # so their round trips overlap.
        return await fire_due(
            self._repository.timers, self._announce, self._clock.now(), limit=limit
        )

    async def _announce(self, timer: Timer, now: datetime) -> bool:
        """Settles one timer: claims its announcement unless the follow-up moved on."""
        follow_up = await self._repository.get(timer.subject_id)
        if follow_up is None:  # its follow-up was never written, or is still being written
            return orphaned(timer, now)
        if follow_up["status"] != State.SCHEDULED:
            return True
        event = self._announcement(timer.kind, follow_up, now)
        await self._repository.claim(timer.kind, follow_up, event)
        return True

    def _announcement(self, stage: str, follow_up: Document, now: datetime) -> IntegrationEvent:
        common: dict[str, Any] = {
            "about": (follow_up["_id"],),
            "producer": PRODUCER,
            "correlation_id": follow_up["correlation_id"],
            "causation_id": follow_up["_id"],
            "occurred_at": now,
            **_subject(follow_up),
        }
        if stage == "overdue":
            return FollowUpOverdueV1.create(overdue_at=self._overdue_at(follow_up), **common)
        return FollowUpDueV1.create(**common)

    # ------------------------------------------------------------------ liaisons

    async def record_outcome(
        self, follow_up_id: str, outcome: FollowUpOutcome, principal: Principal
    ) -> tuple[Listed, bool]:
        """Records what the follow-up found; returns the follow-up and whether it changed
        (recording the same outcome again changes nothing)."""
        now = self._clock.now()
        follow_up = await self._repository.get(follow_up_id)
        if follow_up is None or follow_up["liaison_id"] != principal.subject:
            await self._record(principal, "record_outcome", follow_up_id, follow_up, "not_found")
            raise NotFound

        def complete(current: Document) -> Decision:
            if current["liaison_id"] != principal.subject:
                raise NotFound
            if not check_outcome(
                current["status"], current.get("outcome"), outcome, current["due_at"], now
            ):
                return None
            overdue = now > self._overdue_at(current)
            event = FollowUpCompletedV1.create(
                about=(current["_id"],),
                producer=PRODUCER,
                correlation_id=current["correlation_id"],
                causation_id=current["_id"],
                occurred_at=now,
                outcome=outcome,
                completed_at=now,
                overdue=overdue,
                **_subject(current),
            )
            changes = {
                "status": State.COMPLETED.value,
                "outcome": outcome.value,
                "completed_at": now,
                "overdue": overdue,
            }
            return changes, [event]

        refusals = {NotFound: "not_found", OutcomeRefused: "refused", ChangedMeanwhile: "conflict"}
        try:
            stored, changed = await self._change(follow_up_id, complete)
        except (NotFound, OutcomeRefused, ChangedMeanwhile) as exc:
            await self._record(
                principal, "record_outcome", follow_up_id, follow_up, refusals[type(exc)]
            )
            raise
        assert stored is not None
        await self._record(
            principal, "record_outcome", follow_up_id, stored, "changed" if changed else "unchanged"
        )
        return self._listed(stored, now), changed

    async def overview(
        self, principal: Principal, cap: int, liaison_ids: list[str]
    ) -> dict[str, Counter[str]]:
        """How many follow-ups are due and overdue per liaison (yours; for a supervisor, the
        named liaisons of the CMHC, or the CMHC's as a whole), each counted up to `cap` per
        liaison: numbers without records, so nothing is audited. Counted by reading ids up to
        the cap, which an index serves; a database count would read every match."""
        now = self._clock.now()
        counts: dict[str, Counter[str]] = {}
        for state in (State.DUE, State.OVERDUE):
            queries: list[FollowUpQuery] = [
                self._scoped(principal, FollowUpQuery.for_state(None, state, now, cap), liaison)
                for liaison in ([*liaison_ids] if liaison_ids else [None])
            ]
            found = await run_bounded((self._repository.liaisons_of(q) for q in queries), 8)
            counts[state.value] = Counter(liaison for ids in found for liaison in ids)
        return counts

    def _scoped(
        self, principal: Principal, query: FollowUpQuery, liaison_id: str | None
    ) -> FollowUpQuery:
        """The query within what the principal may list: a supervisor's CMHC (optionally one
        liaison of it), a liaison's own."""
        if principal.has(Role.SUPERVISOR) and principal.cmhc_id:
            return replace(query, liaison_id=liaison_id, cmhc_id=principal.cmhc_id)
        if principal.has(Role.LIAISON):
            if liaison_id not in (None, principal.subject):
                raise NotAllowed("a liaison lists only their own follow-ups")
            return replace(query, liaison_id=principal.subject)
        raise NotAllowed("only liaisons and supervisors with a CMHC list follow-ups")

    async def list_for(
        self,
        principal: Principal,
        state: State | None,
        limit: int,
        *,
        liaison_id: str | None = None,
        referral_id: str | None = None,
    ) -> list[Listed]:
        """Follow-ups in a state (by default every pending one), soonest first: a liaison's own,
        or for a supervisor their CMHC's (optionally one liaison's). With a referral id, that
        referral's follow-ups in every status unless a state is asked. The database selects
        them, so years of completed follow-ups never crowd out today's."""
        now = self._clock.now()
        query = self._scoped(
            principal, FollowUpQuery.for_state(None, state, now, limit), liaison_id
        )
        if referral_id is not None:
            query = replace(query, referral_id=referral_id)
            if state is None:
                query = replace(query, status=None)
        rows = [self._listed(d, now) for d in await self._repository.list_follow_ups(query)]
        await self._audit.record(
            [self._entry(principal, "list", r.document["_id"], r.document, "allowed") for r in rows]
        )
        return rows

    def _listed(self, follow_up: Document, now: datetime) -> Listed:
        overdue_at = self._overdue_at(follow_up)
        return Listed(
            follow_up,
            overdue_at,
            state_of(follow_up["status"], follow_up["due_at"], overdue_at, now),
        )

    async def _record(
        self,
        principal: Principal,
        action: str,
        follow_up_id: str,
        follow_up: Mapping[str, Any] | None,
        outcome: str,
    ) -> None:
        await self._audit.record([self._entry(principal, action, follow_up_id, follow_up, outcome)])

    def _entry(
        self,
        principal: Principal,
        action: str,
        follow_up_id: str,
        follow_up: Mapping[str, Any] | None,
        outcome: str,
    ) -> AuditEntry:
        return AuditEntry(
            actor=principal.subject,
            actor_roles=tuple(sorted(principal.roles)),
            action=action,
            record=f"follow_up/{follow_up_id}",
            person_ids=(follow_up["person_id"],) if follow_up else (),
            at=self._clock.now(),
            outcome=outcome,
            referral_id=str(follow_up["referral_id"]) if follow_up else None,
        )
