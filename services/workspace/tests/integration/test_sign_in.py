"""Sign-in and sessions against the stack's real Keycloak and database, in Debian's Chromium: the
workspace runs in this test's event loop on a clock the test moves, so idle time passes at once.
The services it calls are absent on purpose: a page whose service is down says what to do."""

import asyncio
import base64
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, Page, expect
from pymongo import AsyncMongoClient

from cmhl_servicekit.auth import Principal, Role
from cmhl_servicekit.clock import AdjustableClock
from cmhl_servicekit.crypto import FieldCipher
from cmhl_servicekit.testing import free_port, headless_chromium, identity_provider
from cmhl_workspace.adapters.mongo import MongoSessionStore
from cmhl_workspace.application.sessions import SessionPolicy, Tokens
from cmhl_workspace.bootstrap import build
from cmhl_workspace.config import WorkspaceSettings

pytestmark = pytest.mark.integration


@dataclass
class Running:
    base: str
    clock: AdjustableClock
    database: str
    mongo_uri: str


@pytest.fixture
async def workspace(mongo_uri: str) -> AsyncIterator[Running]:
    port = free_port()
    nowhere = f"http://127.0.0.1:{free_port()}"  # no service answers here
    clock = AdjustableClock(datetime.now(UTC))
    database = f"test_{uuid.uuid4().hex[:12]}"
    settings = WorkspaceSettings(
        http_port=port,
        public_url=f"http://127.0.0.1:{port}",
        mongo_uri=mongo_uri,
        mongo_database=database,
        auth_issuer=identity_provider().issuer,
        auth_refused_clients=[],
        referral_url=nowhere,
        followup_url=nowhere,
        training_url=nowhere,
        placement_url=nowhere,
        notifications_url=nowhere,
        session_key=base64.b64encode(os.urandom(32)).decode(),
    )
    server = uvicorn.Server(
        uvicorn.Config(build(settings, clock=clock), host="127.0.0.1", port=port, log_config=None)
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):  # uvicorn says when it listens only through this flag
        if server.started:
            break
        await asyncio.sleep(0.05)
    assert server.started, "the workspace did not start"
    try:
        yield Running(f"http://127.0.0.1:{port}", clock, database, mongo_uri)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with headless_chromium() as launched:
        yield launched


async def sign_in(page: Page, base: str, subject: str, *roles: Role) -> list[str]:
    """Signs a test user in through Keycloak's form; the callback addresses the browser used."""
    person = identity_provider().person(subject, roles, "cmhc-01")
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if "/auth/callback" in r.url else None)
    await page.goto(base + "/caseload?status=received")
    await page.fill("input[name=username]", str(person.username))
    await page.fill("input[name=password]", str(person.password))
    await page.keyboard.press("Enter")
    await page.wait_for_url(base + "/**")
    return callbacks


