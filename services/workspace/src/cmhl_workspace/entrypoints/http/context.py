"""What every page handler needs: the signed-in session (refreshing its tokens), the CSRF
check on forms, calls to the services as the user, and rendering with the layout's context."""

import asyncio
import contextlib
import hmac
import re
import uuid
import weakref
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from cmhl_servicekit.auth import Role, TokenVerifier
from cmhl_servicekit.clock import Clock
from cmhl_workspace.adapters.api import ApiRefused, ServiceApi, Unauthenticated
from cmhl_workspace.adapters.oidc import IssuerUnreachable, OidcClient, SignInFailed
from cmhl_workspace.application.sessions import (
    Session,
    SessionPolicy,
    SessionStore,
    Tokens,
    digest,
)
from cmhl_workspace.domain.views import label

SESSION_COOKIE = "__Host-cmhl_session"
SIGN_IN_COOKIE = "__Host-cmhl_sign_in"
# Renew the access token this long before it expires, so no call carries a dying token.
RENEW_BEFORE = timedelta(seconds=30)


@dataclass
class Workspace:
    """The workspace's parts, on app.state.workspace."""

    store: SessionStore
    policy: SessionPolicy
    oidc: OidcClient
    access_tokens: TokenVerifier
    id_tokens: TokenVerifier
    api: ServiceApi
    templates: Jinja2Templates
    clock: Clock
    public_url: str
    zone: tzinfo = UTC
    # A lock per session only while a renewal holds it: weak values, so the map does not grow
    # with every session ever renewed.
    _renewing: "weakref.WeakValueDictionary[str, asyncio.Lock]" = field(
        default_factory=weakref.WeakValueDictionary
    )

    def renew_lock(self, key: str) -> asyncio.Lock:
        lock = self._renewing.get(key)
        if lock is None:
            lock = self._renewing[key] = asyncio.Lock()
        return lock


class SignInRequired(Exception):
    """No live session: the browser is sent to sign in, and back here afterwards."""

    def __init__(self, return_to: str, reason: str | None = None) -> None:
        super().__init__(return_to)
        self.return_to = return_to
        self.reason = reason


class NotForThisRole(Exception):
    """Signed in, but the page is for another role."""


def workspace_of(request: Request) -> Workspace:
    workspace: Workspace = request.app.state.workspace
    return workspace


def return_path(request: Request) -> str:
    path = request.url.path
    return path + (f"?{request.url.query}" if request.url.query else "")


