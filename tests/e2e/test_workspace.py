"""The workspace in headless Chromium (Debian's package, driven by Playwright) against the whole
running system: a liaison's day from sign-in at the identity provider's form to sign-out, and a
supervisor reassigning a referral. Every page is screenshotted and checked with axe-core."""

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, FilePayload, Page, expect

from cmhl_referral.domain.assignment import SERVICE_AREAS
from cmhl_servicekit.oidc import SignIn, demo_user

from .conftest import REPO

pytestmark = pytest.mark.e2e

LIAISON = "liaison-01"
COLLEAGUE = "liaison-02"  # the same CMHC (cmhc-01) as liaison-01
SUPERVISOR = "supervisor-01"


def screenshots() -> Path:
    root = Path(os.environ.get("CMHL_TEST_ARTIFACTS") or REPO / "test-artifacts")
    folder = root / "workspace"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def county_of(liaison: str) -> str:
    return min(fips for fips, a in SERVICE_AREAS.items() if a.liaison_id == liaison)


def workspace_url(system: dict[str, Any], path: str = "") -> str:
    return f"http://127.0.0.1:{system['stack']['service_ports']['workspace']}{path}"


def api(system: dict[str, Any], service: str, path: str) -> str:
    return f"http://127.0.0.1:{system['stack']['service_ports'][service]}{path}"


def password(system: dict[str, Any], username: str) -> str:
    return str(
        next(u for u in system["credentials"]["users"] if u["username"] == username)["password"]
    )


async def submit_referral(
    system: dict[str, Any], liaison: str, family_name: str, referred_at: datetime
) -> dict[str, Any]:
    """A referral an agency sent in, through the API, into the liaison's service area."""
    bearer = demo_user(system["credentials"], liaison).headers()
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(
            api(system, "referral", "/api/v1/referrals"),
            headers=bearer,
            json={
                "agency": {"agency_id": "columbia-pd", "source": "municipal_police"},
                "agency_reference": f"e2e-{uuid.uuid4().hex[:12]}",
                "county_fips": county_of(liaison),
                "primary_need": "behavioral_needs",
                "person_location": "detention",
                "person": {
                    "given_name": "Robin",
                    "family_name": family_name,
                    "birth_date": "1987-04-02",
                },
                "referred_at": referred_at.isoformat(),
            },
        )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    assert body["liaison_id"] == liaison
    return body


async def add_course(system: dict[str, Any]) -> str:
    """A course in the POST catalog, added through the training API by a supervisor."""
    course_id = f"e2e-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(
            api(system, "training", "/api/v1/courses"),
            headers=demo_user(system["credentials"], SUPERVISOR).headers(),
            json={
                "course_id": course_id,
                "title": "Understanding Mental Health (workspace test)",
                "category": "interpersonal",
                "credit_hours": 4,
            },
        )
    assert answer.status_code == 201, answer.text
    return course_id


async def agency_feedback(system: dict[str, Any], referral: dict[str, Any]) -> str | None:
    """What the referring agency's own system is told about the referral, with its client's
    token (client credentials): the coarse status, or None while it is withheld."""
    credentials = system["credentials"]
    [client] = [c for c in credentials["agency_clients"] if c["agency_id"] == "columbia-pd"]
    agency = SignIn(
        credentials["issuer"], client["client_id"], client_secret=client["client_secret"]
    )
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(
            api(system, "referral", f"/api/v1/agency/referrals/{referral['agency_reference']}"),
            headers=agency.headers(),
        )
    assert answer.status_code == 200, answer.text
    status: str | None = answer.json()["status"]
    return status


class Visit:
    """Screenshots and an accessibility check of each page the test reaches."""

    __test__ = False

    def __init__(self, page: Page, prefix: str) -> None:
        self.page = page
        self.prefix = prefix
        self.folder = screenshots()
        self.axe = Axe()

    async def check(self, name: str) -> None:
        await self.page.screenshot(path=self.folder / f"{self.prefix}-{name}.png", full_page=True)
        results = await self.axe.run(self.page)
        serious = [
            f"{v['id']}: {v['help']} ({len(v['nodes'])} elements)"
            for v in results.response["violations"]
            if v.get("impact") in {"serious", "critical"}
        ]
        assert not serious, f"{name}: axe-core found {serious}"


