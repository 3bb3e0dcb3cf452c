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
import logging
from dataclasses import asdict
from typing import Any

from pymongo import ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cmhl_contracts import IntegrationEvent
from cmhl_contracts.directory import ServiceType
from cmhl_referral.adapters.mongo import MIGRATIONS
from cmhl_referral.application.directory import Stored, sort_name
from cmhl_referral.domain.directory import (
    Connection,
    DirectoryService,
    Eligibility,
    Location,
    Organization,
)
from cmhl_servicekit.mongo import insert_new
from cmhl_servicekit.outbox import Outbox

log = logging.getLogger(__name__)

Document = dict[str, Any]

DIRECTORY_SERVICES = "directory_services"
DIRECTORY_SEARCH_ENTRIES = "directory_search_entries"
REFERRAL_CONNECTIONS = "referral_connections"
SEARCH_ENTRIES_BUILT = "directory-search-entries"
# Rounds of indexing while other imports keep replacing the same service.
INDEXING_ATTEMPTS = 5


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
        self._migrations = db[MIGRATIONS]
        self._connections = db[REFERRAL_CONNECTIONS]
        self._outbox = outbox

    async def store(self, service: DirectoryService, system: str) -> Stored:
        document = _service_document(service, system)
        stored = await self._store_service(document, system)
        if stored is not Stored.HELD_ELSEWHERE:
            await self._index(service.id)
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

    async def _index(self, service_id: str) -> None:
        """Makes the service's search entries those of its stored version, whichever import
        stored it: entries are built from the stored document and, after writing them, the
        stored version is read again; if another import replaced it meanwhile, this one indexes
        that version too, so the last to finish leaves the entries of what is stored. Checked by
        every import (even of an unchanged record), so an import cut short between the two
        writes is completed by the next one."""
        for _ in range(INDEXING_ATTEMPTS):
            stored = await self._services.find_one({"_id": service_id})
            if stored is None:
                return
            digest = stored["hash"]
            keys = _service(stored).search_keys()
            current = await self._entries.count_documents(
                {"service_id": service_id, "hash": digest}
            )
            stale = await self._entries.find_one(
                {"service_id": service_id, "hash": {"$ne": digest}}, {"_id": 1}
            )
            if current == len(keys) and stale is None:
                return
            copy = {k: v for k, v in stored.items() if k not in ("_id", "system")}
            wanted = [
                copy | {"_id": f"{key}|{service_id}", "key": key, "service_id": service_id}
                for key in keys
            ]
            # Insert what is missing (another import inserting the same entry at the same moment
            # is not an error), then bring the entries that were there to this version.
            present = await insert_new(self._entries, wanted)
            replacements = [ReplaceOne({"_id": e["_id"]}, e) for e in wanted if e["_id"] in present]
            if replacements:
                await self._entries.bulk_write(replacements, ordered=False)
            await self._entries.delete_many({"service_id": service_id, "hash": {"$ne": digest}})
        log.warning("directory entries still changing", extra={"attempts": INDEXING_ATTEMPTS})

    async def index_unindexed(self) -> int:
        """Gives every stored service its search entries, once: services stored before entries
        existed have none. A marker in `migrations` says it was done, so later starts do not
        read the directory again."""
        if await self._migrations.find_one({"_id": SEARCH_ENTRIES_BUILT}):
            return 0
        indexed = 0
        async for stored in self._services.find({}, {"_id": 1}):
            await self._index(str(stored["_id"]))
            indexed += 1
        await self._migrations.update_one(
            {"_id": SEARCH_ENTRIES_BUILT}, {"$set": {"services": indexed}}, upsert=True
        )
        return indexed

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
