"""Grants are applied read-your-writes: create and revoke return once every broker shows them.

A KRaft broker answers DescribeAcls from its authorizer, which takes a change up from the
metadata log after the controller has acknowledged it (a clean-clone CI once read a grant it
had just created as missing). The cluster here plays that lag, broker by broker."""

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from aiokafka.protocol.admin import (
    CreateAclsRequest,
    CreateAclsRequest_v1,
    DeleteAclsRequest,
    DeleteAclsRequest_v1,
)

from cmhl_servicekit import kafka_access
from cmhl_servicekit.kafka_access import AccessError, Grant, create_grants, current_grants, revoke

GRANT = Grant("agency-columbia-pd", "write", "topic", "cmhl.agency.agency-referral-submitted.v1")
OTHER = Grant("referral", "read", "group", "cmhl.referral.", "prefixed")


@dataclass
class Broker:
    """Shows the controller's bindings `lag` describes after a change (never, for None); the
    first `unreachable` describes fail as a broker in a rolling restart does."""

    lag: int | None
    unreachable: int = 0
    shown: set[tuple[Any, ...]] = field(default_factory=set)
    describes_since_change: int = 0


class LaggingCluster:
    """The controller commits each change at once; each broker shows it on its own schedule."""

    def __init__(self, held: set[Grant], *brokers: Broker) -> None:
        self.committed = {g.binding() for g in held}
        self.brokers = dict(enumerate(brokers, start=1))
        for broker in brokers:
            broker.shown = set(self.committed)
        self._client = SimpleNamespace(
            cluster=SimpleNamespace(
                brokers=lambda: [SimpleNamespace(nodeId=n) for n in self.brokers]
            )
        )

    def _changed(self) -> None:
        for broker in self.brokers.values():
            broker.describes_since_change = 0

    async def _send_request(self, request: Any, node_id: int | None = None) -> Any:
        if isinstance(request, CreateAclsRequest):
            self.committed.add(tuple(request.build(CreateAclsRequest_v1).creations[0]))
            self._changed()
            return SimpleNamespace(creation_responses=[(0, None)])
        if isinstance(request, DeleteAclsRequest):
            self.committed.discard(tuple(request.build(DeleteAclsRequest_v1).filters[0]))
            self._changed()
            return SimpleNamespace(filter_responses=[(0, None, [])])
        broker = self.brokers[node_id or 1]
        if broker.unreachable:
            broker.unreachable -= 1
            raise KafkaConnectionError(f"broker {node_id} restarting")
        broker.describes_since_change += 1
        if broker.lag is not None and broker.describes_since_change > broker.lag:
            broker.shown = set(self.committed)
        resources = [
            (resource, name, pattern, [(principal, host, operation, permission)])
            for resource, name, pattern, principal, host, operation, permission in broker.shown
        ]
        return SimpleNamespace(error_code=0, error_message=None, resources=resources)


@pytest.fixture(autouse=True)
def _short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_access, "GRANTS_VISIBLE_WITHIN_S", 0.5)


async def test_create_returns_once_every_broker_shows_the_grant() -> None:
    cluster = LaggingCluster({OTHER}, Broker(lag=1), Broker(lag=4))
    await create_grants(cluster, [GRANT])
    assert cluster.brokers[2].describes_since_change > 4  # it waited for the slower broker
    for broker in cluster.brokers:
        assert await current_grants(cluster, broker) == {GRANT, OTHER}


async def test_revoke_returns_once_no_broker_shows_the_grant() -> None:
    cluster = LaggingCluster({GRANT, OTHER}, Broker(lag=2))
    await revoke(cluster, {GRANT})
    assert cluster.brokers[1].describes_since_change > 2
    assert await current_grants(cluster) == {OTHER}


async def test_a_broker_that_does_not_answer_for_a_while_is_waited_for() -> None:
    cluster = LaggingCluster({OTHER}, Broker(lag=0), Broker(lag=0, unreachable=3))
    await create_grants(cluster, [GRANT])
    assert await current_grants(cluster, 2) == {GRANT, OTHER}


async def test_a_broker_that_never_shows_the_change_is_named_in_the_error() -> None:
    cluster = LaggingCluster({OTHER}, Broker(lag=0), Broker(lag=None))
    with pytest.raises(AccessError, match=r"broker 2: 1 grant\(s\) missing.*agency-columbia-pd"):
        await create_grants(cluster, [GRANT])
