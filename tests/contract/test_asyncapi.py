"""Each service's committed AsyncAPI document (contracts/asyncapi/) is what its code generates,
names every topic it reads and writes, and gives each message its contract's schema."""

import json
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cmhl_contracts import AGENCY_EVENTS, ALL_EVENTS, IntegrationEvent
from cmhl_servicekit import asyncapi
from cmhl_servicekit.asyncapi import (
    OUTPUT_DIR,
    SERVICES,
    build_service,
    contract_of,
    document_path,
    render,
    service_document,
)

REGENERATE = "uv run --frozen python -m cmhl_servicekit.asyncapi write"


@cache
def _app(service: str) -> FastAPI:
    return build_service(service)


def _committed(service: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(document_path(service).read_text())
    return document


def _topics(app: FastAPI) -> tuple[set[str], set[str]]:
    """What the service's broker reads and what it writes."""
    broker = app.state.runtime.broker
    reads = {t.name for subscriber in broker.subscribers for t in subscriber.topics}
    writes = {publisher.topic for publisher in broker.publishers}
    return reads, writes


def _channels(document: dict[str, Any], action: str) -> set[str]:
    """Addresses of the channels the document's operations `send` to or `receive` from."""
    names = {
        operation["channel"]["$ref"].removeprefix("#/channels/")
        for operation in document["operations"].values()
        if operation["action"] == action
    }
    return {document["channels"][name]["address"] for name in names}


def test_there_is_one_committed_document_per_service() -> None:
    assert sorted(p.name for p in OUTPUT_DIR.glob("*.json")) == sorted(
        f"{service}.json" for service in SERVICES
    ), f"a document without its service, or the reverse; regenerate: {REGENERATE}"


@pytest.mark.parametrize("service", SERVICES)
def test_the_committed_document_is_what_the_code_generates(service: str) -> None:
    path = document_path(service)
    assert path.exists(), f"{path} is missing; generate it: {REGENERATE}"
    assert path.read_text() == render(service_document(_app(service))), (
        f"{path} differs from what the code declares; regenerate: {REGENERATE}"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_every_topic_read_or_written_is_a_channel(service: str) -> None:
    document = _committed(service)
    assert document["asyncapi"] == "3.0.0"
    reads, writes = _topics(_app(service))
    assert _channels(document, "receive") == reads
    assert _channels(document, "send") == writes
    # A dead letter goes to `<topic>.dlq` of each topic read.
    assert {f"{topic}.dlq" for topic in reads} <= writes


def _owner(event: type[IntegrationEvent]) -> str | None:
    """The service that publishes an event: its context's, if a service is named after it."""
    return event.CONTEXT if event.CONTEXT in SERVICES else None


@pytest.mark.parametrize("service", SERVICES)
def test_every_event_of_the_services_context_is_published(service: str) -> None:
    sent = _channels(_committed(service), "send")
    own = {e.topic() for e in ALL_EVENTS if _owner(e) == service}
    assert own <= sent, f"{service} emits events it does not declare: {sorted(own - sent)}"
    # Per-agency events go to each agency's own topic, never to the shared one.
    for event in AGENCY_EVENTS:
        if _owner(event) == service:
            assert event.topic() not in sent
            assert any(t.startswith(f"{event.topic()}.") for t in sent)
    others = {e.topic() for e in ALL_EVENTS if _owner(e) not in (None, service)}
    assert not others & sent, f"{service} declares another service's events"


@pytest.mark.parametrize("service", SERVICES)
def test_every_message_payload_is_its_contracts_schema(service: str) -> None:
    document = _committed(service)
    components = document["components"]
    assert document["channels"]
    for name, channel in document["channels"].items():
        event = contract_of(channel["address"])
        assert event is not None, f"{name}: a topic of no contract"
        expected = event.model_json_schema()
        for reference in channel["messages"].values():
            message_name = reference["$ref"].removeprefix("#/components/messages/")
            message = components["messages"][message_name]
            schema_name = message["payload"]["$ref"].removeprefix("#/components/schemas/")
            schema = components["schemas"][schema_name]
            assert schema["title"] == expected["title"], name
            assert schema["properties"].keys() == expected["properties"].keys(), name
            assert schema.get("required") == expected.get("required"), name


def test_check_names_the_services_whose_document_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert asyncapi.main(["write", "--output", str(tmp_path)]) == 0
    assert asyncapi.main(["check", "--output", str(tmp_path)]) == 0
    stale = document_path("training", tmp_path)
    stale.write_text(stale.read_text().replace("training-completed", "training-finished"))
    document_path("notifications", tmp_path).unlink()
    capsys.readouterr()
    assert asyncapi.main(["check", "--output", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "training" in error
    assert "notifications" in error
    assert "referral" not in error
    assert REGENERATE in error


@pytest.mark.parametrize("service", SERVICES)
async def test_each_service_serves_its_document_at_asyncapi(service: str) -> None:
    transport = httpx.ASGITransport(app=_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        answer = await client.get("/asyncapi")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == _committed(service)
