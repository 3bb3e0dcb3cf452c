"""The workspace's web app: pages, static files, health, and errors as pages that say what to
do next (never a stack trace, never a 500 for a service's refusal)."""

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from cmhl_servicekit.http import BodySizeLimit, Readiness, SecurityHeaders, health_router
from cmhl_servicekit.metrics import HttpMetrics, ServiceMetrics, metrics_router
from cmhl_workspace.adapters.api import ApiRefused
from cmhl_workspace.entrypoints.http import auth, pages, supports
from cmhl_workspace.entrypoints.http.context import (
    NotForThisRole,
    SignInRequired,
    Workspace,
    render,
)

HERE = Path(__file__).parent


def content_policy(issuer_origin: str) -> str:
    # Scripts and styles from this site only (no inline code), and forms may post here or to
    # the identity provider (sign-out redirects there).
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"form-action 'self' {issuer_origin}; base-uri 'none'; object-src 'none'; "
        "frame-ancestors 'none'"
    )


def create_workspace_app(
    workspace: Workspace,
    runtime: Readiness,
    *,
    max_body_bytes: int,
    on_start: Callable[[], Awaitable[None]],
    on_stop: Callable[[], Awaitable[None]],
    metrics: ServiceMetrics,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await on_start()
        try:
            yield
        finally:
            await on_stop()

    app = FastAPI(
        title="CMHL workspace",
        description="Liaisons' and supervisors' pages; a backend-for-frontend over the services.",
        version="1.0.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.workspace = workspace
    app.state.runtime = runtime
    app.include_router(health_router())
    app.include_router(metrics_router(metrics))
    app.include_router(auth.router)
    app.include_router(pages.router)
    app.include_router(supports.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    issuer = workspace.oidc.issuer
    # The issuer's origin: its sign-in and end-session endpoints may sit on other paths
    # (Entra ID's do), and a CSP source with a path would match only that path.
    parts = urlsplit(issuer)
    policy = content_policy(f"{parts.scheme}://{parts.netloc}")

    @app.middleware("http")
    async def html_policy(
        request: Request, call_next: Callable[..., Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        html = response.headers.get("content-type", "").startswith("text/html")
        if html and "content-security-policy" not in response.headers:
            response.headers["content-security-policy"] = policy
        # The page's time in the workspace, the services' answers included (browsers' developer
        # tools and bench/workspace_pages.py read it).
        elapsed = (time.perf_counter() - started) * 1000
        response.headers["server-timing"] = f"app;dur={elapsed:.1f}"
        return response

    @app.exception_handler(SignInRequired)
    async def to_sign_in(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        target = f"/sign-in?next={quote(exc.return_to, safe='')}"
        if exc.reason == "idle":
            # Ended for idleness: the password again, even if the issuer remembers the person.
            target += "&again=true"
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(NotForThisRole)
    async def wrong_role(request: Request, _: Exception) -> Response:
        session = getattr(request.state, "session", None)
        return await render(
            request,
            session,
            "problem.html",
            status_code=403,
            title="This page is for another role",
            detail="Your role does not open this page. Use the menu above.",
        )

    @app.exception_handler(ApiRefused)
    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiRefused)
        session = getattr(request.state, "session", None)
        titles = {
            404: "Not found, or not in your caseload",
            403: "Not allowed",
            503: "A service is not answering",
        }
        return await render(
            request,
            session,
            "problem.html",
            status_code=exc.status if 400 <= exc.status < 600 else 502,
            title=titles.get(exc.status, "The request was refused"),
            detail=exc.detail,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        session = getattr(request.state, "session", None)
        titles = {404: "There is no such page", 405: "That page takes no form"}
        return await render(
            request,
            session,
            "problem.html",
            status_code=exc.status_code,
            title=titles.get(exc.status_code, "The request was refused"),
            detail="Use the menu, or go back and try again.",
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        session = getattr(request.state, "session", None)
        fields = ", ".join(
            f"{'.'.join(str(p) for p in e.get('loc', [])[1:])}: {e.get('msg', '')}"
            for e in exc.errors()
        )
        return await render(
            request,
            session,
            "problem.html",
            status_code=422,
            title="That address or form is not valid",
            detail=f"{fields}. Go back and correct it.",
        )

    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(HttpMetrics, metrics=metrics)  # outermost: it times everything
    return app
