"""Referral business rules: lifecycle, repeat involvement, idempotent ids, service areas."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_contracts.vocabulary import ReferralStatus as S
from cmhl_referral.domain.assignment import SERVICE_AREAS
from cmhl_referral.domain.lifecycle import (
    ALLOWED_TRANSITIONS,
    CLOSED,
    IllegalTransition,
    check_transition,
)
from cmhl_referral.domain.referral import (
    InvalidReferral,
    check_referred_at,
    is_repeat_involvement,
    referral_id_for,
)

T0 = datetime(2018, 6, 1, 12, tzinfo=UTC)


def test_every_status_has_a_rule_and_closed_statuses_allow_nothing() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(S)
    assert {
        S.CONNECTED_TO_TREATMENT,
        S.DECLINED,
        S.DECLINED_BY_PERSON,
        S.LOST_TO_FOLLOW_UP,
        S.REFERRED_ELSEWHERE,
    } == CLOSED


def test_the_brochure_journey_is_allowed() -> None:
    journey = [
        S.RECEIVED,
        S.ACCEPTED,
        S.UNABLE_TO_CONTACT,
        S.APPOINTMENT_SCHEDULED,
        S.NO_SHOW,
        S.APPOINTMENT_SCHEDULED,
        S.ATTENDED,
        S.CONNECTED_TO_TREATMENT,
    ]
    for current, following in itertools.pairwise(journey):
        check_transition(current, following)


def test_an_illegal_transition_names_the_allowed_ones() -> None:
    with pytest.raises(IllegalTransition) as raised:
        check_transition(S.RECEIVED, S.ATTENDED)
    assert raised.value.allowed == sorted([S.ACCEPTED, S.DECLINED, S.REFERRED_ELSEWHERE])
    with pytest.raises(IllegalTransition):
        check_transition(S.CONNECTED_TO_TREATMENT, S.ACCEPTED)


@pytest.mark.parametrize(
    ("earlier", "repeat"),
    [
        ([], False),
        ([T0 - timedelta(days=90)], True),
        ([T0 - timedelta(days=90, seconds=1)], False),
        ([T0 - timedelta(days=1)], True),
        ([T0 + timedelta(days=1)], False),  # a later referral does not make this one a repeat
        ([T0], False),
    ],
)
def test_repeat_involvement_means_another_referral_in_the_90_days_before(
    earlier: list[datetime], repeat: bool
) -> None:
    assert is_repeat_involvement(T0, earlier) is repeat


def test_the_same_agency_reference_always_maps_to_the_same_referral() -> None:
    assert referral_id_for("stl-pd", "R-1") == referral_id_for("stl-pd", "R-1")
    assert referral_id_for("stl-pd", "R-1") != referral_id_for("kc-pd", "R-1")


def test_referred_at_may_not_be_in_the_future_or_a_decade_back() -> None:
    check_referred_at(T0 - timedelta(days=30), T0)
    with pytest.raises(InvalidReferral, match="future"):
        check_referred_at(T0 + timedelta(hours=1), T0)
    with pytest.raises(InvalidReferral, match="10 years"):
        check_referred_at(T0 - timedelta(days=3700), T0)


def test_31_liaisons_cover_every_county() -> None:
    assert set(SERVICE_AREAS) == set(MISSOURI_COUNTIES)
    assert len({a.liaison_id for a in SERVICE_AREAS.values()}) == 31
