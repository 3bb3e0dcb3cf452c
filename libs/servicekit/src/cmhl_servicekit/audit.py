"""The audit log, one implementation for every service, in one database they all append to.

HIPAA asks for every read or change of a person's record to be logged (who, what, when, from
where, with what outcome) and kept six years, and for an accounting of disclosures per person.
A person's records live in several services (a referral, its follow-ups, a placement request), so
every service appends to the same collection in the audit database (`audit_database`), and the
accounting reads one person's entries from all of them in one indexed query. Services only ever
insert here: nothing updates or deletes an entry (with database users, the services' roles get
insert only; the accounting's reader gets find).

People appear by pseudonym (`person_ids`), never by name; an entry may concern several people
(the officers of a training roster) or none that is known (a look-up of an id that does not exist).
An entry is stored once per person it concerns, filed under that person's `person_id`, so that
the accounting is one equality on a scalar field: an index on the array `person_ids` serves it
on MongoDB, but on FerretDB over PostgreSQL (the local and test database) such an equality kept
every entry concerning anyone, and the accounting read the whole log.
"""

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any, Protocol

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from cmhl_servicekit.mongo import insert_new

Document = dict[str, Any]
AUDIT_DATABASE = "cmhl_audit"
AUDIT_LOG = "audit_log"
BY_PERSON = [("person_id", 1), ("at", 1)]
NO_ONE = ""
"""The `person_id` an entry about no known person is filed under."""
FILING_PAGE = 500


@dataclass(frozen=True)
class AuditEntry:
    """Who did what to which record, whose record it is, when, from where, and the outcome."""

    actor: str
    actor_roles: tuple[str, ...]
    action: str
    record: str
    """What was touched: `<kind>/<id>` (`referral/…`, `follow_up/…`, `placement_request/…`)."""
    person_ids: tuple[str, ...]
    at: datetime
    outcome: str
    source_address: str | None = None
    referral_id: str | None = None
    service: str = ""
    """Filled in by the log: the service that recorded the access."""
    entry_id: str | None = None
    """Set where a retried write records the same access again (a referral created by a
    submission applied twice): the log keeps the first and drops the rest. None for accesses
    that are each their own (every read is)."""


class AuditLog(Protocol):
    async def record(self, entries: Sequence[AuditEntry]) -> None: ...


class AuditReader(Protocol):
    async def for_person(self, person_id: str) -> list[AuditEntry]:
        """Every recorded access to this person's records, in every service, oldest first."""


