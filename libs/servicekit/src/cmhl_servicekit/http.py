"""The HTTP app factory every service uses: lifespan, health, size limits, no 500 for outages."""

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cmhl_servicekit import tracing
from cmhl_servicekit.asyncapi import asyncapi_router
from cmhl_servicekit.auth import IssuerKeys, TokenVerifier
from cmhl_servicekit.consuming import TRANSIENT_ERRORS
from cmhl_servicekit.correlation import correlation_id_from
from cmhl_servicekit.metrics import (
    HttpMetrics,
    ServiceMetrics,
    consumer_lag_probe,
    metrics_router,
)
from cmhl_servicekit.runtime import Runtime
from cmhl_servicekit.settings import ServiceSettings


class BodySizeLimit:
    """Rejects bodies over a limit with 413, declared or streamed, before the app parses them.

    The body is read here (it is small by definition) and replayed to the app, so a chunked
    upload cannot get past the limit and no framework turns the refusal into a 400."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._reject(send)
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body larger than {self.max_bytes} bytes"},
            status.HTTP_413_CONTENT_TOO_LARGE,
        )
        await response({"type": "http"}, _empty_receive, send)


class SecurityHeaders:
    """Headers every answer carries: nothing is cached (answers hold PHI), content types are not
    sniffed, no page may frame ours, and a JSON answer may load nothing at all."""

    ALWAYS: tuple[tuple[bytes, bytes], ...] = (
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in self.ALWAYS if n not in names]
                content_type = dict(headers).get(b"content-type", b"")
                policy = (
                    b"default-src 'none'; frame-ancestors 'none'"
                    if not content_type.startswith(b"text/html")
                    else b"frame-ancestors 'none'"
                )
                headers.append((b"content-security-policy", policy))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def correlation_id(request: Request) -> str:
    """The request's correlation id, from its X-Correlation-Id header (see correlation.py)."""
    return correlation_id_from(request.headers.get("x-correlation-id"))


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b""}


class Readiness(Protocol):
    """What /health/ready asks: each dependency's name and whether it answers."""

    async def readiness(self) -> dict[str, bool]: ...


def health_router() -> APIRouter:
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live")
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @router.get("/ready", responses={503: {"description": "a dependency is unreachable"}})
    async def ready(request: Request) -> JSONResponse:
        runtime: Readiness = request.app.state.runtime
        checks = await runtime.readiness()
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks},
            status.HTTP_200_OK if ok else status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    return router


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    # FastAPI echoes the rejected input by default; it may hold a name or a narrative, so the
    # answer names the field and the rule only.
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
    # A database or broker outage is the server's temporary state, not a bug: say so and when to
    # retry, never 500.
    return JSONResponse(
        {"detail": "a backing service is unavailable; retry shortly"},
        status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "2"},
    )


def api_app(
    *,
    title: str,
    description: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """A service's FastAPI app. `/docs` and `/redoc` serve Swagger UI and ReDoc from copies in
    the installed package, not from a CDN: the pages work on a closed network, and a browser
    showing a service's API loads no third-party script."""
    app: FastAPI = FastAPIOffline(
        title=title, description=description, version="1.0.0", lifespan=lifespan
    )
    return app


def create_app(
    *,
    title: str,
    description: str,
    settings: ServiceSettings,
    runtime: Runtime,
    routers: Sequence[APIRouter],
    metrics: ServiceMetrics,
    state: dict[str, Any] | None = None,
) -> FastAPI:
    token_settings = settings.token_settings()
    issuer_keys = IssuerKeys(token_settings.issuer, reach_at=settings.auth_discovery_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()
            await issuer_keys.close()

    app = api_app(title=title, description=description, lifespan=lifespan)
    app.state.runtime = runtime
    app.state.token_verifier = TokenVerifier(token_settings, issuer_keys)
    for key, value in (state or {}).items():
        setattr(app.state, key, value)
    app.state.metrics = metrics
    metrics.probe("consumer_lag", consumer_lag_probe(metrics, runtime.broker))
    app.include_router(health_router())
    app.include_router(metrics_router(metrics))
    app.include_router(asyncapi_router(runtime.broker, title=title, description=description))
    for router in routers:
        app.include_router(router)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    for error in TRANSIENT_ERRORS:
        app.add_exception_handler(error, _unavailable)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(HttpMetrics, metrics=metrics)  # outermost: it times everything
    tracing.instrument_app(app)  # around the whole stack, when traces are configured
    return app
