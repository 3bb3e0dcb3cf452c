"""The v1 wire events of the treatment and support directory: a referred person connected to a
service of the directory (Open Referral HSDS).

Keyed by the referral id, so a connection stays in order with the referral's other events. No
event names a person: the referral id and the pseudonymous person id only."""

import uuid
from enum import StrEnum
from typing import ClassVar, Final

from pydantic import Field

from cmhl_contracts.envelope import IntegrationEvent, UtcDatetime
from cmhl_contracts.events import CountyFips, Identifier, PseudonymousId


class ServiceType(StrEnum):
    """The program's kinds of treatment and support, mapped from HSDS taxonomy terms."""

    CRISIS = "crisis"
    OUTPATIENT_MENTAL_HEALTH = "outpatient_mental_health"
    SUBSTANCE_USE = "substance_use"
    INPATIENT = "inpatient"
    HOUSING = "housing"
    CASE_MANAGEMENT = "case_management"
    PEER_SUPPORT = "peer_support"
    TRANSPORTATION = "transportation"


class ReferralConnectedToServiceV1(IntegrationEvent):
    """A referred person was connected to a treatment or support service of the directory."""

    CONTEXT: ClassVar[str] = "referral"

    referral_id: uuid.UUID
    person_id: PseudonymousId
    service_id: Identifier = Field(description="The directory's (HSDS) id of the service")
    service_types: list[ServiceType] = Field(max_length=len(ServiceType))
    county_fips: CountyFips = Field(description="The referral's county")
    liaison_id: Identifier
    cmhc_id: Identifier
    connected_at: UtcDatetime
    connected_by: Identifier = Field(description="Staff id of whoever recorded the connection")

    def kafka_key(self) -> bytes:
        return str(self.referral_id).encode()


DIRECTORY_EVENTS: Final[tuple[type[IntegrationEvent], ...]] = (ReferralConnectedToServiceV1,)
