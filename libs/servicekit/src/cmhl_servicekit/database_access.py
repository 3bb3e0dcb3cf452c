"""Database users from deploy/database-access.toml (ADR 0011): one user per service, each with its
own database and, where it needs it, append (and read) access to the audit log; nothing else.

    python -m cmhl_servicekit.database_access plan > deploy/k8s/base/database/database-access.json
    python -m cmhl_servicekit.database_access apply --passwords PATH [--plan database-access.json]

`plan` prints the users as JSON (the Kubernetes Job reads it from a ConfigMap, since kustomize may
not read files outside its folder; tests/deploy fails when they differ). `apply` runs against
MongoDB as an administrator whose URI is in CMHL_DATABASE_ADMIN_URI (a user with the
`userAdminAnyDatabase` role and, on the audit database, `createIndex`, `dropIndex`, `find`,
`insert` and `update`): it creates the audit log's collection and index (and files per person
the entries an earlier release wrote, audit.py), the two audit roles, and each user with its
password from PATH (a JSON
object user -> password, or a folder with one file per user: a mounted Secret). It is
idempotent: an existing user gets the declared password and roles again, and a user this tool
created earlier that is no longer declared is dropped. A declared user missing from PATH is an
error, so a deployment never runs with a user it forgot.

The local stack runs FerretDB on PostgreSQL, where FerretDB passes each client's user and
password on to PostgreSQL: deploy/local/stack.py grants the same access to one PostgreSQL role
per user, from the same declarations.
"""

import argparse
import asyncio
import json
import os
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pymongo import AsyncMongoClient

from cmhl_servicekit.audit import AUDIT_DATABASE, AUDIT_LOG, MongoAuditLog
from cmhl_servicekit.passwords import read_passwords

AuditAccess = Literal["none", "append", "append-and-read"]
AUDIT_ACCESS: tuple[str, ...] = get_args(AuditAccess)

# MongoDB roles on the audit log: neither has update, remove, or createIndex (a TTL index would
# let a service have MongoDB delete entries). `apply` creates the log's index, not the services.
AUDIT_ROLES: dict[str, tuple[str, ...]] = {
    "cmhl_audit_append": ("insert",),
    "cmhl_audit_read": ("find",),
}
ROLES_FOR_ACCESS: dict[str, tuple[str, ...]] = {
    "none": (),
    "append": ("cmhl_audit_append",),
    "append-and-read": ("cmhl_audit_append", "cmhl_audit_read"),
}
# Marks the users this tool created, so that it drops only those when they are no longer declared.
MANAGED_BY = "cmhl_servicekit.database_access"
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")


@dataclass(frozen=True)
class DatabaseUser:
    name: str
    database: str
    audit: AuditAccess

    @property
    def may_append_audit(self) -> bool:
        return self.audit != "none"

    @property
    def may_read_audit(self) -> bool:
        return self.audit == "append-and-read"

    def mongodb_roles(self) -> list[dict[str, str]]:
        return [
            {"role": "readWrite", "db": self.database},
            *({"role": role, "db": "admin"} for role in ROLES_FOR_ACCESS[self.audit]),
        ]


def users_from(declarations: Mapping[str, Any]) -> list[DatabaseUser]:
    """The declared users, or a ValueError naming the rule a declaration breaks."""
    users: list[DatabaseUser] = []
    owners: dict[str, str] = {}
    for name, spec in sorted(declarations.get("users", {}).items()):
        database, audit = spec.get("database", ""), spec.get("audit", "")
        if not _NAME.match(name):
            raise ValueError(f"database user {name!r}: a name is lower-case letters, digits, _")
        if not _NAME.match(database):
            raise ValueError(f"database user {name!r}: database {database!r} is not a valid name")
        if database == AUDIT_DATABASE:
            raise ValueError(
                f"database user {name!r}: the audit database is reached through `audit`, "
                "never as a user's own database"
            )
        if database in owners:
            raise ValueError(
                f"database {database!r} is declared for both {owners[database]!r} and {name!r}: "
                "each database belongs to one service"
            )
        if audit not in AUDIT_ACCESS:
            raise ValueError(
                f"database user {name!r}: audit must be one of {', '.join(AUDIT_ACCESS)}, "
                f"not {audit!r}"
            )
        owners[database] = name
        users.append(DatabaseUser(name, database, audit))
    if not users:
        raise ValueError("no database users declared")
    return users