async def sign_in(page: Page, visit: Visit | None, system: dict[str, Any], username: str) -> None:
    await page.goto(workspace_url(system, "/"))
    # The identity provider's own form, with the standard field names.
    await expect(page.locator("input[name=username]")).to_be_visible()
    await expect(page.locator("input[name=password]")).to_be_visible()
    assert page.url.startswith(system["credentials"]["issuer"])
    if visit is not None:
        await page.screenshot(path=visit.folder / f"{visit.prefix}-sign-in.png")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password(system, username))
    await page.keyboard.press("Enter")
    await page.wait_for_url(workspace_url(system, "/**"))
    await expect(page.locator("header .who")).to_have_text(username)


async def notice(page: Page, text: str) -> None:
    await expect(page.locator("#notice .notice")).to_contain_text(text)


async def test_a_liaisons_day_in_the_workspace(system: dict[str, Any], browser: Browser) -> None:
    family = f"Okafor{uuid.uuid4().hex[:6]}"
    # Referred eight days ago: its 7-day follow-up is due today.
    referral = await submit_referral(system, LIAISON, family, datetime.now(UTC) - timedelta(days=8))
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    visit = Visit(page, "liaison")

    # 1. Sign in as the demo liaison.
    await sign_in(page, visit, system, LIAISON)
    await expect(page.locator("h1")).to_have_text("Your caseload")
    await visit.check("caseload")
    # By keyboard: the first Tab reaches "Skip to content", which moves focus to the page.
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()
    link = page.get_by_role("link", name=f"{family}, Robin")
    assert "referral" in (await link.get_attribute("href") or "")
    waiting = int((await page.inner_text("#waiting")).rstrip("+"))
    assert waiting >= 1

    # A referral that comes in while the caseload is open is announced without a reload (the
    # page asks every 30 s; the test runs the page's clock forward instead of waiting).
    # Its own context (a clock is per context, and the liaison's page must keep real time),
    # signed in like another tab of the same person.
    watching = await browser.new_context(viewport={"width": 1280, "height": 900})
    watcher = await watching.new_page()
    await watcher.clock.install()
    await sign_in(watcher, None, system, LIAISON)
    await watcher.goto(workspace_url(system, "/caseload"))
    await expect(watcher.locator("#fresh")).to_be_hidden()
    later = f"Adeyemi{uuid.uuid4().hex[:6]}"
    await submit_referral(system, LIAISON, later, datetime.now(UTC) - timedelta(minutes=5))
    await watcher.clock.run_for(31_000)
    await expect(watcher.locator("#fresh")).to_be_visible()
    await watcher.get_by_role("link", name="Refresh the caseload").click()
    await expect(watcher.get_by_role("link", name=f"{later}, Robin")).to_be_visible()
    await watching.close()

    # Search by family name: only this person's referrals.
    await page.fill("#f-name", family.lower())
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.locator("tbody tr")).to_have_count(1)
    await page.fill("#f-name", "")

    # Filters narrow the caseload on the server: status received shows the new referral.
    await page.select_option("#f-status", "received")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.get_by_role("link", name=f"{family}, Robin")).to_be_visible()

    # 2. Accept the new referral.
    await page.get_by_role("link", name=f"{family}, Robin").click()
    await page.wait_for_url(f"**/referrals/{referral['referral_id']}")
    await visit.check("referral")
    await page.get_by_role("button", name="Accept referral").click()
    await notice(page, "Status changed to accepted")
    await expect(page.locator("#status")).to_have_text("Accepted")
    # Only the transitions the lifecycle allows from accepted are offered.
    offered = await page.locator("#next-status option").all_inner_texts()
    assert "Received" not in offered
    assert "Connected to treatment" in offered

    # 3. Record a contact, by keyboard alone.
    await page.select_option("#contact-place", "detention")
    await page.select_option("#contact-reached", "yes")
    await page.focus("#record-contact")
    await page.keyboard.press("Enter")
    await notice(page, "Contact recorded")
    await expect(page.locator(".timeline")).to_contain_text("Detention: reached")

    # Record the person's consent to tell the referring agency how it went.
    await expect(page.locator("#consent-to")).to_have_value("columbia-pd")
    await page.get_by_role("button", name="Record consent").click()
    await notice(page, "Consent recorded")
    await expect(page.locator(".timeline")).to_contain_text("Consent to disclose to columbia-pd")
    await expect(page.locator(".consents")).to_contain_text("in force: to columbia-pd")
    await expect(page.locator("#agency-sees")).to_contain_text("told the referral's status")
    # The agency's system now learns the status; the person revokes, and it is withheld again.
    assert await agency_feedback(system, referral) == "in_progress"
    await page.get_by_role(
        "button", name="Record that the consent to columbia-pd was revoked"
    ).click()
    await notice(page, "Consent revoked")
    await expect(page.locator(".consents")).to_contain_text("revoked: to columbia-pd")
    await expect(page.locator("#agency-sees")).to_contain_text(
        "only that the referral was received"
    )
    assert await agency_feedback(system, referral) is None

    # A follow-up of the liaison's own, in three days.
    # (The field takes the browser's local time; three days ahead in any zone is in range.)
    in_three_days = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    await page.fill("#follow-up-at", in_three_days)
    await page.get_by_role("button", name="Add follow-up").click()
    await notice(page, "Follow-up added")
    await expect(page.locator(".timeline")).to_contain_text("Ad hoc follow-up")

    # 4. Record a follow-up outcome in one step (the follow-up service schedules it from the
    # referral's event, so the page is reloaded until it shows).
    await page.get_by_role("link", name="Follow-ups").click()
    row = page.locator("tr", has_text=f"{family}, Robin")
    for _ in range(60):
        if await row.count():
            break
        await page.wait_for_timeout(1000)
        await page.reload()
    await expect(row.first).to_be_visible()
    await visit.check("follow-ups")
    await row.first.locator("select").select_option("reached")
    await row.first.get_by_role("button", name="Record").click()
    await notice(page, "Outcome recorded: reached")

    # 5. Open a bed search and complete it.
    await page.goto(workspace_url(system, f"/referrals/{referral['referral_id']}"))
    await page.get_by_role("link", name="Open a bed search").click()
    await visit.check("bed-search-new")
    await page.get_by_role("button", name="Open the bed search").click()
    await notice(page, "Bed search opened")
    await expect(page.locator("#hours-left")).to_be_visible()
    hours_left = float(await page.inner_text("#hours-left"))
    assert 0 < hours_left <= 96
    await visit.check("bed-search")
    # The 96-hour clock stays in view while the liaison scrolls down the list of facilities.
    await page.set_viewport_size({"width": 1280, "height": 400})
    await page.mouse.wheel(0, 3000)
    await expect(page.locator(".clock")).to_be_in_viewport()
    await page.set_viewport_size({"width": 1280, "height": 900})
    first = page.locator("tbody tr").first
    await first.locator("select").select_option("accepted")
    await first.get_by_role("button", name="Log call").click()
    await notice(page, "Call logged: accepted")
    await page.get_by_role("button", name="Record the placement").click()
    await notice(page, "Bed search complete: placed")
    await expect(page.locator("#placement-status")).to_have_text("Placed")

    # The other pages a liaison uses, for the screenshots and the accessibility check.
    await page.get_by_role("link", name="Bed search", exact=True).click()
    await visit.check("bed-searches")
    await page.get_by_role("link", name="Trainings").click()
    # A course of its own, added by a supervisor: the API fuzzing before this test adds
    # and retires courses of the shared catalog.
    course = await add_course(system)
    await page.reload()
    await page.select_option("#course", course)
    await page.fill("#host", "columbia-pd")
    roster: FilePayload = {
        "name": "roster.csv",
        "mimeType": "text/csv",
        "buffer": b"officer_ref\nB-101\nB-102\n",
    }
    await page.set_input_files("#roster", files=[roster])
    await visit.check("trainings")
    await page.get_by_role("button", name="Record the training").click()
    await notice(page, "Training recorded with 2 officers")
    await expect(page.get_by_role("link", name="Print certificate for B-101")).to_be_visible()
    await visit.check("training")
    await page.get_by_role("link", name="New referral").click()
    await visit.check("intake")

    # Notifications: the referral sent in five minutes ago is there (the one referred eight
    # days ago is history, not news); mail goes to the address given.
    await page.get_by_role("link", name="Notifications").click()
    await expect(page.locator("tr", has_text=f"{later}, Robin")).to_contain_text("New referral")
    await expect(page.locator("tr", has_text=f"{family}, Robin")).to_have_count(0)
    await page.fill("#mail-address", "liaison-01@cmhc.test")
    await page.get_by_role("button", name="Save").click()
    await notice(page, "Notifications will be mailed to liaison-01@cmhc.test")
    await expect(page.locator("#mail-address")).to_have_value("liaison-01@cmhc.test")
    await visit.check("notifications")

    # 6. Sign out: the workspace's session and the identity provider's both end.
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/signed-out")
    await visit.check("signed-out")
    await page.goto(workspace_url(system, "/caseload"))
    await expect(page.locator("input[name=password]")).to_be_visible()
    await context.close()

    # The name was searched, shown and sent around all day: no service logged it.
    for log in (system["state_dir"] / "logs").glob("*.log"):
        text = log.read_text(errors="replace")
        assert family not in text, log.name
        assert family.lower() not in text, log.name


