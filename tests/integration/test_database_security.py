"""The database refuses what deploy/database-access.toml does not grant (ADR 0011), on the stack's
real database: no client that has not signed in, no wrong password, no service reaching another
service's database, and no service updating, deleting or dropping the audit log. MongoDB answers
these with the same codes (13 Unauthorized, 18 AuthenticationFailed), so the test is the same
against it."""

import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from cmhl_servicekit.audit import AUDIT_DATABASE, AUDIT_LOG
from cmhl_servicekit.database_access import DatabaseUser, load
from cmhl_servicekit.testing import database_user_uri

pytestmark = pytest.mark.integration

UNAUTHORIZED = 13
AUTHENTICATION_FAILED = 18
USERS = load(Path(__file__).resolve().parents[2] / "deploy" / "database-access.toml")
Client = AsyncMongoClient[dict[str, Any]]
PROBE = "database_security_probe"


@pytest.fixture
async def clients(mongo_uri: str) -> AsyncIterator[dict[str, Client]]:
    """One client per declared database user, signed in with that user's own password."""
    made = {user.name: Client(database_user_uri(user.name)) for user in USERS}
    try:
        yield made
    finally:
        for client in made.values():
            await client.close()


async def _refused(operation: Awaitable[Any], code: int = UNAUTHORIZED) -> str:
    with pytest.raises(OperationFailure) as refused:
        await operation
    assert refused.value.code == code, refused.value.details
    return str(refused.value)


async def test_a_client_that_has_not_signed_in_reads_and_writes_nothing(mongo_uri: str) -> None:
    anonymous = Client(database_user_uri(""))
    try:
        for user in USERS:
            await _refused(anonymous[user.database]["anything"].find_one({}))
        await _refused(anonymous[AUDIT_DATABASE][AUDIT_LOG].insert_one({"forged": True}))
        await _refused(anonymous.list_database_names())
    finally:
        await anonymous.close()


async def test_a_wrong_password_fails_the_sign_in(mongo_uri: str) -> None:
    for user in ("referral", "ferretdb"):
        wrong = Client(database_user_uri(user, password="not-the-password"))
        try:
            await _refused(wrong.cmhl_referral.referrals.find_one({}), AUTHENTICATION_FAILED)
        finally:
            await wrong.close()


async def test_each_service_reaches_its_own_database_and_no_other(
    clients: dict[str, Client],
) -> None:
    probe = f"database-security-{uuid.uuid4().hex[:8]}"
    for user in USERS:
        own = clients[user.name][user.database][PROBE]
        await own.insert_one({"_id": probe})
        assert await own.find_one({"_id": probe}) == {"_id": probe}
    try:
        for user in USERS:
            for other in USERS:
                if other.name == user.name:
                    continue
                # A collection that exists and holds a document: FerretDB, like MongoDB, refuses
                # before it would answer (of a missing collection it answers that it is empty).
                theirs = clients[user.name][other.database]
                await _refused(theirs[PROBE].find_one({}))
                await _refused(theirs[PROBE].update_many({}, {"$set": {"liaison_id": "x"}}))
                await _refused(theirs[PROBE].delete_many({}))
                await _refused(theirs[PROBE].insert_one({"_id": f"{probe}-forged"}))
                await _refused(theirs[PROBE].drop())
                await _refused(clients[user.name].drop_database(other.database))
            # Nor may it make a database of its own beyond the one it was given.
            await _refused(clients[user.name][f"cmhl_{probe[-8:]}"]["c"].insert_one({}))
    finally:
        for user in USERS:
            await clients[user.name][user.database][PROBE].drop()


def _entry(person: str, user: DatabaseUser) -> dict[str, Any]:
    return {
        "actor": "database-security-test",
        "actor_roles": [],
        "action": "probe",
        "record": f"test/{person}",
        "person_ids": [person],
        "at": datetime.now(UTC),
        "outcome": "allowed",
        "service": user.name,
    }


async def test_the_audit_log_is_append_only_for_every_service(
    clients: dict[str, Client], mongo_uri: str
) -> None:
    person = f"database-security-{uuid.uuid4().hex[:8]}"
    for user in USERS:
        log = clients[user.name][AUDIT_DATABASE][AUDIT_LOG]
        if not user.may_append_audit:
            await _refused(log.insert_one(_entry(person, user)))
            await _refused(log.find_one({}))
            continue
        await log.insert_one(_entry(person, user))
        # No index of its own either: in MongoDB a TTL one would delete the entries (FerretDB
        # has no TTL indexes; a plain new index is refused the same way by both).
        await _refused(log.create_index([("action", 1), ("at", 1)]))
        if user.may_read_audit:
            entries = await log.find({"person_ids": person}).to_list(None)
            assert {e["service"] for e in entries} >= {user.name}
        else:
            await _refused(log.find_one({"person_ids": person}))
        await _refused(log.update_many({"person_ids": person}, {"$set": {"outcome": "denied"}}))
        await _refused(log.replace_one({"person_ids": person}, _entry("someone-else", user)))
        await _refused(log.delete_many({"person_ids": person}))
        await _refused(log.drop_index("person_id_1_at_1"))
        await _refused(log.drop())
        await _refused(clients[user.name].drop_database(AUDIT_DATABASE))

    admin = Client(mongo_uri)
    try:
        kept = await admin[AUDIT_DATABASE][AUDIT_LOG].find({"person_ids": person}).to_list(None)
    finally:
        await admin.close()
    appenders = {u.name for u in USERS if u.may_append_audit}
    assert sorted(e["service"] for e in kept) == sorted(appenders)
    assert {e["outcome"] for e in kept} == {"allowed"}
