"""MongoDB adapters: facilities and requests with an embedded outbox, durable timers with
insert-only claims, an append-only audit log.

FerretDB answers only `_id` lookups without scanning, so hot paths are `_id` reads, inserts and
version-checked updates of one document; the scans (facility list, due timers, a liaison's
requests) run over small collections: a state has some fifty facilities, and timers are deleted
once fired."""

import uuid
from dataclasses import asdict
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from cmhl_contracts import IntegrationEvent
from cmhl_contracts.placement import (
    AgeGroup,
    AttemptResult,
    ClinicalNeed,
    SecurityLevel,
    UnitType,
)
from cmhl_placement.application.ports import ConcurrentChange, TimerKind
from cmhl_placement.domain.facility import Facility, Unit
from cmhl_placement.domain.request import Attempt, PlacementRequest
from cmhl_servicekit import timers
from cmhl_servicekit.outbox import Outbox

Document = dict[str, Any]
FACILITIES = "facilities"
REQUESTS = "placement_requests"
CLAIMS: dict[TimerKind, str] = {
    "stale": "stale_reminders",
    "due_soon": "deadline_flags",
    "overdue": "deadline_flags",
}
_HIDDEN = {"outbox": 0}


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[REQUESTS].create_index([("liaison_id", 1), ("requested_at", -1)])
    await db[REQUESTS].create_index([("cmhc_id", 1), ("requested_at", -1)])
    # A referral's bed searches, on its page.
    await db[REQUESTS].create_index([("referral_id", 1), ("requested_at", -1)])
    # The registry's lists: by county, by region (each in id order).
    await db[FACILITIES].create_index([("county_fips", 1), ("_id", 1)])
    await db[FACILITIES].create_index([("cmhc_region", 1), ("_id", 1)])
    await timers.MongoTimerStore(db).ensure_indexes()


def _facility_document(f: Facility) -> Document:
    return {
        "_id": f.facility_id,
        "name": f.name,
        "county_fips": f.county_fips,
        "cmhc_region": f.cmhc_region,
        "phone": f.phone,
        "accepts": sorted(f.accepts),
        "involuntary_holds": f.involuntary_holds,
        "medical_clearance_required": f.medical_clearance_required,
        "exclusions": sorted(f.exclusions),
        "units": [
            {
                "unit_type": u.unit_type.value,
                "capacity": u.capacity,
                "available": u.available,
                "reported_at": u.reported_at,
                "reported_by": u.reported_by,
                "patient_types": sorted(u.patient_types),
                "involuntary_holds": u.involuntary_holds,
                "security_level": u.security_level.value,
                "exclusions": sorted(u.exclusions),
            }
            for u in f.units.values()
        ],
        "sequence": f.sequence,
        "contact_email": f.contact_email,
        "record_version": f.record_version,
    }


def _facility(d: Document) -> Facility:
    units = {}
    for u in d["units"]:
        unit_type = UnitType(u["unit_type"])
        # Units listed before the registry carry no settings: the defaults of their type.
        units[unit_type] = Unit(
            unit_type,
            u["capacity"],
            u["available"],
            u["reported_at"],
            u["reported_by"],
            frozenset(AgeGroup(a) for a in u.get("patient_types", ())),
            u.get("involuntary_holds", True),
            SecurityLevel(u.get("security_level", SecurityLevel.LOCKED)),
            frozenset(ClinicalNeed(e) for e in u.get("exclusions", ())),
        )
    return Facility(
        facility_id=d["_id"],
        name=d["name"],
        county_fips=d["county_fips"],
        cmhc_region=d["cmhc_region"],
        phone=d["phone"],
        accepts=frozenset(AgeGroup(a) for a in d["accepts"]),
        involuntary_holds=d["involuntary_holds"],
        medical_clearance_required=d["medical_clearance_required"],
        exclusions=frozenset(ClinicalNeed(e) for e in d["exclusions"]),
        units=units,
        sequence=d["sequence"],
        version=d["version"],
        contact_email=d.get("contact_email", ""),
        record_version=d.get("record_version", 1),
    )


