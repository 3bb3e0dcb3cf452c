"""The 96-hour clock on the real stack: 72 and 90-hour flags from durable timers, each once,
on a simulated clock; a closed request is never flagged."""

from datetime import timedelta
from typing import Any

import pytest

from cmhl_contracts import PlacementDeadlineFlaggedV1
from cmhl_placement.bootstrap import build
from cmhl_placement.config import PlacementSettings
from cmhl_servicekit.auth import Role
from cmhl_servicekit.clock import AdjustableClock
from cmhl_servicekit.testing import KafkaProbe, bearer, running_app

from ..conftest import ReferralDesk, a_past_day

pytestmark = pytest.mark.integration

LIAISON = bearer("liaison-34", Role.LIAISON, cmhc_id="cmhc-05")


async def test_due_soon_and_overdue_are_flagged_once_each_and_survive_a_restart(
    placement_settings: PlacementSettings, kafka_probe: KafkaProbe, referrals: ReferralDesk
) -> None:
    clock = AdjustableClock(a_past_day())
    detained = clock.now() - timedelta(hours=2)

    async def body() -> dict[str, Any]:
        return {
            "referral_id": await referrals.referral_of(LIAISON, "29021"),
            "detention_started_at": detained.isoformat(),
            "age_group": "youth",
            "county_fips": "29021",
        }

    first = build(placement_settings, clock=clock, referral_client=referrals.client)
    async with running_app(first) as client:
        opened = await client.post("/api/v1/placement-requests", json=await body(), headers=LIAISON)
        closed = await client.post("/api/v1/placement-requests", json=await body(), headers=LIAISON)
        assert opened.status_code == closed.status_code == 201
        request_id, closed_id = opened.json()["request_id"], closed.json()["request_id"]
        failed = await client.post(
            f"/api/v1/placement-requests/{closed_id}/completion",
            json={"outcome": "failed", "failure_reason": "released-by-court"},
            headers=LIAISON,
        )
        assert failed.json()["status"] == "failed"
        service = first.state.placement
        clock.advance(timedelta(hours=70) - timedelta(seconds=1))  # 72 h minus a second
        await service.emit_due()
        clock.advance(timedelta(seconds=1))
        await service.emit_due()
        await service.emit_due()  # a second pass emits nothing more
        shown = await client.get(f"/api/v1/placement-requests/{request_id}", headers=LIAISON)
        assert shown.json()["clock"]["due_soon"] is True
        assert shown.json()["clock"]["overdue"] is False

    # Stopped before 90 hours; two replicas start after it and scan at once.
    clock.advance(timedelta(hours=18))
    replica_a, replica_b = (
        build(placement_settings, clock=clock, referral_client=referrals.client),
        build(placement_settings, clock=clock, referral_client=referrals.client),
    )
    async with running_app(replica_a) as client, running_app(replica_b):
        await replica_a.state.placement.emit_due()
        await replica_b.state.placement.emit_due()
        shown = await client.get(f"/api/v1/placement-requests/{request_id}", headers=LIAISON)
        assert shown.json()["clock"]["overdue"] is True
        assert shown.json()["clock"]["hours_remaining"] == 6
        keys = {request_id.encode(), closed_id.encode()}
        records = await kafka_probe.collect(
            [PlacementDeadlineFlaggedV1.topic()], lambda r: r.key in keys, expect=2, settle=3.0
        )

    flags = {PlacementDeadlineFlaggedV1.model_validate_json(r.value) for r in records}
    assert {(str(f.request_id), f.flag, f.threshold_hours) for f in flags} == {
        (request_id, "due_soon", 72),
        (request_id, "overdue", 90),
    }
    assert len({f.event_id for f in flags}) == 2  # any duplicate record repeats an event id
    due_soon = next(f for f in flags if f.flag == "due_soon")
    assert due_soon.flagged_at == detained + timedelta(hours=72)
