"""The notifications service on the real stack: events become notices for the liaison concerned
(history does not), mail goes to the address the liaison gave, is retried while the server
defers, sent once even by two replicas, and a refusal ends in the app only."""

import asyncio
import email
import uuid
from datetime import UTC, datetime, timedelta
from email import policy
from typing import Any

import pytest
from httpx import AsyncClient

from cmhl_contracts import IntegrationEvent
from cmhl_notifications.bootstrap import build
from cmhl_servicekit.auth import Role
from cmhl_servicekit.clock import AdjustableClock
from cmhl_servicekit.testing import KafkaProbe, bearer, eventually, running_app

from ..conftest import ScriptedSmtp, follow_up_due, referral_created

pytestmark = pytest.mark.integration


def liaison() -> tuple[str, Any]:
    subject = f"liaison-{uuid.uuid4().hex[:6]}"
    return subject, bearer(subject, Role.LIAISON, cmhc_id="cmhc-09")


async def publish(probe: KafkaProbe, event: IntegrationEvent) -> None:
    await probe.send(event.topic(), event.model_dump_json().encode(), event.kafka_key())


async def listed(client: AsyncClient, who: Any, **params: Any) -> list[dict[str, Any]]:
    answer = await client.get("/api/v1/notifications", headers=who, params=params)
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


async def test_news_is_noticed_mailed_once_and_retried_while_the_server_defers(
    settings_for: Any, smtp: tuple[ScriptedSmtp, int], kafka_probe: KafkaProbe
) -> None:
    server, port = smtp
    server.replies = ["451 4.3.0 try again later", "421 4.7.0 busy", "451 4.3.0 still busy"]
    now = datetime.now(UTC)
    clock = AdjustableClock(now)
    subject, headers = liaison()
    app = build(settings_for(port), clock=clock)
    async with running_app(app, from_now=True) as client:
        bad = await client.put(
            "/api/v1/notifications/address",
            json={"address": "x@y\r\nBcc: z@q.org"},
            headers=headers,
        )
        assert bad.status_code == 422
        address = f"{subject}@cmhc.test"
        put = await client.put(
            "/api/v1/notifications/address", json={"address": address}, headers=headers
        )
        assert put.status_code == 200, put.text

        fresh = referral_created(subject, now - timedelta(minutes=3))
        imported = referral_created(subject, now - timedelta(days=400))
        due_now = follow_up_due(subject, now - timedelta(minutes=1))
        for event in (fresh, imported, due_now, fresh):  # `fresh` redelivered
            await kafka_probe.send(
                event.topic(), event.model_dump_json().encode(), event.kafka_key()
            )

        async def two_notices() -> bool:
            return len(await listed(client, headers)) == 2

        await eventually(two_notices, timeout=60)
        notices = await listed(client, headers)
        assert {(n["kind"], n["referral_id"]) for n in notices} == {
            ("new_referral", str(fresh.referral_id)),
            ("follow_up_due", str(due_now.referral_id)),
        }
        assert all(n["link"].startswith("https://workspace.test/referrals/") for n in notices)

        # The server defers the first tries of both and the first retry of one: retried a
        # minute later, then five minutes after that; never sooner.
        async def tried(times: int) -> bool:
            return server.tries >= times

        async def mail_states() -> list[str]:
            return sorted(n["mail"] for n in await listed(client, headers))

        await eventually(lambda: tried(2), timeout=30)
        await asyncio.sleep(1)  # several mail passes: nothing is retried before its time
        assert (server.tries, server.kept) == (2, [])
        clock.advance(timedelta(minutes=1))
        await eventually(lambda: tried(4), timeout=30)

        async def one_sent() -> bool:
            return await mail_states() == ["pending", "sent"]

        await eventually(one_sent, timeout=30)
        clock.advance(timedelta(minutes=5))

        async def both_sent() -> bool:
            return await mail_states() == ["sent", "sent"]

        await eventually(both_sent, timeout=30)
        clock.advance(timedelta(days=2))  # nothing left to try: nothing more is sent
        await asyncio.sleep(1)
        assert server.tries == 5
        assert len(server.kept) == 2
        mails = [email.message_from_bytes(m, policy=policy.default) for m in server.kept]
        assert {m["To"] for m in mails} == {address}
        bodies = [m.get_content() for m in mails]
        for notice in notices:
            assert any(notice["link"] in body for body in bodies)
        assert all("c" * 32 not in body for body in bodies)  # not even the pseudonym
        assert {m["Message-ID"] for m in mails} == {
            f"<{n['notification_id']}@cmhl.example.org>" for n in notices
        }

        first = notices[0]["notification_id"]
        _, other = liaison()
        assert (
            await client.post(f"/api/v1/notifications/{first}/read", headers=other)
        ).status_code == 404
        assert (
            await client.post(f"/api/v1/notifications/{first}/read", headers=headers)
        ).status_code == 204
        assert [n["notification_id"] for n in await listed(client, headers, unread=True)] == [
            notices[1]["notification_id"]
        ]
        assert await listed(client, other) == []


async def test_two_replicas_send_one_mail_and_a_refusal_is_not_retried(
    settings_for: Any, smtp: tuple[ScriptedSmtp, int], kafka_probe: KafkaProbe
) -> None:
    server, port = smtp
    subject, headers = liaison()
    refused_subject, refused_headers = liaison()
    settings = settings_for(port)  # one database and one consumer group, as two pods share
    first, second = build(settings), build(settings)
    async with (
        running_app(first, from_now=True) as client,
        running_app(second) as replica,
    ):
        for who, person in ((headers, subject), (refused_headers, refused_subject)):
            answer = await client.put(
                "/api/v1/notifications/address",
                json={"address": f"{person}@cmhc.test"},
                headers=who,
            )
            assert answer.status_code == 200
        events = [referral_created(subject, datetime.now(UTC)) for _ in range(5)]
        for event in events:
            await kafka_probe.send(
                event.topic(), event.model_dump_json().encode(), event.kafka_key()
            )

        async def all_sent() -> bool:
            states = [n["mail"] for n in await listed(replica, headers)]
            return states == ["sent"] * 5

        await eventually(all_sent, timeout=60)
        assert len(server.kept) == 5
        assert server.tries == 5

        server.replies = ["550 5.1.1 no such mailbox"]
        refused = referral_created(refused_subject, datetime.now(UTC))
        await kafka_probe.send(
            refused.topic(), refused.model_dump_json().encode(), refused.kafka_key()
        )

        async def failed() -> bool:
            return [n["mail"] for n in await listed(client, refused_headers)] == ["failed"]

        await eventually(failed, timeout=60)
        assert server.tries == 6
