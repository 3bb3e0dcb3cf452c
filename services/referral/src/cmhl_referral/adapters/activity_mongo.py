"""MongoDB adapter of consultations and barriers: one document per record, its event in the
document's embedded outbox (written in the same insert), listings served by the indexes below."""

import uuid
from datetime import UTC, date, datetime, time
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from cmhl_contracts import IntegrationEvent
from cmhl_contracts.activity import BarrierKind, ConsultationTopic
from cmhl_contracts.vocabulary import ReferralSource
from cmhl_referral.application.activity import ActivityQuery
from cmhl_referral.domain.activity import Barrier, Consultation
from cmhl_servicekit.outbox import Outbox

Document = dict[str, Any]

CONSULTATIONS = "consultations"
BARRIERS = "barriers"
# Newest day first, then id: the order of every listing, and the last key of each index, so a
# page is an index range whatever the scope.
ORDER = [("occurred_on", -1), ("_id", -1)]


async def ensure_activity_indexes(db: AsyncDatabase[Document]) -> None:
    for collection in (CONSULTATIONS, BARRIERS):
        # The caller's scope: a liaison's own, a supervisor's CMHC's, a county (program admin).
        await db[collection].create_index([("recorded_by", 1), ("occurred_on", -1)])
        await db[collection].create_index([("cmhc_id", 1), ("occurred_on", -1)])
        await db[collection].create_index([("county_fips", 1), ("occurred_on", -1)])
        await db[collection].create_index([("occurred_on", -1)])
    await db[BARRIERS].create_index([("referral_id", 1), ("occurred_on", -1)])


def day_start(day: date) -> datetime:
    """A day as stored: its midnight in UTC (the database has no date type); it is the program's
    day as the liaison gave it, never converted between zones."""
    return datetime.combine(day, time(), UTC)


class MongoActivityRepository:
    def __init__(self, db: AsyncDatabase[Document], outbox: Outbox) -> None:
        self._consultations = db[CONSULTATIONS]
        self._barriers = db[BARRIERS]
        self._outbox = outbox

    async def add_consultation(
        self, consultation: Consultation, events: list[IntegrationEvent]
    ) -> bool:
        return await self._outbox.insert(
            CONSULTATIONS, _consultation_document(consultation), events
        )

    async def get_consultation(self, consultation_id: uuid.UUID) -> Consultation | None:
        found = await self._consultations.find_one({"_id": str(consultation_id)}, {"outbox": 0})
        return None if found is None else _consultation(found)

    async def find_consultations(self, query: ActivityQuery) -> list[Consultation]:
        cursor = self._consultations.find(_selector(query), {"outbox": 0}, limit=query.limit)
        return [_consultation(d) for d in await cursor.sort(ORDER).to_list(None)]

    async def add_barrier(self, barrier: Barrier, events: list[IntegrationEvent]) -> bool:
        return await self._outbox.insert(BARRIERS, _barrier_document(barrier), events)

    async def get_barrier(self, barrier_id: uuid.UUID) -> Barrier | None:
        found = await self._barriers.find_one({"_id": str(barrier_id)}, {"outbox": 0})
        return None if found is None else _barrier(found)

    async def find_barriers(self, query: ActivityQuery) -> list[Barrier]:
        cursor = self._barriers.find(_selector(query), {"outbox": 0}, limit=query.limit)
        return [_barrier(d) for d in await cursor.sort(ORDER).to_list(None)]


def _selector(query: ActivityQuery) -> Document:
    """One flat selector: equalities on the scope's fields and one range on `occurred_on`, the
    shape the (scope, occurred_on) indexes serve (as the caseload's query does)."""
    selector: Document = {
        field: value
        for field, value in (
            ("recorded_by", query.recorded_by),
            ("cmhc_id", query.cmhc_id),
            ("county_fips", query.county_fips),
            ("referral_id", str(query.referral_id) if query.referral_id else None),
        )
        if value is not None
    }
    occurred: Document = {}
    if query.occurred_from:
        occurred["$gte"] = day_start(query.occurred_from)
    if query.occurred_to:
        occurred["$lte"] = day_start(query.occurred_to)
    if query.after:
        day, last_id = query.after
        at = day_start(day)
        # Implied by the $or below; said again so the range bounds the index scan.
        occurred["$lte"] = min(at, occurred.get("$lte", at))
        selector["$or"] = [
            {"occurred_on": {"$lt": at}},
            {"occurred_on": at, "_id": {"$lt": last_id}},
        ]
    if occurred:
        selector["occurred_on"] = occurred
    return selector


def _common(
    record_id: uuid.UUID,
    record: Consultation | Barrier,
) -> Document:
    return {
        "_id": str(record_id),
        "county_fips": record.county_fips,
        "referral_id": str(record.referral_id) if record.referral_id else None,
        "person_id": record.person_id,
        "occurred_on": day_start(record.occurred_on),
        "recorded_by": record.recorded_by,
        "cmhc_id": record.cmhc_id,
        "recorded_at": record.recorded_at,
    }


def _consultation_document(consultation: Consultation) -> Document:
    return _common(consultation.consultation_id, consultation) | {
        "asked_by": consultation.asked_by.value,
        "topic": consultation.topic.value,
    }


def _barrier_document(barrier: Barrier) -> Document:
    return _common(barrier.barrier_id, barrier) | {"kind": barrier.kind.value}


def _referral_id(doc: Document) -> uuid.UUID | None:
    return uuid.UUID(doc["referral_id"]) if doc.get("referral_id") else None


def _recorded_at(doc: Document) -> datetime:
    at: datetime = doc["recorded_at"]
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _consultation(doc: Document) -> Consultation:
    return Consultation(
        consultation_id=uuid.UUID(doc["_id"]),
        county_fips=doc["county_fips"],
        asked_by=ReferralSource(doc["asked_by"]),
        topic=ConsultationTopic(doc["topic"]),
        referral_id=_referral_id(doc),
        person_id=doc.get("person_id"),
        occurred_on=doc["occurred_on"].date(),
        recorded_by=doc["recorded_by"],
        cmhc_id=doc.get("cmhc_id"),
        recorded_at=_recorded_at(doc),
    )


def _barrier(doc: Document) -> Barrier:
    return Barrier(
        barrier_id=uuid.UUID(doc["_id"]),
        kind=BarrierKind(doc["kind"]),
        county_fips=doc["county_fips"],
        referral_id=_referral_id(doc),
        person_id=doc.get("person_id"),
        occurred_on=doc["occurred_on"].date(),
        recorded_by=doc["recorded_by"],
        cmhc_id=doc.get("cmhc_id"),
        recorded_at=_recorded_at(doc),
    )
