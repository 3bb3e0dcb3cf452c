"""Translation from the referral aggregate to the contract events it publishes."""

from cmhl_contracts import ReferralCreatedV1
from cmhl_referral.domain.referral import Referral

PRODUCER = "cmhl-referral"


def referral_created(
    referral: Referral, correlation_id: str, causation_id: str | None
) -> ReferralCreatedV1:
    return ReferralCreatedV1.create(
        about=(str(referral.referral_id),),
        producer=PRODUCER,
        correlation_id=correlation_id,
        causation_id=causation_id,
        occurred_at=referral.received_at,
        referral_id=referral.referral_id,
        person_id=referral.person_id,
        agency_id=referral.agency_id,
        source=referral.source,
        court_type=referral.court_type,
        county_fips=referral.county_fips,
        primary_need=referral.primary_need,
        other_needs=referral.other_needs,
        person_location=referral.person_location,
        liaison_id=referral.assignment.liaison_id,
        cmhc_id=referral.assignment.cmhc_id,
        referred_at=referral.referred_at,
        repeat_involvement=referral.repeat_involvement,
        part2_consent=referral.part2_consent is not None,
    )
