"""The client settings our delivery guarantees rest on, asserted for every service as built.

Producers: acks=all and idempotence (no acknowledged event lost, no retry written twice).
Consumers: explicit group, earliest reset, NACK_ON_ERROR, and no auto-commit (offsets are
committed only after the handler wrote what it read)."""

import base64
from typing import Any

import pytest
from fastapi import FastAPI
from faststream import AckPolicy

from cmhl_followup.bootstrap import build as build_followup
from cmhl_followup.config import FollowUpSettings
from cmhl_notifications.bootstrap import build as build_notifications
from cmhl_notifications.config import NotificationSettings
from cmhl_placement.bootstrap import build as build_placement
from cmhl_placement.config import PlacementSettings
from cmhl_referral.bootstrap import build as build_referral
from cmhl_referral.config import ReferralSettings
from cmhl_reporting.bootstrap import build as build_reporting
from cmhl_reporting.config import ReportingSettings
from cmhl_training.bootstrap import build as build_training
from cmhl_training.config import TrainingSettings

COMMON: dict[str, Any] = {
    "kafka_bootstrap": "127.0.0.1:1",
    "mongo_uri": "mongodb://127.0.0.1:1/",
    "auth_issuer": "http://127.0.0.1:1/realms/cmhl",
    "pseudonym_key": "p",
    "encryption_key": base64.b64encode(b"e" * 32).decode(),
    "referral_url": "http://127.0.0.1:1",
}
APPS = {
    "referral": lambda: build_referral(ReferralSettings(**COMMON)),
    "followup": lambda: build_followup(FollowUpSettings(**COMMON)),
    "training": lambda: build_training(TrainingSettings(**COMMON)),
    "reporting": lambda: build_reporting(ReportingSettings(**COMMON)),
    "placement": lambda: build_placement(PlacementSettings(**COMMON)),
    "notifications": lambda: build_notifications(NotificationSettings(**COMMON)),
}


@pytest.mark.parametrize("service", APPS)
def test_producers_wait_for_all_replicas_and_are_idempotent(service: str) -> None:
    app: FastAPI = APPS[service]()
    params = app.state.runtime.broker._connection_kwargs
    assert params["acks"] == "all"
    assert params["enable_idempotence"] is True


@pytest.mark.parametrize("service", ["referral", "followup", "reporting", "notifications"])
def test_consumers_commit_only_after_processing(service: str) -> None:
    app: FastAPI = APPS[service]()
    subscribers = list(app.state.runtime.broker.subscribers)
    assert subscribers
    for subscriber in subscribers:
        assert subscriber.group_id.startswith(f"cmhl.{service}.")
        assert subscriber.ack_policy is AckPolicy.NACK_ON_ERROR
        assert subscriber._connection_args["enable_auto_commit"] is False
        assert subscriber._connection_args["auto_offset_reset"] == "earliest"
