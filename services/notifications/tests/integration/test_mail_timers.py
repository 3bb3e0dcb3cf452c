"""A mail's timer is written before its notification: a due scan that runs between the two
writes must wait for the notification, not settle the timer as one whose write failed (the mail
was then never sent; seen in CI on f44fc31)."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_notifications.adapters.mongo import MAIL_TIMERS, MongoNotificationStore, mail_timer
from cmhl_notifications.application.ports import Mail
from cmhl_notifications.application.service import NotificationService
from cmhl_notifications.domain.notices import Kind, notice
from cmhl_servicekit.audit import InMemoryAuditLog
from cmhl_servicekit.clock import AdjustableClock
from cmhl_servicekit.timers import ORPHAN_TIMER_AGE

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 3, 2, tzinfo=UTC)


class KeptMail:
    def __init__(self) -> None:
        self.sent: list[Mail] = []

    async def send(self, mail: Mail) -> None:
        self.sent.append(mail)


async def test_a_timer_ahead_of_its_notification_waits_for_it_and_an_old_orphan_goes(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    store, mailer, clock = MongoNotificationStore(mongo_db), KeptMail(), AdjustableClock(NOW)
    service = NotificationService(
        store, mailer, InMemoryAuditLog(), clock, "https://w.test", "cmhl@w.test"
    )
    await store.set_address("liaison-1", "l1@cmhc.test", NOW)
    landing = notice(
        Kind.NEW_REFERRAL, uuid.uuid4(), "liaison-1", uuid.uuid4(), None, NOW, "https://w.test"
    )
    # The store's add writes the timer, then the notification; a pass lands in between.
    await store.timers.schedule([mail_timer(str(landing.notification_id), 1, NOW, NOW)])
    assert await service.send_due_mail() == 0
    assert mailer.sent == []
    assert await mongo_db[MAIL_TIMERS].count_documents({}) == 1

    await store.add([landing], {"liaison-1": "l1@cmhc.test"}, NOW)
    assert await service.send_due_mail() == 1
    assert [m.to for m in mailer.sent] == ["l1@cmhc.test"]

    # A timer whose notification never came (its write failed) goes once it is old, unsent.
    never = f"{uuid.uuid4()}"
    await store.timers.schedule([mail_timer(never, 1, NOW, NOW)])
    assert await service.send_due_mail() == 0
    clock.advance(ORPHAN_TIMER_AGE + timedelta(seconds=1))
    assert await service.send_due_mail() == 1
    assert len(mailer.sent) == 1
    assert await mongo_db[MAIL_TIMERS].count_documents({}) == 0
