"""Sign-in through the program's identity provider (authorization code with PKCE) and sign-out.

The session cookie is HttpOnly, Secure and SameSite=Lax (Lax so that the redirect back from
the identity provider, a top-level navigation, carries the sign-in cookie); forms carry a CSRF
token besides. The `__Host-` prefix pins both cookies to this host and path /."""

import contextlib
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cmhl_servicekit.auth import InvalidToken, IssuerUnavailable, Role
from cmhl_workspace.adapters.oidc import Challenge, IssuerUnreachable, SignInFailed
from cmhl_workspace.application.sessions import PendingSignIn, Tokens, digest
from cmhl_workspace.entrypoints.http.context import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    CurrentSession,
    checked_form,
    end_session,
    render,
    workspace_of,
)

router = APIRouter(include_in_schema=False)
WORKSPACE_ROLES = frozenset({Role.LIAISON, Role.SUPERVISOR})


def _safe_return(path: str | None) -> str:
    """Only a path of this site: never `//elsewhere` or a full URL (no open redirect)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


@router.get("/sign-in")
async def sign_in(
    request: Request,
    next: Annotated[str | None, Query(max_length=2000)] = None,
    again: Annotated[bool, Query(description="ask for the password again")] = False,
) -> Response:
    workspace = workspace_of(request)
    challenge = Challenge.new()
    now = workspace.clock.now()
    await workspace.store.save_pending(
        PendingSignIn(
            key=digest(challenge.state),
            code_verifier=challenge.code_verifier,
            nonce=challenge.nonce,
            return_to=_safe_return(next),
            expires_at=now + workspace.policy.pending_for,
        )
    )
    try:
        target = await workspace.oidc.authorization_url(challenge, ask_again=again)
    except IssuerUnreachable as exc:
        return await _problem(request, 503, "The sign-in service is not answering", exc)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SIGN_IN_COOKIE,
        challenge.state,
        max_age=int(workspace.policy.pending_for.total_seconds()),
        httponly=True,
        secure=True,
        samesite="lax",
    )
    return response


@router.get("/auth/callback")
async def callback(
    request: Request,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state: Annotated[str | None, Query(max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    workspace = workspace_of(request)
    expected = request.cookies.get(SIGN_IN_COOKIE)
    if error or not code or not state:
        return await _problem(request, 400, "The sign-in did not finish", None)
    if expected != state:
        # Another tab's or another site's answer: never sign this browser in with it.
        return await _problem(request, 400, "This sign-in was started elsewhere", None)
    pending = await workspace.store.take_pending(digest(state))
    now = workspace.clock.now()
    if pending is None:
        return await _problem(request, 400, "This sign-in was used already", None)
    if pending.expires_at < now:
        return await _problem(request, 400, "This sign-in took too long", None)
    try:
        answer = await workspace.oidc.exchange(code, pending.code_verifier, now)
        claims = await workspace.access_tokens.claims(answer.access_token)
        if answer.id_token is None:
            raise InvalidToken("the identity provider sent no ID token")
        identity = await workspace.id_tokens.claims(answer.id_token)
        if identity.get("nonce") != pending.nonce:
            raise InvalidToken("the ID token answers another sign-in")
    except (SignInFailed, InvalidToken) as exc:
        return await _problem(request, 400, "The identity provider's answer was refused", exc)
    except (IssuerUnreachable, IssuerUnavailable) as exc:
        return await _problem(request, 503, "The sign-in service is not answering", exc)
    principal = workspace.access_tokens.principal(claims)
    if not principal.roles & WORKSPACE_ROLES:
        return await render(
            request,
            None,
            "not_for_role.html",
            status_code=403,
            username=str(identity.get("preferred_username", principal.subject)),
        )
    session_id, session = workspace.policy.new_session(
        principal,
        str(identity.get("preferred_username", principal.subject)),
        Tokens(answer.access_token, answer.refresh_token, answer.id_token, answer.expires_at),
        now,
    )
    if earlier := request.cookies.get(SESSION_COOKIE):
        # A new sign-in in this browser replaces its session: a new id (no fixation) and no
        # earlier session left open.
        await workspace.store.delete(digest(earlier))
    await workspace.store.create(session)
    response = RedirectResponse(pending.return_to, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        httponly=True,
        secure=True,
        samesite="lax",
    )
    response.delete_cookie(SIGN_IN_COOKIE, secure=True, httponly=True)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: CurrentSession) -> Response:
    """Ends the session here and at the issuer: the browser posts the issuer's end-session
    form (the page's script sends it at once; without scripts the person presses Continue),
    and the issuer sends it back to /signed-out."""
    workspace = workspace_of(request)
    form = await checked_form(request, session)
    await end_session(workspace, session)
    after = workspace.public_url.rstrip("/") + "/signed-out"
    if form.get("reason") == "idle":
        after += "?reason=idle"
    ending = None
    with contextlib.suppress(IssuerUnreachable):
        ending = await workspace.oidc.end_session_form(session.tokens.id_token, after)
    if ending is None:  # the local session is gone; the issuer's ends at its own idle limit
        response: Response = RedirectResponse(after, status_code=303)
    else:
        endpoint, fields = ending
        response = await render(request, None, "signing_out.html", endpoint=endpoint, fields=fields)
    response.delete_cookie(SESSION_COOKIE, secure=True, httponly=True)
    return response


@router.get("/signed-out", response_class=HTMLResponse)
async def signed_out(
    request: Request, reason: Annotated[str | None, Query(max_length=20)] = None
) -> HTMLResponse:
    return await render(request, None, "signed_out.html", reason=reason)


async def _problem(
    request: Request, status_code: int, title: str, exc: Exception | None
) -> HTMLResponse:
    return await render(
        request,
        None,
        "problem.html",
        status_code=status_code,
        title=title,
        detail=str(exc) if exc else None,
    )
