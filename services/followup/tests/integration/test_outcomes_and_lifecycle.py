"""Follow-up service on the real stack: outcomes over HTTP, overdue flags, and follow-ups that
follow the referral's life (appointments, reassignment, closure read before the referral)."""

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cmhl_contracts import (
    FollowUpCancelledV1,
    FollowUpCompletedV1,
    FollowUpOverdueV1,
    FollowUpReassignedV1,
    FollowUpScheduledV1,
    IntegrationEvent,
)
from cmhl_contracts.vocabulary import ReferralStatus
from cmhl_followup.bootstrap import build
from cmhl_followup.config import FollowUpSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.clock import AdjustableClock
from cmhl_servicekit.testing import KafkaProbe, bearer, eventually, infra_settings, running_app

from ..conftest import reassigned, referral_created, status_changed

pytestmark = pytest.mark.integration

REFERRED_AT = datetime(2011, 3, 1, 8, tzinfo=UTC) + timedelta(days=random.randrange(300))
LIAISON = bearer("liaison-11", Role.LIAISON, cmhc_id="cmhc-09")
OTHER_LIAISON = bearer("liaison-12", Role.LIAISON, cmhc_id="cmhc-09")


@pytest.fixture
def settings(kafka_bootstrap: str, mongo_uri: str) -> FollowUpSettings:
    return FollowUpSettings(**infra_settings(kafka_bootstrap, mongo_uri), due_scan_seconds=3600)


async def send(probe: KafkaProbe, *events: IntegrationEvent) -> None:
    for event in events:
        await probe.send(
            type(event).topic(), event.model_dump_json().encode(), key=event.kafka_key()
        )


def keyed(*referral_ids: uuid.UUID) -> Any:
    keys = {str(r).encode() for r in referral_ids}
    return lambda record: record.key in keys


async def test_outcomes_are_recorded_once_and_overdue_ones_flagged(
    settings: FollowUpSettings, kafka_probe: KafkaProbe
) -> None:
    referral_id = uuid.uuid4()
    clock = AdjustableClock(REFERRED_AT)
    app = build(settings, clock=clock)
    async with running_app(app, from_now=True) as client:
        await send(kafka_probe, referral_created(referral_id, REFERRED_AT))

        async def listed() -> list[dict[str, Any]]:
            answer = await client.get("/api/v1/follow-ups", headers=LIAISON)
            rows: list[dict[str, Any]] = answer.json()["data"]
            return rows if len(rows) == 3 else []

        day7, day30, day90 = await eventually(listed, timeout=60)
        assert [r["state"] for r in (day7, day30, day90)] == ["scheduled"] * 3
        outcome = "/api/v1/follow-ups/{}/outcome"
        early = await client.post(
            outcome.format(day7["follow_up_id"]), json={"outcome": "reached"}, headers=LIAISON
        )
        assert early.status_code == 409
        assert "not due" in early.json()["detail"]

        clock.advance(timedelta(days=7))
        service = app.state.followups
        await service.emit_due()
        due = await client.get("/api/v1/follow-ups", params={"state": "due"}, headers=LIAISON)
        assert [r["follow_up_id"] for r in due.json()["data"]] == [day7["follow_up_id"]]
        url = outcome.format(day7["follow_up_id"])
        first = await client.post(url, json={"outcome": "reached"}, headers=LIAISON)
        assert first.status_code == 201, first.text
        assert first.json()["state"] == "completed"
        again = await client.post(url, json={"outcome": "reached"}, headers=LIAISON)
        assert again.status_code == 200
        other = await client.post(url, json={"outcome": "hospitalized"}, headers=LIAISON)
        assert other.status_code == 409
        stranger = await client.post(url, json={"outcome": "reached"}, headers=OTHER_LIAISON)
        assert stranger.status_code == 404
        unknown = await client.post(url, json={"outcome": "feeling_fine"}, headers=LIAISON)
        assert unknown.status_code == 422

        clock.advance(timedelta(days=26, seconds=1))  # day 33: the day-30 check is overdue
        await service.emit_due()
        overdue = await client.get(
            "/api/v1/follow-ups", params={"state": "overdue"}, headers=LIAISON
        )
        assert [r["follow_up_id"] for r in overdue.json()["data"]] == [day30["follow_up_id"]]
        late = await client.post(
            outcome.format(day30["follow_up_id"]),
            json={"outcome": "court_mandated_treatment"},
            headers=LIAISON,
        )
        assert late.status_code == 201
        assert late.json()["recorded_overdue"] is True

        completed = await kafka_probe.collect(
            [FollowUpCompletedV1.topic()], keyed(referral_id), expect=2, settle=2.0
        )
        flagged = await kafka_probe.collect(
            [FollowUpOverdueV1.topic()], keyed(referral_id), expect=1, settle=1.0
        )
    events = [FollowUpCompletedV1.model_validate_json(r.value) for r in completed]
    assert sorted((e.outcome.value, e.overdue) for e in events) == [
        ("court_mandated_treatment", True),
        ("reached", False),
    ]
    assert [FollowUpOverdueV1.model_validate_json(r.value).follow_up_id for r in flagged] == [
        uuid.UUID(day30["follow_up_id"])
    ]


