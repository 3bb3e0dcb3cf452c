"""Grants are applied read-your-writes: create and revoke return once the broker shows them.

A KRaft broker answers DescribeAcls from its authorizer, which takes a change up from the
metadata log after the controller has acknowledged it (a clean-clone CI once read a grant it
had just created as missing). The broker here plays that lag."""

from types import SimpleNamespace
from typing import Any

import pytest
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


class LaggingBroker:
    """Commits each change at once; DescribeAcls shows it only after `lag` more describes (never,
    for `lag=None`)."""

    def __init__(self, held: set[Grant], lag: int | None) -> None:
        self.committed = {g.binding() for g in held}
        self.shown = set(self.committed)
        self.lag = lag
        self.describes_since_change = 0

    async def _send_request(self, request: Any) -> Any:
        if isinstance(request, CreateAclsRequest):
            self.committed.add(tuple(request.build(CreateAclsRequest_v1).creations[0]))
            self.describes_since_change = 0
            return SimpleNamespace(creation_responses=[(0, None)])
        if isinstance(request, DeleteAclsRequest):
            self.committed.discard(tuple(request.build(DeleteAclsRequest_v1).filters[0]))
            self.describes_since_change = 0
            return SimpleNamespace(filter_responses=[(0, None, [])])
        self.describes_since_change += 1
        if self.lag is not None and self.describes_since_change > self.lag:
            self.shown = set(self.committed)
        resources = [
            (resource, name, pattern, [(principal, host, operation, permission)])
            for resource, name, pattern, principal, host, operation, permission in self.shown
        ]
        return SimpleNamespace(error_code=0, error_message=None, resources=resources)


@pytest.fixture(autouse=True)
def _short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_access, "GRANTS_VISIBLE_WITHIN_S", 0.5)


async def test_create_returns_once_the_broker_shows_the_grant() -> None:
    broker = LaggingBroker({OTHER}, lag=3)
    await create_grants(broker, [GRANT])
    assert broker.describes_since_change > 3  # it waited: the first reads did not show it
    assert await current_grants(broker) == {GRANT, OTHER}


async def test_revoke_returns_once_the_broker_no_longer_shows_the_grant() -> None:
    broker = LaggingBroker({GRANT, OTHER}, lag=2)
    await revoke(broker, {GRANT})
    assert broker.describes_since_change > 2
    assert await current_grants(broker) == {OTHER}


async def test_a_change_the_broker_never_shows_is_an_error_that_names_it() -> None:
    broker = LaggingBroker({OTHER}, lag=None)
    with pytest.raises(AccessError, match=r"1 grant\(s\) missing.*agency-columbia-pd"):
        await create_grants(broker, [GRANT])
