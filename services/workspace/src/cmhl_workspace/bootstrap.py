"""Composition root of the workspace."""

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI
from fastapi.templating import Jinja2Templates

from cmhl_servicekit import mongo
from cmhl_servicekit.auth import IssuerKeys, TokenVerifier
from cmhl_servicekit.clock import Clock, SystemClock
from cmhl_servicekit.crypto import FieldCipher
from cmhl_servicekit.metrics import ServiceMetrics
from cmhl_servicekit.mongo import make_mongo_client
from cmhl_workspace.adapters.api import ServiceApi, Services
from cmhl_workspace.adapters.mongo import MongoSessionStore, ensure_indexes
from cmhl_workspace.adapters.oidc import OidcClient
from cmhl_workspace.application.sessions import SessionPolicy, SessionStore
from cmhl_workspace.config import WorkspaceSettings
from cmhl_workspace.domain.views import local_time
from cmhl_workspace.entrypoints.http.app import HERE, create_workspace_app
from cmhl_workspace.entrypoints.http.context import Workspace

SERVICE = "workspace"
PURGE_EVERY_SECONDS = 300.0
log = logging.getLogger(__name__)


class WorkspaceRuntime:
    """The session store is the workspace's one dependency of its own; the services and the
    identity provider are checked by the pages that use them."""

    def __init__(self, client: Any, store: SessionStore, clock: Clock) -> None:
        self._client = client
        self._store = store
        self._clock = clock
        self._purge: asyncio.Task[None] | None = None

    async def readiness(self) -> dict[str, bool]:
        try:
            await asyncio.wait_for(mongo.ping(self._client), 3.0)
        except Exception:
            return {"mongodb": False}
        if self._purge is not None and self._purge.done():
            return {"mongodb": True, "background": False}  # the purge loop died
        return {"mongodb": True}

    async def purge_forever(self) -> None:
        while True:
            try:
                removed = await self._store.purge(self._clock.now())
                if removed:
                    log.info("ended sessions removed", extra={"count": removed})
            except Exception as exc:  # the next round retries; sessions also end on read
                log.warning("session purge failed", extra={"reason": type(exc).__name__})
            await asyncio.sleep(PURGE_EVERY_SECONDS)

    def start_purge(self) -> None:
        self._purge = asyncio.create_task(self.purge_forever())

    async def stop(self) -> None:
        if self._purge is not None:
            self._purge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purge


def templates(zone: ZoneInfo) -> Jinja2Templates:
    """The pages' templates (autoescaped HTML), with times shown in the program's zone."""
    found = Jinja2Templates(directory=HERE / "templates")
    found.env.filters["local"] = lambda moment: local_time(moment, zone)
    found.env.filters["local_date"] = lambda moment: local_time(moment, zone, with_time=False)
    return found


def build(settings: WorkspaceSettings, *, clock: Clock | None = None, **_: Any) -> FastAPI:
    clock = clock or SystemClock()
    client = make_mongo_client(settings.mongo_uri, f"cmhl-{SERVICE}")
    db = client[settings.mongo_database]
    store = MongoSessionStore(db, FieldCipher.from_base64(settings.session_key))
    http = httpx.AsyncClient(timeout=settings.api_timeout_seconds)
    token_settings = settings.token_settings()
    keys = IssuerKeys(token_settings.issuer, reach_at=settings.auth_discovery_url, client=http)
    # The ID token is issued to the workspace's client, and only the workspace reads it.
    id_settings = settings.token_settings(audience=settings.oidc_client_id, refused_clients=[])
    public = settings.public_url.rstrip("/")
    workspace = Workspace(
        store=store,
        policy=SessionPolicy(
            idle=timedelta(minutes=settings.idle_minutes),
            longest=timedelta(hours=settings.session_hours),
        ),
        oidc=OidcClient(
            settings.auth_issuer,
            settings.oidc_client_id,
            f"{public}/auth/callback",
            http,
            reach_at=settings.auth_discovery_url,
        ),
        access_tokens=TokenVerifier(token_settings, keys),
        id_tokens=TokenVerifier(id_settings, keys),
        api=ServiceApi(
            http,
            Services(
                referral=settings.referral_url.rstrip("/"),
                followup=settings.followup_url.rstrip("/"),
                training=settings.training_url.rstrip("/"),
                placement=settings.placement_url.rstrip("/"),
                notifications=settings.notifications_url.rstrip("/"),
            ),
        ),
        templates=templates(settings.zone),
        clock=clock,
        public_url=public,
        zone=settings.zone,
    )
    runtime = WorkspaceRuntime(client, store, clock)

    async def on_start() -> None:
        await ensure_indexes(db)
        runtime.start_purge()

    async def on_stop() -> None:
        await runtime.stop()
        await http.aclose()
        await client.close()

    return create_workspace_app(
        workspace,
        runtime,
        max_body_bytes=settings.max_body_bytes,
        on_start=on_start,
        on_stop=on_stop,
        metrics=ServiceMetrics(SERVICE),
    )
