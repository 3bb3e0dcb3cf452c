"""Follow-up use cases: schedule on a new referral, emit due events on time."""

import logging
from datetime import timedelta

from cmhl_contracts import FollowUpDueV1, FollowUpScheduledV1, ReferralCreatedV1
from cmhl_followup.application.ports import FollowUpRepository
from cmhl_followup.domain.policy import is_due, plan_follow_ups
from cmhl_servicekit.clock import Clock

PRODUCER = "cmhl-followup"
# A timer with no follow-up this long after it was written belongs to a write that failed.
ORPHAN_TIMER_AGE = timedelta(minutes=5)
log = logging.getLogger(__name__)


class FollowUpService:
    def __init__(
        self,
        repository: FollowUpRepository,
        clock: Clock,
        offsets_days: tuple[int, ...],
    ) -> None:
        self._repository = repository
        self._clock = clock
        self._offsets_days = offsets_days

    async def on_referral_created(self, events: list[ReferralCreatedV1]) -> int:
        """Idempotent: follow-up ids derive from the referral, so redelivery schedules nothing."""
        rows = []
        for event in events:
            for planned in plan_follow_ups(
                event.referral_id, event.referred_at, self._offsets_days
            ):
                scheduled = FollowUpScheduledV1.create(
                    about=(str(planned.follow_up_id),),
                    producer=PRODUCER,
                    correlation_id=event.correlation_id,
                    causation_id=str(event.event_id),
                    occurred_at=event.occurred_at,
                    follow_up_id=planned.follow_up_id,
                    referral_id=event.referral_id,
                    person_id=event.person_id,
                    liaison_id=event.liaison_id,
                    kind=planned.kind,
                    due_at=planned.due_at,
                    referred_at=event.referred_at,
                )
                document = {
                    "_id": str(planned.follow_up_id),
                    "referral_id": str(event.referral_id),
                    "person_id": event.person_id,
                    "liaison_id": event.liaison_id,
                    "kind": planned.kind,
                    "due_at": planned.due_at,
                    "referred_at": event.referred_at,
                    "status": "scheduled",
                    "correlation_id": event.correlation_id,
                }
                rows.append((document, scheduled))
        return await self._repository.schedule(rows)

    async def emit_due(self, limit: int = 500) -> int:
        """Claims the follow-ups whose time has come, each claim carrying its due event.

        The due event's id derives from the follow-up and the claim is an insert keyed by it,
        so two replicas racing here write one claim; a restart loses nothing, because the
        timers are in the database and are dropped only after the claim is stored."""
        now = self._clock.now()
        timers = await self._repository.due_timers(now, limit)
        claimed = 0
        done: list[str] = []
        for timer in timers:
            if not is_due(timer["due_at"], now):
                continue
            follow_up = await self._repository.get(timer["_id"])
            if follow_up is None:
                if now - timer["created_at"] > ORPHAN_TIMER_AGE:
                    done.append(timer["_id"])  # its follow-up was never written
                continue
            if follow_up.get("status", "scheduled") == "scheduled":
                event = FollowUpDueV1.create(
                    about=(follow_up["_id"],),
                    producer=PRODUCER,
                    correlation_id=follow_up["correlation_id"],
                    causation_id=follow_up["_id"],
                    occurred_at=now,
                    follow_up_id=follow_up["_id"],
                    referral_id=follow_up["referral_id"],
                    liaison_id=follow_up["liaison_id"],
                    due_at=follow_up["due_at"],
                    referred_at=follow_up["referred_at"],
                )
                claimed += await self._repository.claim_due(follow_up, event)
            done.append(timer["_id"])
        # Dropped only after every claim of the pass is stored: a crash re-claims, harmlessly.
        await self._repository.drop_timers(done)
        if claimed:
            log.info("follow-ups came due", extra={"count": claimed})
        return len(timers)
