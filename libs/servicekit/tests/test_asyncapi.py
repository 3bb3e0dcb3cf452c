"""The AsyncAPI document of a bare broker: FastStream's 3.0.0 document, served as JSON, with the
contract's schema for subscribers that take raw records; tests/contract/test_asyncapi.py checks
every service's committed document."""

import json
from typing import Any

import httpx
from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel

from cmhl_contracts import (
    AgencyReferralSubmittedV1,
    FollowUpDueV1,
    ReferralCreatedV1,
    ReferralFeedbackV1,
)
from cmhl_servicekit.asyncapi import (
    asyncapi_document,
    asyncapi_router,
    contract_of,
    declare_dead_letter_publishers,
    render,
)


class OrderPlaced(BaseModel):
    """An order was placed."""

    order_id: str
    quantity: int


class OrderShipped(BaseModel):
    """An order left the warehouse."""

    order_id: str
    carrier: str


def _broker() -> KafkaBroker:
    broker = KafkaBroker("localhost:9092")

    @broker.subscriber("shop.orders", group_id="shop.shipping")
    async def on_order_placed(order: OrderPlaced) -> None:
        """Ships what was ordered."""

    broker.publisher("shop.shipped", schema=OrderShipped, title="shop.shipped")
    return broker


def _document(broker: KafkaBroker) -> dict[str, Any]:
    return asyncapi_document(broker, title="Shop", description="Orders and shipping.")


def _payload(document: dict[str, Any], address: str) -> dict[str, Any]:
    """The schema of the one message of the channel at `address`."""
    [channel] = [c for c in document["channels"].values() if c["address"] == address]
    [reference] = channel["messages"].values()
    message_name = reference["$ref"].removeprefix("#/components/messages/")
    payload_ref = document["components"]["messages"][message_name]["payload"]["$ref"]
    schema: dict[str, Any] = document["components"]["schemas"][
        payload_ref.removeprefix("#/components/schemas/")
    ]
    return schema


def test_subscribers_and_publishers_are_channels_with_their_payload_schema() -> None:
    document = _document(_broker())
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] == "Shop"
    assert document["info"]["description"] == "Orders and shipping."
    assert {c["address"] for c in document["channels"].values()} == {"shop.orders", "shop.shipped"}
    placed = _payload(document, "shop.orders")
    assert placed["title"] == "OrderPlaced"
    assert set(placed["properties"]) == {"order_id", "quantity"}
    shipped = _payload(document, "shop.shipped")
    assert shipped["title"] == "OrderShipped"
    assert set(shipped["properties"]) == {"order_id", "carrier"}
    actions = {
        operation["channel"]["$ref"].removeprefix("#/channels/"): operation["action"]
        for operation in document["operations"].values()
    }
    assert sorted(actions.values()) == ["receive", "send"]


def test_a_subscriber_taking_raw_records_of_a_contract_topic_is_given_the_contract() -> None:
    broker = KafkaBroker("localhost:9092")

    @broker.subscriber(ReferralCreatedV1.topic(), group_id="cmhl.test.referrals")
    async def on_referral_created(message: KafkaMessage) -> None:
        """Decodes the batch itself, as our batch subscribers do."""

    @broker.subscriber("shop.audit", group_id="cmhl.test.audit")
    async def on_audit(message: KafkaMessage) -> None:
        """No contract: left as FastStream found it."""

    document = _document(broker)
    referral = _payload(document, ReferralCreatedV1.topic())
    assert referral["title"] == ReferralCreatedV1.model_json_schema()["title"]
    assert set(referral["properties"]) == set(ReferralCreatedV1.model_fields)
    # Its nested models sit beside it, where its references point.
    for name in ("ReferralSource", "PersonLocation"):
        assert f"#/components/schemas/{name}" in json.dumps(referral)
        assert name in document["components"]["schemas"]
    assert "#/$defs/" not in json.dumps(document)
    assert _payload(document, "shop.audit")["title"] == "EmptyPayload"


def test_dead_letters_of_every_topic_read_are_declared_with_its_contract() -> None:
    broker = KafkaBroker("localhost:9092")

    @broker.subscriber(
        FollowUpDueV1.topic(), ReferralCreatedV1.topic(), group_id="cmhl.test.dead-letters"
    )
    async def on_event(message: KafkaMessage) -> None:
        """Reads two topics."""

    declare_dead_letter_publishers(broker)
    document = _document(broker)
    for event in (FollowUpDueV1, ReferralCreatedV1):
        assert _payload(document, event.dlq_topic())["title"] == event.__name__
    sends = [o for o in document["operations"].values() if o["action"] == "send"]
    assert len(sends) == 2


def test_agency_and_dead_letter_topics_carry_their_shared_topics_contract() -> None:
    assert contract_of(ReferralCreatedV1.topic()) is ReferralCreatedV1
    assert contract_of(ReferralCreatedV1.dlq_topic()) is ReferralCreatedV1
    own_intake = AgencyReferralSubmittedV1.agency_topic("columbia-pd")
    assert contract_of(own_intake) is AgencyReferralSubmittedV1
    assert contract_of(f"{own_intake}.dlq") is AgencyReferralSubmittedV1
    assert contract_of(ReferralFeedbackV1.agency_topic("columbia-pd")) is ReferralFeedbackV1
    assert contract_of("shop.orders") is None
    assert contract_of(f"{ReferralCreatedV1.topic()}x") is None


def test_the_rendered_document_does_not_depend_on_declaration_order() -> None:
    events = (ReferralCreatedV1, FollowUpDueV1, ReferralFeedbackV1)
    rendered = []
    for order in (events, events[::-1]):
        broker = KafkaBroker("localhost:9092")
        for event in order:
            broker.publisher(event.topic(), schema=event, title=event.topic())
        rendered.append(render(_document(broker)))
    assert rendered[0] == rendered[1]
    assert rendered[0].endswith("}\n")
    document = json.loads(rendered[0])
    assert list(document) == sorted(document)
    assert list(document["channels"]) == sorted(e.topic() for e in events)


async def test_the_router_serves_the_document_as_json_outside_the_openapi_schema() -> None:
    broker = _broker()
    app = FastAPI()
    app.include_router(asyncapi_router(broker, title="Shop", description="Orders and shipping."))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/asyncapi")
        again = await client.get("/asyncapi")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == _document(broker)
    assert response.json()["asyncapi"] == "3.0.0"
    assert again.content == response.content
    assert "<script" not in response.text
    assert "/asyncapi" not in app.openapi()["paths"]


async def test_the_document_is_not_served_through_a_proxy() -> None:
    """Like /metrics: the ingress would publish the topics, the agencies and the brokers."""
    app = FastAPI()
    app.include_router(asyncapi_router(KafkaBroker("kafka:9092"), title="t", description="d"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/asyncapi")).status_code == 200
        proxied = await client.get("/asyncapi", headers={"X-Forwarded-For": "203.0.113.9"})
        assert proxied.status_code == 404
