"""Sessions in MongoDB: `sessions` and `sign_ins` keyed by hashes, tokens sealed (AES-GCM).

Each change is a targeted `$set` (a request's time, a notice, renewed tokens), never a rewrite
of the whole session from a copy read earlier. The client is tz_aware: times read back are UTC."""

from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from pymongo.asynchronous.database import AsyncDatabase

from cmhl_servicekit.auth import Role
from cmhl_servicekit.crypto import FieldCipher
from cmhl_workspace.application.sessions import PendingSignIn, Session, Tokens

Document = dict[str, Any]
SESSIONS = "sessions"
SIGN_INS = "sign_ins"


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    # The purge loop's range: ended sessions and abandoned sign-ins.
    await db[SESSIONS].create_index([("expires_at", 1)])
    await db[SIGN_INS].create_index([("expires_at", 1)])


class MongoSessionStore:
    def __init__(self, db: AsyncDatabase[Document], cipher: FieldCipher) -> None:
        self._sessions = db[SESSIONS]
        self._sign_ins = db[SIGN_INS]
        self._cipher = cipher

    def _sealed(self, key: str, tokens: Tokens) -> Document:
        return {
            "tokens_sealed": self._cipher.encrypt(
                [tokens.access_token, tokens.refresh_token, tokens.id_token], key
            ),
            "access_expires_at": tokens.access_expires_at,
        }

    async def create(self, session: Session) -> None:
        await self._sessions.insert_one(
            {
                "_id": session.key,
                "subject": session.subject,
                "roles": sorted(session.roles),
                "cmhc_id": session.cmhc_id,
                "username": session.username,
                **self._sealed(session.key, session.tokens),
                "csrf_token": session.csrf_token,
                "signed_in_at": session.signed_in_at,
                "last_seen_at": session.last_seen_at,
                "expires_at": session.expires_at,
                "notice": list(session.notice) if session.notice else None,
                "version": session.version,
            }
        )

    async def get(self, key: str) -> Session | None:
        found = await self._sessions.find_one({"_id": key})
        if found is None:
            return None
        try:
            access, refresh, id_token = self._cipher.decrypt(found["tokens_sealed"], key)
        except InvalidTag:
            # Sealed under an earlier session key: the session cannot be used, so it ends.
            await self.delete(key)
            return None
        notice = found.get("notice")
        return Session(
            key=key,
            subject=found["subject"],
            roles=frozenset(Role(r) for r in found["roles"] if r in Role._value2member_map_),
            cmhc_id=found["cmhc_id"],
            username=found["username"],
            tokens=Tokens(access, refresh, id_token, found["access_expires_at"]),
            csrf_token=found["csrf_token"],
            signed_in_at=found["signed_in_at"],
            last_seen_at=found["last_seen_at"],
            expires_at=found["expires_at"],
            notice=(notice[0], notice[1]) if notice else None,
            version=found.get("version", 0),
        )

    async def touch(self, key: str, last_seen_at: datetime, expires_at: datetime) -> None:
        await self._sessions.update_one(
            {"_id": key}, {"$set": {"last_seen_at": last_seen_at, "expires_at": expires_at}}
        )

    async def set_notice(self, key: str, notice: tuple[str, str] | None) -> None:
        await self._sessions.update_one(
            {"_id": key}, {"$set": {"notice": list(notice) if notice else None}}
        )

    async def replace_tokens(self, key: str, version: int, tokens: Tokens) -> bool:
        changed = await self._sessions.update_one(
            {"_id": key, "version": version},
            {"$set": {**self._sealed(key, tokens), "version": version + 1}},
        )
        return changed.modified_count == 1

    async def delete(self, key: str) -> None:
        await self._sessions.delete_one({"_id": key})

    async def save_pending(self, pending: PendingSignIn) -> None:
        await self._sign_ins.insert_one(
            {
                "_id": pending.key,
                "code_verifier": self._cipher.encrypt(pending.code_verifier, pending.key),
                "nonce": pending.nonce,
                "return_to": pending.return_to,
                "expires_at": pending.expires_at,
            }
        )

    async def take_pending(self, key: str) -> PendingSignIn | None:
        found = await self._sign_ins.find_one_and_delete({"_id": key})
        if found is None:
            return None
        try:
            verifier = self._cipher.decrypt(found["code_verifier"], key)
        except InvalidTag:
            return None  # started before the session key changed: sign in again
        return PendingSignIn(
            key=key,
            code_verifier=verifier,
            nonce=found["nonce"],
            return_to=found["return_to"],
            expires_at=found["expires_at"],
        )

    async def purge(self, now: datetime) -> int:
        ended = await self._sessions.delete_many({"expires_at": {"$lt": now}})
        abandoned = await self._sign_ins.delete_many({"expires_at": {"$lt": now}})
        return ended.deleted_count + abandoned.deleted_count