async def test_a_supervisor_reassigns_a_referral(system: dict[str, Any], browser: Browser) -> None:
    family = f"Lindqvist{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    referral = await submit_referral(system, LIAISON, family, now - timedelta(hours=2))
    await submit_referral(system, COLLEAGUE, f"Moreau{uuid.uuid4().hex[:6]}", now)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    visit = Visit(page, "supervisor")
    await sign_in(page, visit, system, SUPERVISOR)
    await page.get_by_role("link", name="Team").click()
    await expect(page.locator("h1")).to_have_text("Your team")
    await visit.check("team")
    row = page.locator("tr", has_text=f"{family}, Robin")
    await row.locator("select").select_option(COLLEAGUE)
    await row.get_by_role("button", name="Reassign").click()
    await notice(page, f"Referral reassigned to {COLLEAGUE}")
    await expect(page.locator("tr", has_text=f"{family}, Robin")).to_contain_text(COLLEAGUE)

    # The referral service agrees, and the previous liaison no longer sees the referral.
    async with httpx.AsyncClient(timeout=10) as client:
        path = f"/api/v1/referrals/{referral['referral_id']}"
        moved = await client.get(
            api(system, "referral", path),
            headers=demo_user(system["credentials"], COLLEAGUE).headers(),
        )
        gone = await client.get(
            api(system, "referral", path),
            headers=demo_user(system["credentials"], LIAISON).headers(),
        )
    assert moved.status_code == 200
    assert moved.json()["liaison_id"] == COLLEAGUE
    assert gone.status_code == 404

    # A forged form (no CSRF token) changes nothing.
    answer = await page.request.post(
        workspace_url(system, f"/referrals/{referral['referral_id']}/assignment"),
        form={"liaison_id": LIAISON},
    )
    assert answer.status == 403
    await page.get_by_role("link", name=f"{family}, Robin").first.click()
    await expect(page.locator(".status-line")).to_contain_text(COLLEAGUE)
    await visit.check("referral")
    await context.close()
