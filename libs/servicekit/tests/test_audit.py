"""The audit log on the real local database: an entry is filed once per person it concerns, so
the accounting of one person is one indexed equality on a scalar field, and entries written
before that (filed under `person_ids` only) are filed per person by `ensure_indexes`, once."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_servicekit.audit import (
    AUDIT_LOG,
    BY_PERSON,
    FILING_PAGE,
    AuditEntry,
    InMemoryAuditLog,
    MongoAuditLog,
)
from cmhl_servicekit.testing import ReadRecorder, assert_reads_use_indexes

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def entry(action: str, *people: str, minutes: int = 0) -> AuditEntry:
    return AuditEntry(
        actor="liaison-7",
        actor_roles=("liaison",),
        action=action,
        record=f"roster/{action}",
        person_ids=people,
        at=AT + timedelta(minutes=minutes),
        outcome="allowed",
    )


async def test_an_entry_is_filed_under_each_person_and_read_from_the_index(
    recorded_db: tuple[AsyncDatabase[dict[str, Any]], ReadRecorder],
) -> None:
    db, recorder = recorded_db
    log = MongoAuditLog(db, "training")
    await log.ensure_indexes()
    # Other people's entries: a roster of many, lookups of no one.
    await log.record([entry("other", *(f"o{n}-{m}" for m in range(5))) for n in range(600)])
    await log.record([entry("lookup"), entry("roster", "p-1", "p-2", minutes=1)])
    await log.record([entry("read", "p-1", minutes=2)])
    # A person named twice in one entry is filed, and listed, once.
    await log.record([entry("twice", "p-3", "p-3", minutes=3)])
    # An entry about no one is kept too, filed under no one.
    assert await db[AUDIT_LOG].count_documents({"action": "lookup", "person_id": ""}) == 1
    recorder.reads.clear()

    first = await log.for_person("p-1")
    assert [(e.action, e.person_ids, e.service) for e in first] == [
        ("roster", ("p-1", "p-2"), "training"),
        ("read", ("p-1",), "training"),
    ]
    assert [e.action for e in await log.for_person("p-2")] == ["roster"]
    assert [(e.action, e.person_ids) for e in await log.for_person("p-3")] == [("twice", ("p-3",))]
    assert await log.for_person("nobody") == []
    await assert_reads_use_indexes(db, recorder.reads)


async def test_entries_written_before_are_filed_per_person_once(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    earlier = {
        "actor": "sup-3",
        "actor_roles": ["supervisor"],
        "action": "list",
        "record": "caseload/liaison-7",
        "person_ids": ["p-1", "p-2", "p-3"],
        "at": AT,
        "outcome": "allowed",
        "source_address": None,
        "referral_id": None,
        "service": "referral",
    }
    # More than a page of them, and entries filed per person already around them.
    await MongoAuditLog(mongo_db, "referral").record(
        [entry("read", f"q-{n}", minutes=n) for n in range(30)]
    )
    await mongo_db[AUDIT_LOG].insert_many(
        [earlier | {"person_ids": ["p-1", "p-2", "p-3"]}, earlier | {"person_ids": []}]
        + [earlier | {"person_ids": [f"r-{n}"]} for n in range(FILING_PAGE + 10)]
    )
    log = MongoAuditLog(mongo_db, "referral")
    # Before they are filed (replicas of the earlier release still writing, during a rolling
    # upgrade), the accounting finds them too, once each: within one page of the index, and
    # beyond it (more than a page not filed).
    await mongo_db[AUDIT_LOG].create_index(BY_PERSON)
    [unfiled] = await log.for_person("p-2")
    assert (unfiled.action, unfiled.person_ids) == ("list", ("p-1", "p-2", "p-3"))
    assert [e.action for e in await log.for_person("q-3")] == ["read"]
    assert [e.action for e in await log.for_person(f"r-{FILING_PAGE + 9}")] == ["list"]
    await log.ensure_indexes()
    await log.ensure_indexes()  # run again (a later deploy): nothing is filed twice
    for person in ("p-1", "p-2", "p-3"):
        [found] = await log.for_person(person)
        assert (found.action, found.person_ids) == ("list", ("p-1", "p-2", "p-3"))
    assert await mongo_db[AUDIT_LOG].count_documents({}) == 4 + 30 + FILING_PAGE + 10
    assert [e.action for e in await log.for_person(f"r-{FILING_PAGE + 9}")] == ["list"]
    assert await mongo_db[AUDIT_LOG].count_documents({"person_id": {"$exists": False}}) == 0
    assert await mongo_db[AUDIT_LOG].count_documents({"person_id": ""}) == 1


@pytest.mark.parametrize("where", ["database", "memory"])
async def test_an_access_recorded_again_by_its_entry_id_is_kept_once(
    mongo_db: AsyncDatabase[dict[str, Any]], where: str
) -> None:
    """A retried write records its access again: an entry with an entry_id is kept once,
    whether repeated in one call or in a later one; entries without one are each kept."""
    log: MongoAuditLog | InMemoryAuditLog = (
        MongoAuditLog(mongo_db, "referral") if where == "database" else InMemoryAuditLog()
    )
    created = replace(entry("create", "p-1", "p-2"), entry_id="referral/r-1|create")
    await log.record([created, entry("read", "p-1", minutes=1), created])
    await log.record([replace(created, outcome="later"), entry("read", "p-1", minutes=1)])
    for person in ("p-1", "p-2"):
        found = await log.for_person(person)
        assert [(e.action, e.outcome, e.entry_id) for e in found if e.action == "create"] == [
            ("create", "allowed", "referral/r-1|create")
        ]
    assert [e.action for e in await log.for_person("p-1")] == ["create", "read", "read"]