async def _session(request: Request, *, activity: bool) -> Session:
    """The request's live session, its tokens renewed when they are about to expire. Only a
    request the person made counts as activity (`activity`): a page's own background check
    must not keep an unattended screen signed in."""
    workspace = workspace_of(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    back = return_path(request) if request.method == "GET" else "/"
    if not cookie:
        raise SignInRequired(back)
    now = workspace.clock.now()
    session = await workspace.store.get(digest(cookie))
    if session is None:
        raise SignInRequired(back, "ended")
    if not workspace.policy.is_live(session, now):
        await end_session(workspace, session)
        raise SignInRequired(back, "idle")
    if session.tokens.access_expires_at - now < RENEW_BEFORE:
        session = await _renewed(workspace, session, back)
    if activity and (touched := workspace.policy.touched(session, now)):
        session = touched
        await workspace.store.touch(session.key, session.last_seen_at, session.expires_at)
    request.state.session = session
    return session


async def signed_in(request: Request) -> Session:
    return await _session(request, activity=True)


async def signed_in_quietly(request: Request) -> Session:
    return await _session(request, activity=False)


async def end_session(workspace: Workspace, session: Session) -> None:
    """Ends a session here and its refresh token at the issuer (best effort: the issuer's own
    idle limit ends it anyway), so no copy of the token renews it."""
    await workspace.store.delete(session.key)
    if session.tokens.refresh_token:
        with contextlib.suppress(IssuerUnreachable, SignInFailed):
            await workspace.oidc.revoke(session.tokens.refresh_token)


async def _renewed(workspace: Workspace, session: Session, back: str) -> Session:
    # One renewal per session in this process; across replicas the store's version decides.
    async with workspace.renew_lock(session.key):
        current = await workspace.store.get(session.key)
        if current is None:
            raise SignInRequired(back, "ended")
        now = workspace.clock.now()
        if current.tokens.access_expires_at - now >= RENEW_BEFORE:
            return current  # another request renewed it while this one waited
        if current.tokens.refresh_token is None:
            await workspace.store.delete(current.key)
            raise SignInRequired(back, "expired")
        try:
            answer = await workspace.oidc.refresh(current.tokens.refresh_token, now)
        except IssuerUnreachable:
            raise ApiRefused(
                503, "the sign-in service is not answering; your session is kept, try again"
            ) from None
        except SignInFailed:
            stored = await workspace.store.get(current.key)
            if stored is not None and stored.version != current.version:
                return stored  # another replica renewed with the token this one tried
            await workspace.store.delete(current.key)
            raise SignInRequired(back, "expired") from None
        tokens = Tokens(
            answer.access_token,
            answer.refresh_token or current.tokens.refresh_token,
            answer.id_token or current.tokens.id_token,
            answer.expires_at,
        )
        if await workspace.store.replace_tokens(current.key, current.version, tokens):
            return replace(current, tokens=tokens, version=current.version + 1)
        return await workspace.store.get(current.key) or current


CurrentSession = Annotated[Session, Depends(signed_in)]
# For a page's background checks: the session is required but not kept alive by them.
QuietSession = Annotated[Session, Depends(signed_in_quietly)]


def require(session: Session, *roles: Role) -> None:
    if not session.roles.intersection(roles):
        raise NotForThisRole


async def checked_form(request: Request, session: Session) -> FormData:
    """The posted form, after its CSRF token matched the session's. The Origin header, when the
    browser sends one, must be ours too."""
    origin = request.headers.get("origin")
    workspace = workspace_of(request)
    if origin and origin != "null" and origin.rstrip("/") != _origin(workspace.public_url):
        raise ApiRefused(403, "this form was sent from another site; open the workspace again")
    form = await request.form()
    sent = form.get("csrf")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf_token):
        raise ApiRefused(403, "this form is out of date; reload the page and try again")
    return form


# A form's own key, drawn with the page (`new_form_key` in every template) and sent as the
# Idempotency-Key: the same form sent twice (a double click, a resend after a lost answer) is
# stored once.
FORM_KEY = re.compile(r"[0-9a-f]{32}")


def new_form_key() -> str:
    return uuid.uuid4().hex


def form_key(form: FormData) -> str | None:
    key = form.get("form_key")
    return key if isinstance(key, str) and FORM_KEY.fullmatch(key) else None


def program_day(request: Request) -> date:
    """Today in the program's time zone (dates on forms are the program's days)."""
    return datetime.now(workspace_of(request).zone).date()


def _origin(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}"


async def call(
    request: Request,
    session: Session,
    method: str,
    service: str,
    path: str,
    **kwargs: Any,
) -> Any:
    workspace = workspace_of(request)
    base = getattr(workspace.api.services, service)
    try:
        return await workspace.api.call(
            method,
            base,
            path,
            session.tokens.access_token,
            correlation=request.headers.get("x-correlation-id"),
            **kwargs,
        )
    except Unauthenticated:
        await workspace.store.delete(session.key)
        raise SignInRequired(return_path(request) if request.method == "GET" else "/") from None


async def notify(request: Request, session: Session, kind: str, text: str) -> None:
    """A message for the next page: what an action did, or what to do about a refusal."""
    await workspace_of(request).store.set_notice(session.key, (kind, text))


async def done(
    request: Request, session: Session, where: str, text: str, kind: str = "success"
) -> RedirectResponse:
    await notify(request, session, kind, text)
    return RedirectResponse(where, status_code=303)


async def render(
    request: Request,
    session: Session | None,
    template: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    workspace = workspace_of(request)
    notice = None
    if session is not None and session.notice is not None:
        notice = session.notice
        await workspace.store.set_notice(session.key, None)
    response = workspace.templates.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "csrf": session.csrf_token if session else "",
            "notice": notice,
            "label": label,
            "is_supervisor": bool(session and session.has(Role.SUPERVISOR)),
            "is_liaison": bool(session and session.has(Role.LIAISON)),
            "idle_seconds": int(workspace.policy.idle.total_seconds()),
            "quote": quote,
            "new_form_key": new_form_key,
            **context,
        },
        status_code=status_code,
    )
    return response
