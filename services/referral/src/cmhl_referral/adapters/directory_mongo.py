"""MongoDB adapter of the directory: HSDS services, and referrals' connections to them (each with
its event in an embedded outbox).

A search is served by `directory_search_entries`: one document per way of finding a service
(`county|type`, `county|*`, `*|type`, `*|*`) holding a copy of the service, so that a search is
one equality on a scalar field, read in name order from one index. A multikey index on an array
of those keys serves the same search on MongoDB, but FerretDB on PostgreSQL (the local and test
database) keeps an array field's index entry as the whole array, and its equality prefilter then
keeps every row whose field is an array: the search read the whole directory."""

import hashlib
import json
from dataclasses import asdict
from typing import Any

from pymongo import ReplaceOne
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
DIRECTORY_SEARCH_ENTRIES = "directory_search_entries"
REFERRAL_CONNECTIONS = "referral_connections"


async def ensure_directory_indexes(db: AsyncDatabase[Document]) -> None:
    # Every search is one equality on an entry's `key` and a page by name then service id.
    await db[DIRECTORY_SEARCH_ENTRIES].create_index(
        [("key", 1), ("sort_name", 1), ("service_id", 1)]
    )
    # A service's entries, to replace them and to check they are those of its stored version.
    await db[DIRECTORY_SEARCH_ENTRIES].create_index([("service_id", 1), ("hash", 1)])
    await db[REFERRAL_CONNECTIONS].create_index([("referral_id", 1), ("connected_at", 1)])


def _connection_id(referral_id: str, service_id: str) -> str:
    """One connection per referral and service: recording it again hits this `_id`."""
    return f"{referral_id}|{service_id}"


class MongoDirectory:
    def __init__(self, db: AsyncDatabase[Document], outbox: Outbox) -> None:
        self._services = db[DIRECTORY_SERVICES]
        self._entries = db[DIRECTORY_SEARCH_ENTRIES]
        self._connections = db[REFERRAL_CONNECTIONS]
        self._outbox = outbox

    async def store(self, service: DirectoryService, system: str) -> Stored:
        document = _service_document(service, system)
        stored = await self._store_service(document, system)
        if stored is not Stored.HELD_ELSEWHERE:
            await self._index(service, document)
        return stored

    async def _store_service(self, document: Document, system: str) -> Stored:
        existing = await self._services.find_one({"_id": document["_id"]}, {"system": 1, "hash": 1})
        if existing is None:
            try:
                await self._services.insert_one(document)
                return Stored.IMPORTED
            except DuplicateKeyError:  # the same record in a concurrent import
                existing = await self._services.find_one(
                    {"_id": document["_id"]}, {"system": 1, "hash": 1}
                )
                assert existing is not None
        if existing["system"] != system:
            return Stored.HELD_ELSEWHERE
        if existing["hash"] == document["hash"]:
            return Stored.UNCHANGED
        replaced = await self._services.replace_one(
            {"_id": document["_id"], "hash": existing["hash"]}, document
        )
        # Another import replaced it meanwhile with its own version: that write stands.
        return Stored.UPDATED if replaced.matched_count else Stored.UNCHANGED

    async def _index(self, service: DirectoryService, document: Document) -> None:
        """Makes the service's search entries those of its stored version. Written after the
        service, and checked again by every import (even of an unchanged record), so an import
        cut short between the two writes is completed by the next one."""
        stored = await self._services.find_one({"_id": service.id}, {"hash": 1})
        if stored is None or stored["hash"] != document["hash"]:
            return  # another import stored another version; it indexes its own
        keys = service.search_keys()
        current = await self._entries.count_documents(
            {"service_id": service.id, "hash": document["hash"]}
        )
        stale = await self._entries.find_one(
            {"service_id": service.id, "hash": {"$ne": document["hash"]}}, {"_id": 1}
        )
        if current == len(keys) and stale is None:
            return
        copy = {k: v for k, v in document.items() if k not in ("_id", "system")}
        if keys:
            await self._entries.bulk_write(
                [
                    ReplaceOne(
                        {"_id": f"{key}|{service.id}"},
                        copy | {"_id": f"{key}|{service.id}", "key": key, "service_id": service.id},
                        upsert=True,
                    )
                    for key in keys
                ],
                ordered=False,
            )
        await self._entries.delete_many(
            {"service_id": service.id, "hash": {"$ne": document["hash"]}}
        )

    async def get(self, service_id: str) -> DirectoryService | None:
        document = await self._services.find_one({"_id": service_id})
        return None if document is None else _service(document)

    async def search(
        self, key: str, after: tuple[str, str] | None, limit: int
    ) -> list[DirectoryService]:
        selector: Document = {"key": key}
        if after is not None:
            name, last_id = after
            # The range bounds the index scan; the $or continues strictly after the last row.
            selector["sort_name"] = {"$gte": name}
            selector["$or"] = [
                {"sort_name": {"$gt": name}},
                {"sort_name": name, "service_id": {"$gt": last_id}},
            ]
        cursor = self._entries.find(selector, limit=limit).sort(
            [("sort_name", 1), ("service_id", 1)]
        )
        return [
            _service(entry | {"_id": entry["service_id"]}) for entry in await cursor.to_list(None)
        ]

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
