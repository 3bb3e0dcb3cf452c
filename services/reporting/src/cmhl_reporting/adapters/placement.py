"""MongoDB adapter of the latest bed numbers per facility: one small document per facility.

Only the consumer of a facility's partition writes its document (one writer per document, as
FerretDB's unlocked read-modify-write needs). The write is conditional on a lower stored
sequence: a redelivered or older update matches nothing, its upsert hits the existing `_id`
and is dropped, so the newest numbers stay. The collection is outside the view generations:
replaying the topic rebuilds it to the same state, since the newest update always wins."""

import contextlib
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cmhl_reporting.domain.placement import FacilityState, UnitState

Document = dict[str, Any]
COLLECTION = "facility_freshness"


class MongoFacilityStates:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[COLLECTION]

    async def keep_newest(self, states: list[FacilityState]) -> None:
        for state in states:
            # A duplicate key: a same-or-newer sequence is stored already.
            with contextlib.suppress(DuplicateKeyError):
                await self._collection.update_one(
                    {"_id": state.facility_id, "sequence": {"$lt": state.sequence}},
                    {"$set": _document(state)},
                    upsert=True,
                )

    async def all(self) -> list[FacilityState]:
        """Facilities number in the hundreds: the whole (small) collection is read."""
        return [_state(doc) async for doc in self._collection.find({})]


def _document(state: FacilityState) -> Document:
    return {
        "county_fips": state.county_fips,
        "cmhc_region": state.cmhc_region,
        "sequence": state.sequence,
        "updated_at": state.updated_at,
        "units": [
            {
                "unit_type": u.unit_type,
                "capacity": u.capacity,
                "available": u.available,
                "reported_at": u.reported_at,
            }
            for u in state.units
        ],
    }


def _state(doc: Document) -> FacilityState:
    return FacilityState(
        str(doc["_id"]),
        str(doc["county_fips"]),
        str(doc["cmhc_region"]),
        int(doc["sequence"]),
        doc["updated_at"],
        tuple(
            UnitState(
                str(u["unit_type"]), int(u["capacity"]), int(u["available"]), u["reported_at"]
            )
            for u in doc["units"]
        ),
    )
