"""MongoDB adapter of the directory: HSDS services, and referrals' connections to them (each with
its event in an embedded outbox)."""

import hashlib
import json
from dataclasses import asdict
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cmhl_contracts import IntegrationEvent
from cmhl_contracts.directory import ServiceType
from cmhl_referral.application.directory import Stored, sort_name
from cmhl_referral.domain.directory import (
    Connection,
    DirectoryService,
    Eligibility,
    Location,
    Organization,
)
from cmhl_servicekit.outbox import Outbox

Document = dict[str, Any]

DIRECTORY_SERVICES = "directory_services"
REFERRAL_CONNECTIONS = "referral_connections"


async def ensure_directory_indexes(db: AsyncDatabase[Document]) -> None:
    # Every search is one equality on `search_keys` (multikey: `county|type`, `county|*`, ...)
    # and a page by name then id.
    await db[DIRECTORY_SERVICES].create_index([("search_keys", 1), ("sort_name", 1), ("_id", 1)])
    await db[REFERRAL_CONNECTIONS].create_index([("referral_id", 1), ("connected_at", 1)])


def _connection_id(referral_id: str, service_id: str) -> str:
    """One connection per referral and service: recording it again hits this `_id`."""
    return f"{referral_id}|{service_id}"


class MongoDirectory:
    def __init__(self, db: AsyncDatabase[Document], outbox: Outbox) -> None:
        self._services = db[DIRECTORY_SERVICES]
        self._connections = db[REFERRAL_CONNECTIONS]
        self._outbox = outbox

    async def store(self, service: DirectoryService, system: str) -> Stored:
        document = _service_document(service, system)
        existing = await self._services.find_one({"_id": service.id}, {"system": 1, "hash": 1})
        if existing is None:
            try:
                await self._services.insert_one(document)
                return Stored.IMPORTED
            except DuplicateKeyError:  # the same record in a concurrent import
                existing = await self._services.find_one(
                    {"_id": service.id}, {"system": 1, "hash": 1}
                )
                assert existing is not None
        if existing["system"] != system:
            return Stored.HELD_ELSEWHERE
        if existing["hash"] == document["hash"]:
            return Stored.UNCHANGED
        replaced = await self._services.replace_one(
            {"_id": service.id, "hash": existing["hash"]}, document
        )
        # Another import replaced it meanwhile with its own version: that write stands.
        return Stored.UPDATED if replaced.matched_count else Stored.UNCHANGED

    async def get(self, service_id: str) -> DirectoryService | None:
        document = await self._services.find_one({"_id": service_id})
        return None if document is None else _service(document)

    async def search(
        self, key: str, after: tuple[str, str] | None, limit: int
    ) -> list[DirectoryService]:
        selector: Document = {"search_keys": key}
        if after is not None:
            name, last_id = after
            # The range bounds the index scan; the $or continues strictly after the last row.
            selector["sort_name"] = {"$gte": name}
            selector["$or"] = [
                {"sort_name": {"$gt": name}},
                {"sort_name": name, "_id": {"$gt": last_id}},
            ]
        cursor = self._services.find(selector, limit=limit).sort([("sort_name", 1), ("_id", 1)])
        return [_service(document) for document in await cursor.to_list(None)]

    async def add_connection(self, connection: Connection, events: list[IntegrationEvent]) -> bool:
        document = asdict(connection) | {
            "_id": _connection_id(connection.referral_id, connection.service_id)
        }
        return await self._outbox.insert(REFERRAL_CONNECTIONS, document, events)

    async def connection(self, referral_id: str, service_id: str) -> Connection | None:
        document = await self._connections.find_one(
            {"_id": _connection_id(referral_id, service_id)}, {"outbox": 0}
        )
        return None if document is None else _connection(document)

    async def connections_of(self, referral_id: str) -> list[Connection]:
        cursor = self._connections.find({"referral_id": referral_id}, {"outbox": 0}).sort(
            [("connected_at", 1)]
        )
        return [_connection(document) for document in await cursor.to_list(None)]


def _service_document(service: DirectoryService, system: str) -> Document:
    content = {
        "name": service.name,
        "description": service.description,
        "organization": asdict(service.organization),
        "service_types": [t.value for t in service.service_types],
        "eligibility": [e.value for e in service.eligibility],
        "locations": [asdict(loc) for loc in service.locations],
        "phones": list(service.phones),
        "url": service.url,
        "area_counties": list(service.area_counties),
        "active": service.active,
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return content | {
        "_id": service.id,
        "system": system,
        "hash": digest,
        "sort_name": sort_name(service),
        "counties": list(service.counties),
        "search_keys": service.search_keys(),
    }


def _service(document: Document) -> DirectoryService:
    return DirectoryService(
        id=document["_id"],
        name=document["name"],
        description=document.get("description"),
        organization=Organization(**document["organization"]),
        service_types=tuple(ServiceType(t) for t in document["service_types"]),
        eligibility=tuple(Eligibility(e) for e in document["eligibility"]),
        locations=tuple(Location(**loc) for loc in document["locations"]),
        phones=tuple(document["phones"]),
        url=document.get("url"),
        area_counties=tuple(document["area_counties"]),
        active=document["active"],
    )


def _connection(document: Document) -> Connection:
    return Connection(
        referral_id=document["referral_id"],
        service_id=document["service_id"],
        service_name=document["service_name"],
        connected_at=document["connected_at"],
        connected_by=document["connected_by"],
    )