def load(path: Path) -> list[DatabaseUser]:
    return users_from(tomllib.loads(path.read_text()))


def render_plan(users: list[DatabaseUser]) -> str:
    body = {
        "generated_by": "python -m cmhl_servicekit.database_access plan",
        "users": [asdict(u) for u in users],
    }
    return json.dumps(body, indent=2) + "\n"


def read_plan(path: Path) -> list[DatabaseUser]:
    return users_from({"users": {u["name"]: u for u in json.loads(path.read_text())["users"]}})


def passwords_for(users: list[DatabaseUser], passwords: Mapping[str, str]) -> dict[str, str]:
    missing = sorted(u.name for u in users if not passwords.get(u.name))
    if missing:
        raise ValueError(
            f"no password for database user(s) {', '.join(missing)}: add them to the passwords "
            "file or Secret"
        )
    return {u.name: passwords[u.name] for u in users}


async def apply(
    client: AsyncMongoClient[dict[str, Any]],
    users: list[DatabaseUser],
    passwords: Mapping[str, str],
) -> None:
    """Create or update the audit log, the audit roles and every declared user on MongoDB."""
    chosen = passwords_for(users, passwords)
    admin = client.admin
    # The audit log exists, with its index, before any service may only append to it.
    await MongoAuditLog(client[AUDIT_DATABASE], MANAGED_BY).ensure_indexes()
    existing_roles = {r["role"] for r in (await admin.command("rolesInfo", 1))["roles"]}
    for role, actions in AUDIT_ROLES.items():
        verb = "updateRole" if role in existing_roles else "createRole"
        await admin.command(
            {
                verb: role,
                "privileges": [
                    {
                        "resource": {"db": AUDIT_DATABASE, "collection": AUDIT_LOG},
                        "actions": list(actions),
                    }
                ],
                "roles": [],
            }
        )
    existing = {u["user"]: u for u in (await admin.command("usersInfo", 1))["users"]}
    for user in users:
        verb = "updateUser" if user.name in existing else "createUser"
        await admin.command(
            {
                verb: user.name,
                "pwd": chosen[user.name],
                "roles": user.mongodb_roles(),
                "mechanisms": ["SCRAM-SHA-256"],
                "customData": {"managed_by": MANAGED_BY},
            }
        )
    declared = {u.name for u in users}
    for name, info in existing.items():
        managed = (info.get("customData") or {}).get("managed_by") == MANAGED_BY
        if managed and name not in declared:
            await admin.command({"dropUser": name})


def main() -> None:
    deploy = Path(__file__).resolve().parents[4] / "deploy"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("plan", "apply"):
        command = commands.add_parser(name)
        command.add_argument("--declarations", type=Path, default=deploy / "database-access.toml")
        if name == "apply":
            command.add_argument("--passwords", type=Path, required=True)
            command.add_argument("--plan", type=Path, help="a plan from `plan` (default: TOML)")
    args = parser.parse_args()
    if args.command == "plan":
        sys.stdout.write(render_plan(load(args.declarations)))
        return
    users = read_plan(args.plan) if args.plan else load(args.declarations)
    uri = os.environ.get("CMHL_DATABASE_ADMIN_URI")
    if not uri:
        raise SystemExit(
            "set CMHL_DATABASE_ADMIN_URI to a MongoDB administrator's URI (from a Secret)"
        )
    try:
        passwords = passwords_for(users, read_passwords(args.passwords))
    except ValueError as exc:
        raise SystemExit(f"[database-access] {exc}") from exc

    async def run() -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
        try:
            await apply(client, users, passwords)
        finally:
            await client.close()

    asyncio.run(run())
    sys.stdout.write(f"[database-access] {len(users)} users applied\n")


if __name__ == "__main__":
    main()
