"""Sessions in MongoDB: `sessions` and `sign_ins` keyed by hashes, tokens sealed (AES-GCM).

The client is tz_aware, so times read back are UTC."""

from datetime import datetime
from typing import Any

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

    async def save(self, session: Session) -> None:
        tokens = session.tokens
        sealed = self._cipher.encrypt(
            [tokens.access_token, tokens.refresh_token, tokens.id_token], session.key
        )
        document = {
            "_id": session.key,
            "subject": session.subject,
            "roles": sorted(session.roles),
            "cmhc_id": session.cmhc_id,
            "username": session.username,
            "tokens_sealed": sealed,
            "access_expires_at": tokens.access_expires_at,
            "csrf_token": session.csrf_token,
            "signed_in_at": session.signed_in_at,
            "last_seen_at": session.last_seen_at,
            "expires_at": session.expires_at,
            "notice": list(session.notice) if session.notice else None,
        }
        await self._sessions.replace_one({"_id": session.key}, document, upsert=True)

    async def get(self, key: str) -> Session | None:
        found = await self._sessions.find_one({"_id": key})
        if found is None:
            return None
        access, refresh, id_token = self._cipher.decrypt(found["tokens_sealed"], key)
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
        )

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
        return PendingSignIn(
            key=key,
            code_verifier=self._cipher.decrypt(found["code_verifier"], key),
            nonce=found["nonce"],
            return_to=found["return_to"],
            expires_at=found["expires_at"],
        )

    async def purge(self, now: datetime) -> int:
        ended = await self._sessions.delete_many({"expires_at": {"$lt": now}})
        abandoned = await self._sign_ins.delete_many({"expires_at": {"$lt": now}})
        return ended.deleted_count + abandoned.deleted_count
