"""The workspace's directory, connection, barrier and consultation pages in headless Chromium
against the whole running system: a program admin loads an HSDS service through the API, then
a liaison finds it from a referral's page, records the connection and a barrier, and records a
consultation and a county's barrier. Every page is screenshotted and checked with axe-core."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_servicekit.oidc import demo_user

from .test_workspace import (
    LIAISON,
    Visit,
    api,
    county_of,
    notice,
    sign_in,
    submit_referral,
)

pytestmark = pytest.mark.e2e


async def import_service(system: dict[str, Any], county_fips: str, name: str) -> str:
    """One crisis service in the county, as an HSDS 3.0 JSON package, by the program admin."""
    service_id = f"e2e-{uuid.uuid4().hex[:12]}"
    package = {
        "system": "e2e-directory",
        "records": [
            {
                "id": service_id,
                "name": name,
                "description": "Mobile crisis response, day and night.",
                "organization": {"id": "e2e-org", "name": "E2E Behavioral Health"},
                "service_at_locations": [
                    {
                        "location": {
                            "id": f"{service_id}-loc",
                            "name": "Main office",
                            "addresses": [
                                {
                                    "address_1": "1 Main St",
                                    "city": "Springfield",
                                    "region": county_fips,
                                    "state_province": "MO",
                                    "postal_code": "65801",
                                }
                            ],
                        }
                    }
                ],
                "phones": [{"number": "573-555-0100"}],
                "attributes": [{"taxonomy_term": {"name": "Mobile crisis"}}],
            }
        ],
    }
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(
            api(system, "referral", "/api/v1/directory/imports"),
            headers=demo_user(system["credentials"], "program-admin").headers(),
            json=package,
        )
    assert answer.status_code == 200, answer.text
    return service_id


async def test_a_liaison_connects_a_person_and_records_barriers(
    system: dict[str, Any], browser: Browser
) -> None:
    county = county_of(LIAISON)
    county_name = MISSOURI_COUNTIES[county]
    service_name = f"Crisis Line {uuid.uuid4().hex[:6]}"
    await import_service(system, county, service_name)
    family = f"Nakamura{uuid.uuid4().hex[:6]}"
    referral = await submit_referral(
        system, LIAISON, family, datetime.now(UTC) - timedelta(hours=3)
    )
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    visit = Visit(page, "supports")
    await sign_in(page, None, system, LIAISON)

    # From the referral's page to the directory, with the referral's county already chosen.
    await page.goto(api(system, "workspace", f"/referrals/{referral['referral_id']}"))
    await page.get_by_role("link", name="Find a treatment or support service").click()
    await expect(page.locator("h1")).to_have_text("Treatment and support services")
    await expect(page.locator("#d-county")).to_have_value(county)
    await page.select_option("#d-type", "crisis")
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("#results-h")).to_contain_text(f"Services in {county_name}")
    listed = page.locator("li.service", has_text=service_name)
    await expect(listed).to_contain_text("573-555-0100")
    await visit.check("directory")
    await listed.get_by_role("button", name=f"connected to {service_name}").click()
    await notice(page, "Connection to the service recorded")
    await expect(page.locator("#connections")).to_contain_text(f"Connected to {service_name}")

    # A barrier met on this referral: its county is the referral's.
    await page.select_option("#barrier-kind", "no_transport")
    await page.get_by_role("button", name="Record barrier").click()
    await notice(page, "Barrier recorded")
    await expect(page.locator("#barriers")).to_contain_text("No transport")
    await visit.check("referral")

    # A question from a court answered without a referral, and a barrier in a county.
    await page.get_by_role("link", name="Consultations and barriers").click()
    await expect(page.locator("h1")).to_have_text("Consultations and barriers")
    await page.select_option("#c-county", county)
    await page.select_option("#c-asked-by", "court")
    await page.select_option("#c-topic", "detention_process")
    # By keyboard: from the date (day, month and year are stops of their own), Tab reaches the
    # form's button and Enter sends it.
    send = page.get_by_role("button", name="Record consultation")
    await page.locator("#c-on").focus()
    for _ in range(4):
        if await send.evaluate("b => b === document.activeElement"):
            break
        await page.keyboard.press("Tab")
    await expect(send).to_be_focused()
    await page.keyboard.press("Enter")
    await notice(page, "Consultation recorded")
    await page.select_option("#b-county", county)
    await page.select_option("#b-kind", "no_bed")
    await page.get_by_role("button", name="Record barrier").click()
    await notice(page, "Barrier recorded")
    await page.select_option("#a-county", county)
    await page.get_by_role("button", name="Show").click()
    consultations = page.locator("table[aria-labelledby=consultations-h] tbody tr")
    await expect(consultations.first).to_contain_text("Detention process")
    barriers = page.locator("table[aria-labelledby=barriers-h] tbody")
    await expect(barriers).to_contain_text("No bed")
    await expect(barriers).to_contain_text("No transport")
    await visit.check("activity")

    # A date in the future is refused with the service's reason, and nothing is recorded.
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    await page.evaluate("document.querySelector('#b-on').removeAttribute('max')")
    await page.fill("#b-on", tomorrow)
    await page.get_by_role("button", name="Record barrier").click()
    await notice(page, "The barrier was not recorded")

    # The same form sent twice (a double click, a resend after a lost answer) stores one record.
    await page.goto(api(system, "workspace", f"/referrals/{referral['referral_id']}"))
    barrier_form = page.locator(f"form[action='/referrals/{referral['referral_id']}/barriers']")
    fields = {
        name: await barrier_form.locator(f"input[name={name}]").input_value()
        for name in ("csrf", "form_key")
    }
    for _ in range(2):
        sent = await page.request.post(
            api(system, "workspace", f"/referrals/{referral['referral_id']}/barriers"),
            form={**fields, "kind": "waitlist", "occurred_on": ""},
            max_redirects=0,
        )
        assert sent.status == 303

    # The service agrees: one connection and two barriers on the referral.
    bearer = demo_user(system["credentials"], LIAISON).headers()
    async with httpx.AsyncClient(timeout=10) as client:
        stored = await client.get(
            api(system, "referral", f"/api/v1/referrals/{referral['referral_id']}"),
            headers=bearer,
        )
        on_referral = await client.get(
            api(system, "referral", "/api/v1/barriers"),
            params={"referral_id": referral["referral_id"]},
            headers=bearer,
        )
    assert [c["service_name"] for c in stored.json()["connections"]] == [service_name]
    assert sorted(b["kind"] for b in on_referral.json()["items"]) == ["no_transport", "waitlist"]
    await context.close()