class MongoFacilityRepository:
    def __init__(self, db: AsyncDatabase[Document], outbox: Outbox) -> None:
        self._facilities = db[FACILITIES]
        self._outbox = outbox

    async def add(self, facility: Facility, events: list[IntegrationEvent]) -> bool:
        return await self._outbox.insert(FACILITIES, _facility_document(facility), events)

    async def get(self, facility_id: str) -> Facility | None:
        d = await self._facilities.find_one({"_id": facility_id}, _HIDDEN)
        return _facility(d) if d else None

    async def all(self) -> list[Facility]:
        return [_facility(d) for d in await self._facilities.find({}, _HIDDEN).to_list(None)]

    async def find(
        self, *, county_fips: str | None, cmhc_region: str | None, limit: int
    ) -> list[Facility]:
        query: Document = {"county_fips": county_fips} if county_fips else {}
        if cmhc_region:
            query["cmhc_region"] = cmhc_region
        if not query:
            # Every facility, a page in id order: a range on `_id` lets the database walk its
            # primary key (an empty filter would scan the table and sort it).
            query["_id"] = {"$gt": ""}
        cursor = self._facilities.find(query, _HIDDEN, limit=limit).sort("_id", 1)
        return [_facility(d) for d in await cursor.to_list(None)]

    async def save(self, facility: Facility, events: list[IntegrationEvent]) -> None:
        changes = _facility_document(facility)
        del changes["_id"]
        if not await self._outbox.update(
            FACILITIES, facility.facility_id, facility.version, changes, events
        ):
            raise ConcurrentChange(facility.facility_id)


def _request_document(r: PlacementRequest) -> Document:
    return {
        "_id": str(r.request_id),
        "referral_id": str(r.referral_id),
        "person_id": r.person_id,
        "liaison_id": r.liaison_id,
        "cmhc_id": r.cmhc_id,
        "county_fips": r.county_fips,
        "age_group": r.age_group.value,
        "needs": sorted(r.needs),
        "detention_started_at": r.detention_started_at,
        "requested_at": r.requested_at,
        "status": r.status,
        "attempts": [
            asdict(a) | {"result": a.result.value, "attempted_at": a.attempted_at}
            for a in r.attempts
        ],
        "placed_facility_id": r.placed_facility_id,
        "completed_at": r.completed_at,
        "failure_reason": r.failure_reason,
    }


def _request(d: Document) -> PlacementRequest:
    return PlacementRequest(
        request_id=uuid.UUID(d["_id"]),
        referral_id=uuid.UUID(d["referral_id"]),
        person_id=d["person_id"],
        liaison_id=d["liaison_id"],
        cmhc_id=d["cmhc_id"],
        county_fips=d["county_fips"],
        age_group=AgeGroup(d["age_group"]),
        needs=frozenset(ClinicalNeed(n) for n in d["needs"]),
        detention_started_at=d["detention_started_at"],
        requested_at=d["requested_at"],
        status=d["status"],
        attempts=[
            Attempt(
                a["sequence"],
                a["facility_id"],
                a["attempted_at"],
                AttemptResult(a["result"]),
                a["reason_code"],
                a.get("attempt_id"),
            )
            for a in d["attempts"]
        ],
        placed_facility_id=d["placed_facility_id"],
        completed_at=d["completed_at"],
        failure_reason=d["failure_reason"],
        version=d["version"],
    )


class MongoRequestRepository:
    def __init__(self, db: AsyncDatabase[Document], outbox: Outbox) -> None:
        self._requests = db[REQUESTS]
        self._outbox = outbox

    async def add(self, request: PlacementRequest, events: list[IntegrationEvent]) -> bool:
        return await self._outbox.insert(REQUESTS, _request_document(request), events)

    async def get(self, request_id: uuid.UUID) -> PlacementRequest | None:
        d = await self._requests.find_one({"_id": str(request_id)}, _HIDDEN)
        return _request(d) if d else None

    async def save(self, request: PlacementRequest, events: list[IntegrationEvent]) -> None:
        changes = _request_document(request)
        del changes["_id"]
        if not await self._outbox.update(
            REQUESTS, str(request.request_id), request.version, changes, events
        ):
            raise ConcurrentChange(str(request.request_id))
        request.version += 1

    async def find(
        self,
        *,
        liaison_id: str | None,
        cmhc_id: str | None,
        limit: int,
        referral_id: str | None = None,
    ) -> list[PlacementRequest]:
        query: Document = {"liaison_id": liaison_id} if liaison_id else {"cmhc_id": cmhc_id}
        if referral_id:
            query["referral_id"] = referral_id
        cursor = self._requests.find(query, _HIDDEN, limit=limit).sort("requested_at", -1)
        return [_request(d) for d in await cursor.to_list(None)]


class MongoTimerStore(timers.MongoTimerStore):
    """Servicekit's durable timers, plus the insert-only claims that make firing idempotent."""

    def __init__(self, db: AsyncDatabase[Document], outbox: Outbox) -> None:
        super().__init__(db)
        self._outbox = outbox

    async def claim(self, claim_id: str, kind: TimerKind, event: IntegrationEvent) -> bool:
        claim = {"_id": claim_id, "kind": kind, "claimed_at": event.occurred_at}
        return await self._outbox.insert(CLAIMS[kind], claim, [event])
