"""The v1 wire events of the program's registry: CMHCs' service areas and their liaisons.

Each change carries the day it takes effect, so a consumer can tell which CMHC served a county
(and which liaisons it had) on any day. Keyed by the CMHC or liaison id, so one record's changes
stay in order. No event names a person: a liaison is known by their sign-in subject only."""

from enum import StrEnum
from typing import ClassVar, Final

from pydantic import Field

from cmhl_contracts.envelope import BoundedDate, IntegrationEvent
from cmhl_contracts.events import CountyFips, Identifier


class LiaisonStatus(StrEnum):
    """Only an active liaison is assigned new referrals."""

    ACTIVE = "active"
    ON_LEAVE = "on_leave"
    INACTIVE = "inactive"


class _RegistryEvent(IntegrationEvent):
    CONTEXT: ClassVar[str] = "referral"

    sequence: int = Field(ge=1, description="Position of this change in the record's history")
    effective_from: BoundedDate = Field(description="The program day (America/Chicago) it holds")


class CmhcServiceAreaChangedV1(_RegistryEvent):
    """A CMHC was registered, or the counties it serves changed from a day on."""

    cmhc_id: Identifier
    counties: list[CountyFips] = Field(description="Every county it serves from that day")

    def kafka_key(self) -> bytes:
        return self.cmhc_id.encode()


class LiaisonChangedV1(_RegistryEvent):
    """A liaison was registered, or their CMHC, status or coverage changed from a day on."""

    liaison_id: Identifier = Field(description="The liaison's sign-in subject")
    cmhc_id: Identifier
    status: LiaisonStatus
    coverage: list[CountyFips] = Field(
        description="Counties of the CMHC's area they take; empty means all of it"
    )

    def kafka_key(self) -> bytes:
        return self.liaison_id.encode()


REGISTRY_EVENTS: Final[tuple[type[IntegrationEvent], ...]] = (
    CmhcServiceAreaChangedV1,
    LiaisonChangedV1,
)

__all__ = ["REGISTRY_EVENTS", "CmhcServiceAreaChangedV1", "LiaisonChangedV1", "LiaisonStatus"]
