"""MongoDB adapter of the registry: CMHCs and liaisons (with their embedded outbox), the shared
round-robin counters, and the open-referral counts least-loaded assignment reads."""

import contextlib
from datetime import date
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cmhl_contracts import IntegrationEvent
from cmhl_contracts.registry import LiaisonStatus
from cmhl_referral.adapters.mongo import REFERRALS
from cmhl_referral.application.ports import ConcurrentChange
from cmhl_referral.domain.lifecycle import CLOSED
from cmhl_referral.domain.registry import (
    UNASSIGNED,
    AreaChange,
    Cmhc,
    Liaison,
    LiaisonTerms,
    Registry,
)
from cmhl_servicekit.consuming import run_bounded
from cmhl_servicekit.outbox import Outbox

Document = dict[str, Any]

CMHCS = "cmhcs"
LIAISONS = "liaisons"
# Round-robin turns: one document per turn handed out (`<pool>|<n>`), inserted under a unique
# `_id`, which is atomic on every MongoDB-wire server (FerretDB's updates are read-modify-write,
# so an `$inc` shared by replicas could hand one turn out twice). `assignment_counters` keeps
# each pool's last number as a hint where to start; a stale hint only costs a retry.
ASSIGNMENT_TURNS = "assignment_turns"
ASSIGNMENT_COUNTERS = "assignment_counters"
# Open referrals are those not in a closed status; counted on the (liaison_id, received_at) index.
CLOSED_STATUSES = sorted(s.value for s in CLOSED)


class MongoRegistryRepository:
    def __init__(self, db: AsyncDatabase[Document], outbox: Outbox) -> None:
        self._db = db
        self._cmhcs = db[CMHCS]
        self._liaisons = db[LIAISONS]
        self._turns = db[ASSIGNMENT_TURNS]
        self._counters = db[ASSIGNMENT_COUNTERS]
        self._referrals = db[REFERRALS]
        self._outbox = outbox

    async def registry(self) -> Registry:
        cmhcs = [_cmhc(d) async for d in self._cmhcs.find({}, {"outbox": 0}).sort("_id", 1)]
        liaisons = [
            _liaison(d) async for d in self._liaisons.find({}, {"outbox": 0}).sort("_id", 1)
        ]
        return Registry(cmhcs, liaisons)

    async def cmhc(self, cmhc_id: str) -> Cmhc | None:
        document = await self._cmhcs.find_one({"_id": cmhc_id}, {"outbox": 0})
        return None if document is None else _cmhc(document)

    async def liaison(self, liaison_id: str) -> Liaison | None:
        document = await self._liaisons.find_one({"_id": liaison_id}, {"outbox": 0})
        return None if document is None else _liaison(document)

    async def add_cmhc(self, cmhc: Cmhc, events: list[IntegrationEvent]) -> bool:
        if not await self._outbox.insert(CMHCS, _cmhc_document(cmhc), events):
            return False
        cmhc.version = 1
        return True

    async def save_cmhc(self, cmhc: Cmhc, events: list[IntegrationEvent]) -> None:
        changes = {k: v for k, v in _cmhc_document(cmhc).items() if k != "_id"}
        if not await self._outbox.update(CMHCS, cmhc.cmhc_id, cmhc.version, changes, events):
            raise ConcurrentChange
        cmhc.version += 1

    async def add_liaison(self, liaison: Liaison, events: list[IntegrationEvent]) -> bool:
        if not await self._outbox.insert(LIAISONS, _liaison_document(liaison), events):
            return False
        liaison.version = 1
        return True

    async def save_liaison(self, liaison: Liaison, events: list[IntegrationEvent]) -> None:
        changes = {k: v for k, v in _liaison_document(liaison).items() if k != "_id"}
        saved = await self._outbox.update(
            LIAISONS, liaison.liaison_id, liaison.version, changes, events
        )
        if not saved:
            raise ConcurrentChange
        liaison.version += 1

    async def next_ticket(self, pool: str) -> int:
        hint = await self._counters.find_one({"_id": pool})
        number = int(hint["last"]) + 1 if hint else 0
        while True:
            try:
                await self._turns.insert_one({"_id": f"{pool}|{number}", "pool": pool})
                break
            except DuplicateKeyError:
                number += 1  # another replica took this turn
        # Two replicas creating the hint at once collide; either value is a fine hint.
        with contextlib.suppress(DuplicateKeyError):
            await self._counters.update_one({"_id": pool}, {"$max": {"last": number}}, upsert=True)
        return number

    async def open_referrals(self, liaison_ids: list[str]) -> dict[str, int]:
        counts = await run_bounded(
            (
                self._referrals.count_documents(
                    {"liaison_id": liaison, "status": {"$nin": CLOSED_STATUSES}}
                )
                for liaison in liaison_ids
            ),
            8,
        )
        return dict(zip(liaison_ids, counts, strict=True))

    async def unassigned_open(self) -> int:
        return await self._referrals.count_documents(
            {"liaison_id": UNASSIGNED, "status": {"$nin": CLOSED_STATUSES}}
        )


def _cmhc_document(cmhc: Cmhc) -> Document:
    return {
        "_id": cmhc.cmhc_id,
        "name": cmhc.name,
        "areas": [
            {"effective_from": a.effective_from.isoformat(), "counties": sorted(a.counties)}
            for a in cmhc.areas
        ],
    }


def _cmhc(document: Document) -> Cmhc:
    return Cmhc(
        cmhc_id=document["_id"],
        name=document["name"],
        areas=[
            AreaChange(date.fromisoformat(a["effective_from"]), frozenset(a["counties"]))
            for a in document["areas"]
        ],
        version=document["version"],
    )


def _liaison_document(liaison: Liaison) -> Document:
    return {
        "_id": liaison.liaison_id,
        "terms": [
            {
                "effective_from": t.effective_from.isoformat(),
                "cmhc_id": t.cmhc_id,
                "status": t.status.value,
                "coverage": sorted(t.coverage),
            }
            for t in liaison.terms
        ],
    }


def _liaison(document: Document) -> Liaison:
    return Liaison(
        liaison_id=document["_id"],
        terms=[
            LiaisonTerms(
                date.fromisoformat(t["effective_from"]),
                t["cmhc_id"],
                LiaisonStatus(t["status"]),
                frozenset(t["coverage"]),
            )
            for t in document["terms"]
        ],
        version=document["version"],
    )
