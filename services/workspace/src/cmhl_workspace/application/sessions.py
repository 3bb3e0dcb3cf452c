"""Server-side sessions: the browser holds only a random id; the user's tokens stay here.

A session ends after `idle` without a request or `longest` after sign-in, whichever is first,
and on sign-out. The id is stored only as its hash, so a copy of the store opens no session."""

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from cmhl_servicekit.auth import Principal, Role


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    id_token: str | None
    access_expires_at: datetime


@dataclass(frozen=True)
class Session:
    key: str  # sha256 of the cookie's id
    subject: str
    roles: frozenset[Role]
    cmhc_id: str | None
    username: str
    tokens: Tokens
    csrf_token: str
    signed_in_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    notice: tuple[str, str] | None = None  # (kind, text), shown once by the next page
    # Counts token renewals: a renewal is stored only over the version it started from, so two
    # replicas renewing at once cannot store a refresh token the issuer already rotated.
    version: int = 0

    @property
    def principal(self) -> Principal:
        return Principal(self.subject, self.roles, self.cmhc_id)

    def has(self, role: Role) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class PendingSignIn:
    """Between the redirect to the issuer and its answer: what proves the answer is ours."""

    key: str  # sha256 of the state
    code_verifier: str
    nonce: str
    return_to: str
    expires_at: datetime


class SessionStore(Protocol):
    async def create(self, session: Session) -> None: ...

    async def get(self, key: str) -> Session | None:
        """The session, or None if there is none or it cannot be opened (the key changed)."""

    async def touch(self, key: str, last_seen_at: datetime, expires_at: datetime) -> None: ...

    async def set_notice(self, key: str, notice: tuple[str, str] | None) -> None: ...

    async def replace_tokens(self, key: str, version: int, tokens: Tokens) -> bool:
        """Stores renewed tokens if the session is still at `version`; False if another
        request renewed them first."""

    async def delete(self, key: str) -> None: ...

    async def save_pending(self, pending: PendingSignIn) -> None: ...

    async def take_pending(self, key: str) -> PendingSignIn | None:
        """The pending sign-in, removed so its state cannot be replayed."""

    async def purge(self, now: datetime) -> int:
        """Removes ended sessions and abandoned sign-ins; how many."""


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=15)
    longest: timedelta = timedelta(hours=10)
    # A request within this of the last one does not rewrite the session: one write a minute at
    # most, however busy the page.
    touch_every: timedelta = timedelta(seconds=30)
    pending_for: timedelta = timedelta(minutes=10)

    def new_session(
        self,
        principal: Principal,
        username: str,
        tokens: Tokens,
        now: datetime,
    ) -> tuple[str, Session]:
        """A fresh session and the id for its cookie."""
        session_id = secrets.token_urlsafe(32)
        session = Session(
            key=digest(session_id),
            subject=principal.subject,
            roles=principal.roles,
            cmhc_id=principal.cmhc_id,
            username=username,
            tokens=tokens,
            csrf_token=secrets.token_urlsafe(32),
            signed_in_at=now,
            last_seen_at=now,
            expires_at=min(now + self.idle, now + self.longest),
        )
        return session_id, session

    def is_live(self, session: Session, now: datetime) -> bool:
        return now < session.expires_at

    def touched(self, session: Session, now: datetime) -> Session | None:
        """The session with this request's time, or None when nothing needs writing."""
        if now - session.last_seen_at < self.touch_every:
            return None
        ends = min(now + self.idle, session.signed_in_at + self.longest)
        return replace(session, last_seen_at=now, expires_at=ends)