async def stored_sessions(running: Running) -> list[dict[str, Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(running.mongo_uri)
    try:
        return await client[running.database]["sessions"].find().to_list(None)
    finally:
        await client.close()


async def test_a_liaison_signs_in_and_the_session_ends_after_idle_time(
    workspace: Running, browser: Browser
) -> None:
    page = await browser.new_page()
    callbacks = await sign_in(page, workspace.base, "liaison-71", Role.LIAISON)
    # Back where the sign-in started; the referral service is down, and the page says so.
    assert page.url == workspace.base + "/caseload?status=received"
    await expect(page.locator("h1")).to_have_text("A service is not answering")
    await expect(page.locator("main")).to_contain_text("try again shortly")
    await expect(page.locator("header .who")).to_have_text("liaison-71")

    # The cookie holds a random id; the store has its hash and the tokens sealed.
    [cookie] = [c for c in await page.context.cookies() if c["name"] == "__Host-cmhl_session"]
    assert cookie["httpOnly"]
    assert cookie["secure"]
    assert cookie["sameSite"] == "Lax"
    [stored] = await stored_sessions(workspace)
    assert stored["_id"] != cookie["value"]
    assert cookie["value"] not in str(stored)
    # No JWT in clear: a JWT's header and payload are base64url JSON joined by a dot (the sealed
    # tokens are standard base64 without dots, and may contain "eyJ" by chance).
    assert not re.search(r"eyJ[A-Za-z0-9_-]+\.eyJ", str(stored))
    assert stored["subject"] == "liaison-71"

    # The callback cannot be replayed, even with its sign-in cookie: its state was used up.
    state = httpx.URL(callbacks[-1]).params["state"]
    replay = await page.request.get(
        callbacks[-1], headers={"Cookie": f"__Host-cmhl_sign_in={state}"}
    )
    assert replay.status == 400
    assert "This sign-in was used already" in await replay.text()

    # 14 minutes idle: still signed in. The caseload's background check for new referrals
    # is not activity: two minutes later the session has ended all the same.
    workspace.clock.advance(timedelta(minutes=14))
    alive = await page.request.get(workspace.base + "/caseload", max_redirects=0)
    assert alive.status == 503  # still the service that is down, not the sign-in
    workspace.clock.advance(timedelta(minutes=10))
    polled = await page.request.get(workspace.base + "/caseload/newest", max_redirects=0)
    assert polled.status == 503  # answered (the service is down), but not counted
    workspace.clock.advance(timedelta(minutes=6))
    ended = await page.request.get(workspace.base + "/caseload", max_redirects=0)
    assert ended.status == 303
    assert ended.headers["location"] == "/sign-in?next=%2Fcaseload&again=true"
    assert await stored_sessions(workspace) == []
    # Signing in again after an idle end asks the issuer for the password again.
    again = await page.request.get(workspace.base + ended.headers["location"], max_redirects=0)
    assert httpx.URL(again.headers["location"]).params["prompt"] == "login"


async def test_forms_need_the_sessions_csrf_token_and_sign_out_ends_the_session(
    workspace: Running, browser: Browser
) -> None:
    page = await browser.new_page()
    await sign_in(page, workspace.base, "liaison-72", Role.LIAISON)
    forged = await page.request.post(
        workspace.base + "/sign-out", form={"csrf": "guessed"}, max_redirects=0
    )
    assert forged.status == 403
    assert len(await stored_sessions(workspace)) == 1
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(workspace.base + "/signed-out")
    await expect(page.locator("h1")).to_have_text("You are signed out")
    assert await stored_sessions(workspace) == []
    # The identity provider's session ended too: the next visit asks for the password.
    await page.goto(workspace.base + "/caseload")
    await expect(page.locator("input[name=password]")).to_be_visible()


async def test_a_screen_left_alone_signs_itself_out(workspace: Running, browser: Browser) -> None:
    page = await browser.new_page()
    await page.clock.install()
    await sign_in(page, workspace.base, "liaison-75", Role.LIAISON)
    await page.clock.run_for(14 * 60 * 1000)
    await page.keyboard.press("Tab")  # activity: the clock starts again
    await page.clock.run_for(10 * 60 * 1000)
    assert page.url.startswith(workspace.base + "/caseload")
    await page.clock.run_for(6 * 60 * 1000)
    await page.wait_for_url(workspace.base + "/signed-out?reason=idle")
    await expect(page.locator("main")).to_contain_text("without activity")
    assert await stored_sessions(workspace) == []


async def test_a_sign_in_answer_this_browser_did_not_start_is_refused(
    workspace: Running, browser: Browser
) -> None:
    page = await browser.new_page()
    answer = await page.goto(workspace.base + f"/auth/callback?code=x&state={uuid.uuid4()}")
    assert answer is not None
    assert answer.status == 400
    await expect(page.locator("h1")).to_have_text("This sign-in was started elsewhere")
    assert await stored_sessions(workspace) == []


async def test_bad_addresses_and_form_values_get_a_page_saying_what_to_do(
    workspace: Running, browser: Browser
) -> None:
    page = await browser.new_page()
    await sign_in(page, workspace.base, "liaison-73", Role.LIAISON)
    missing = await page.goto(workspace.base + "/no-such-page")
    assert missing is not None
    assert missing.status == 404
    await expect(page.locator("h1")).to_have_text("There is no such page")
    # Pages load scripts and styles from the workspace only; forms go to it or the issuer.
    policy = (await missing.all_headers())["content-security-policy"]
    issuer = httpx.URL(identity_provider().issuer)
    assert f"form-action 'self' {issuer.scheme}://{issuer.netloc.decode()};" in policy
    assert "script-src 'self';" in policy
    wrong = await page.goto(workspace.base + "/caseload?status=sleeping")
    assert wrong is not None
    assert wrong.status == 422
    await expect(page.locator("main")).to_contain_text("pick one from the list")
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    # A time the workspace cannot read: refused here, naming the field's kind.
    bad_time = await page.request.post(
        workspace.base + "/intake", form={"csrf": str(csrf), "referred_at": "32/13"}
    )
    assert bad_time.status == 422
    assert "date and time" in await bad_time.text()
    # A form the service refuses (no names, no birth date): back to the form with its reason.
    refused = await page.request.post(
        workspace.base + "/intake", form={"csrf": str(csrf)}, max_redirects=0
    )
    assert refused.status == 303
    assert refused.headers["location"] == "/intake"


async def test_a_role_without_workspace_pages_gets_no_session(
    workspace: Running, browser: Browser
) -> None:
    page = await browser.new_page()
    person = identity_provider().person("dmh-analyst-7", (Role.METRICS_CONSUMER,), None)
    await page.goto(workspace.base + "/")
    await page.fill("input[name=username]", str(person.username))
    await page.fill("input[name=password]", str(person.password))
    await page.keyboard.press("Enter")
    await expect(page.locator("h1")).to_have_text("The workspace is for liaisons and supervisors")
    assert await stored_sessions(workspace) == []


async def test_sessions_sealed_under_an_earlier_key_end_instead_of_failing(
    mongo_uri: str,
) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        db = client[f"test_{uuid.uuid4().hex[:12]}"]
        before = MongoSessionStore(db, FieldCipher(os.urandom(32)))
        after = MongoSessionStore(db, FieldCipher(os.urandom(32)))
        now = datetime.now(UTC).replace(microsecond=0)
        principal = Principal("liaison-74", frozenset({Role.LIAISON}), "cmhc-01")
        tokens = Tokens("access", "refresh", "id", now + timedelta(minutes=5))
        _, session = SessionPolicy().new_session(principal, "liaison-74", tokens, now)
        await before.create(session)
        assert (await before.get(session.key)) == session
        assert await after.get(session.key) is None  # the key changed: the session ends
        assert await before.get(session.key) is None  # and is gone
        # Renewed tokens are stored only over the version they started from.
        await before.create(session)
        renewed = Tokens("access-2", "refresh-2", "id", now + timedelta(minutes=10))
        assert await before.replace_tokens(session.key, 0, renewed)
        assert not await before.replace_tokens(session.key, 0, tokens)  # a late, stale renewal
        stored = await before.get(session.key)
        assert stored is not None
        assert (stored.tokens, stored.version) == (renewed, 1)
    finally:
        await client.close()