async def test_follow_ups_follow_appointments_reassignment_and_closure(
    settings: FollowUpSettings, kafka_probe: KafkaProbe
) -> None:
    moved, closed_early = uuid.uuid4(), uuid.uuid4()
    clock = AdjustableClock(REFERRED_AT + timedelta(hours=1))
    appointment = REFERRED_AT + timedelta(days=12)
    app = build(settings, clock=clock)
    async with running_app(app, from_now=True):
        await send(
            kafka_probe,
            # closed_early's closure is read before its referral: a different topic.
            status_changed(
                closed_early, REFERRED_AT, 2, ReferralStatus.DECLINED, REFERRED_AT, None
            ),
            reassigned(moved, 3, "liaison-12", REFERRED_AT + timedelta(minutes=5)),
            status_changed(
                moved,
                REFERRED_AT,
                2,
                ReferralStatus.APPOINTMENT_SCHEDULED,
                REFERRED_AT,
                appointment,
            ),
        )
        await eventually(
            lambda: _consumed(app, "followup.status", "followup.assignment"), timeout=60
        )
        await send(
            kafka_probe,
            referral_created(moved, REFERRED_AT),
            referral_created(closed_early, REFERRED_AT),
        )
        scheduled = await kafka_probe.collect(
            [FollowUpScheduledV1.topic()], keyed(moved), expect=4, timeout=60, settle=2.0
        )
        reassigned_ = await kafka_probe.collect(
            [FollowUpReassignedV1.topic()], keyed(moved), expect=4, timeout=60, settle=1.0
        )
        cancelled = await kafka_probe.collect(
            [FollowUpCancelledV1.topic()], keyed(closed_early), expect=3, timeout=60, settle=2.0
        )
    # 3 scheduled checks + the appointment check, scheduled once each for liaison-11 (the
    # referral's liaison when they were planned), then moved once each to liaison-12
    announced = {FollowUpScheduledV1.model_validate_json(r.value) for r in scheduled}
    assert len({e.follow_up_id for e in announced}) == len(announced) == 4
    [check] = [e for e in announced if e.kind == "appointment_check"]
    assert check.due_at == appointment + timedelta(days=1)
    moves = {FollowUpReassignedV1.model_validate_json(r.value) for r in reassigned_}
    assert {e.follow_up_id for e in moves} == {e.follow_up_id for e in announced}
    assert {(e.from_liaison_id, e.liaison_id) for e in moves} == {("liaison-11", "liaison-12")}
    reasons = [FollowUpCancelledV1.model_validate_json(r.value).reason for r in cancelled]
    assert reasons == ["referral_closed"] * 3


async def _consumed(app: Any, *purposes: str) -> bool:
    """Whether the app's consumers for these purposes have committed past everything sent."""
    broker = app.state.runtime.broker
    for subscriber in broker.subscribers:
        if not any(subscriber.group_id.endswith(p) for p in purposes):
            continue
        consumer = subscriber.consumer
        partitions = consumer.assignment()
        ends = await consumer.end_offsets(list(partitions))
        for partition in partitions:
            committed = await consumer.committed(partition)
            if (committed or 0) < ends[partition]:
                return False
    return True