class MongoAuditLog:
    """Append-only; `service` names the writer on each entry."""

    def __init__(self, db: AsyncDatabase[Document], service: str) -> None:
        self._entries = db[AUDIT_LOG]
        self._service = service

    async def ensure_indexes(self) -> None:
        """Run by whoever creates the log (`database_access apply`, the local stack, tests),
        never by the services, whose users may not create indexes on it (ADR 0011)."""
        await self._entries.create_index(BY_PERSON)
        await self._file_earlier_entries()
        # The index entries were filed under before; kept, it would only cost every insert.
        with contextlib.suppress(OperationFailure):
            await self._entries.drop_index("person_ids_1_at_1")

    async def _file_earlier_entries(self) -> None:
        """Entries written before entries were filed per person carry `person_ids` only: each
        is filed under its first person, with a copy for every other (ids derived from the
        entry's, so a run cut short and run again adds none twice). Needs the rights of
        `ensure_indexes`' caller; the services' users may not update the log.

        Such entries have no `person_id`, and a missing field sorts before any string (an entry
        about no one is filed under ""): they are the first ones in the index's order, so each
        pass reads at most one page from the index, and finds none once all are filed (run it
        again after a rolling upgrade, for entries the previous version wrote meanwhile)."""
        while earlier := await self._unfiled():
            for document in earlier:
                people = list(dict.fromkeys(document.get("person_ids") or [NO_ONE]))
                copies = [
                    document | {"_id": f"{document['_id']}|{n}", "person_id": person}
                    for n, person in enumerate(people[1:], start=1)
                ]
                await insert_new(self._entries, copies)
                await self._entries.update_one(
                    {"_id": document["_id"]}, {"$set": {"person_id": people[0]}}
                )

    async def record(self, entries: Sequence[AuditEntry]) -> None:
        documents = [d for e in entries for d in self._documents(e)]
        if documents:
            # Unordered, an entry recorded before (by its entry_id) kept as it was.
            await insert_new(self._entries, documents)

    async def for_person(self, person_id: str) -> list[AuditEntry]:
        hidden = {"_id": 0, "person_id": 0}
        cursor = self._entries.find({"person_id": person_id}, hidden).sort("at", 1)
        filed = await cursor.to_list(None)
        unfiled = await self._unfiled()
        if len(unfiled) == FILING_PAGE:
            # More entries not yet filed than one page (a long rolling upgrade): ask for this
            # person's among them, however it reads.
            unfiled = await self._entries.find(
                {"person_id": None, "person_ids": person_id}, hidden
            ).to_list(None)
        unfiled = [d for d in unfiled if person_id in d.get("person_ids", ())]
        return sorted((_entry(doc) for doc in filed + unfiled), key=_at)

    async def _unfiled(self) -> list[Document]:
        """Entries not filed per person yet: written by replicas of an earlier release during a
        rolling upgrade, until `ensure_indexes` files them. They come first in the index's order,
        so the first entry says whether there are any (most of the time none), and one page
        from the index holds up to FILING_PAGE of them."""
        first = await self._entries.find({}, {"person_id": 1}, limit=1).sort(BY_PERSON).to_list(1)
        if not first or "person_id" in first[0]:
            return []
        page = await self._entries.find({}, limit=FILING_PAGE).sort(BY_PERSON).to_list(None)
        return [d for d in page if "person_id" not in d]

    def _documents(self, entry: AuditEntry) -> list[Document]:
        """One document per person the entry concerns (one, filed under "", if none)."""
        # Field by field, not `dataclasses.asdict`: that deep-copies every value (69 µs an entry
        # against 6 µs), about a quarter of the referral service's CPU on a caseload page, which
        # records one entry per listed referral.
        document: Document = {name: getattr(entry, name) for name in _ENTRY_FIELDS}
        document["actor_roles"] = list(entry.actor_roles)
        people = list(dict.fromkeys(entry.person_ids))  # each person once, in order
        document["person_ids"] = people
        document["service"] = self._service
        if entry.entry_id is None:
            return [document | {"person_id": person} for person in people or [NO_ONE]]
        return [
            document | {"_id": f"{entry.entry_id}|{n}", "person_id": person}
            for n, person in enumerate(people or [NO_ONE])
        ]


class InMemoryAuditLog:
    """The same contract in memory, for the services' unit tests."""

    def __init__(self, service: str = "test") -> None:
        self.entries: list[AuditEntry] = []
        self._service = service

    async def record(self, entries: Sequence[AuditEntry]) -> None:
        recorded = {e.entry_id for e in self.entries if e.entry_id is not None}
        for entry in entries:
            if entry.entry_id is not None:
                if entry.entry_id in recorded:
                    continue
                recorded.add(entry.entry_id)
            self.entries.append(replace(entry, service=self._service))

    async def for_person(self, person_id: str) -> list[AuditEntry]:
        return sorted((e for e in self.entries if person_id in e.person_ids), key=_at)


_ENTRY_FIELDS = tuple(f.name for f in fields(AuditEntry))


def _at(entry: AuditEntry) -> datetime:
    return entry.at


def _entry(doc: Document) -> AuditEntry:
    """The entry a stored document records (its `_id` and the person it is filed under are
    the log's, not the entry's)."""
    fields = {k: v for k, v in doc.items() if k not in ("_id", "person_id")}
    return AuditEntry(
        **(
            fields
            | {
                "actor_roles": tuple(doc["actor_roles"]),
                "person_ids": tuple(doc["person_ids"]),
            }
        )
    )
