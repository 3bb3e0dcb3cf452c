"""The wire contract: topic names, deterministic ids, vocabularies and privacy of events."""

import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from cmhl_contracts import (
    ALL_EVENTS,
    AgencyReferralSubmittedV1,
    ReferralCreatedV1,
    TrainingCompletedV1,
    deterministic_event_id,
)
from cmhl_contracts.counties import MISSOURI_COUNTIES

PERSON_ID = "a" * 32


def referral_created(**overrides: object) -> ReferralCreatedV1:
    fields: dict[str, Any] = {
        "referral_id": uuid.UUID(int=1),
        "person_id": PERSON_ID,
        "agency_id": "stl-pd",
        "source": "municipal_police",
        "county_fips": "29510",
        "primary_need": "behavioral_needs",
        "person_location": "community",
        "liaison_id": "liaison-01",
        "cmhc_id": "cmhc-01",
        "referred_at": datetime(2018, 9, 1, tzinfo=UTC),
        "repeat_involvement": False,
    } | overrides
    return ReferralCreatedV1.create(about=("r1",), producer="test", correlation_id="c1", **fields)


def test_topics_are_derived_from_the_class_name_context_and_major_version() -> None:
    assert ReferralCreatedV1.topic() == "cmhl.referral.referral-created.v1"
    assert AgencyReferralSubmittedV1.topic() == "cmhl.agency.agency-referral-submitted.v1"
    assert TrainingCompletedV1.dlq_topic() == "cmhl.training.training-completed.v1.dlq"
    assert len({event.topic() for event in ALL_EVENTS}) == len(ALL_EVENTS)


def test_the_same_fact_always_gets_the_same_event_id() -> None:
    first, again = referral_created(), referral_created()
    assert first.event_id == again.event_id
    assert (
        first.event_id
        != ReferralCreatedV1.create(
            about=("r2",),
            producer="test",
            correlation_id="c1",
            **first.model_dump(
                include=set(ReferralCreatedV1.model_fields)
                - {
                    "event_id",
                    "event_type",
                    "schema_version",
                    "occurred_at",
                    "producer",
                    "correlation_id",
                    "causation_id",
                }
            ),
        ).event_id
    )
    assert deterministic_event_id("a", "b") != deterministic_event_id("ab")


def test_header_is_complete_and_times_are_utc() -> None:
    event = referral_created(
        referred_at=datetime(2018, 9, 1, 6, tzinfo=timezone(timedelta(hours=-6)))
    )
    assert event.event_type == "referral-created"
    assert event.schema_version == 1
    assert event.referred_at == datetime(2018, 9, 1, 12, tzinfo=UTC)
    assert event.referred_at.tzinfo == UTC
    with pytest.raises(ValidationError):
        referral_created(referred_at=datetime(2018, 9, 1))  # noqa: DTZ001 - naive on purpose


def test_events_are_immutable_and_ignore_unknown_fields_from_newer_minor_versions() -> None:
    event = referral_created()
    with pytest.raises(ValidationError):
        event.person_id = "b" * 32  # type: ignore[misc]
    payload = json.loads(event.model_dump_json()) | {"added_in_v1_1": "x"}
    assert ReferralCreatedV1.model_validate(payload) == event


@pytest.mark.parametrize("county", ["29000", "29191", "17001", "2951", "29510x"])
def test_unknown_county_codes_are_rejected(county: str) -> None:
    with pytest.raises(ValidationError):
        referral_created(county_fips=county)


def test_missouri_has_114_counties_and_st_louis_city() -> None:
    assert len(MISSOURI_COUNTIES) == 115
    assert MISSOURI_COUNTIES["29510"] == "St. Louis City"
    assert MISSOURI_COUNTIES["29186"] == "Ste. Genevieve"


def test_court_type_goes_with_courts_only() -> None:
    base: dict[str, Any] = {
        "agency_reference": "R-1",
        "county_fips": "29019",
        "primary_need": "other",
        "person_location": "detention",
        "referred_at": datetime(2018, 1, 1, tzinfo=UTC),
        "person": {"given_name": "A", "family_name": "B", "birth_date": date(1990, 1, 1)},
    }
    with pytest.raises(ValidationError, match="court_type"):
        AgencyReferralSubmittedV1.create(
            about=("x",),
            producer="t",
            correlation_id="c",
            agency={"agency_id": "boone-court", "source": "court"},
            **base,
        )
    ok = AgencyReferralSubmittedV1.create(
        about=("x",),
        producer="t",
        correlation_id="c",
        agency={"agency_id": "boone-court", "source": "court", "court_type": "mental_health"},
        **base,
    )
    assert ok.kafka_key() == b"boone-court:R-1"


def test_internal_events_carry_no_name_birth_date_or_narrative() -> None:
    forbidden = ("name", "birth", "narrative", "dob")
    for event in ALL_EVENTS:
        if event is AgencyReferralSubmittedV1:
            continue  # the restricted intake topic: reduced to a pseudonym on arrival
        schema = json.dumps(event.model_json_schema()).lower()
        assert not any(word in schema for word in forbidden), event.__name__


def test_person_ids_must_look_pseudonymous() -> None:
    with pytest.raises(ValidationError):
        referral_created(person_id="Jane Doe 1990-01-02")


def test_kafka_key_is_the_aggregate_id() -> None:
    assert referral_created().kafka_key() == str(uuid.UUID(int=1)).encode()
