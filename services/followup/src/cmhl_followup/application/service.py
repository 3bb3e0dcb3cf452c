"""Follow-up use cases: schedule on a new referral, emit due events on time."""

import logging

from cmhl_contracts import FollowUpDueV1, FollowUpScheduledV1, ReferralCreatedV1
from cmhl_followup.application.ports import FollowUpRepository
from cmhl_followup.domain.policy import is_due, plan_follow_ups
from cmhl_servicekit.clock import Clock

PRODUCER = "cmhl-followup"
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
        """Marks follow-ups whose time has come as due, each with its due event in its outbox.

        The due event's id derives from the follow-up, so two replicas racing here publish the
        same id and consumers keep one; none is missed, because the scan repeats until none is
        left."""
        now = self._clock.now()
        candidates = await self._repository.due_candidates(now, limit)
        for document in candidates:
            if not is_due(document["due_at"], now):
                continue
            event = FollowUpDueV1.create(
                about=(document["_id"],),
                producer=PRODUCER,
                correlation_id=document["correlation_id"],
                causation_id=document["_id"],
                occurred_at=now,
                follow_up_id=document["_id"],
                referral_id=document["referral_id"],
                liaison_id=document["liaison_id"],
                due_at=document["due_at"],
                referred_at=document["referred_at"],
            )
            await self._repository.mark_due(document, event)
        if candidates:
            log.info("follow-ups came due", extra={"count": len(candidates)})
        return len(candidates)
