"""The workspace's pages, timed on a stack holding a given history.

    python -m bench.workspace_pages --state-dir DIR --size LABEL [--samples 100]

Against a running stack with its services (`make up`, or a stack loaded with
`deploy/local/demo.py`): demo liaisons and the supervisor sign in through Keycloak's form in
Debian's Chromium (as people do), then each page is asked for one request at a time, as a person
waits for it, by a random one of the signed-in liaisons: the caseload, the caseload filtered by
status, a search by family name, a referral (ids and names taken from the caseload pages), the
follow-ups, the bed searches, the trainings, the intake form; and the supervisor's team page.
Each page's figure is the server time the workspace reports (`Server-Timing: app`, the services'
answers included) as p50/p95/p99 in milliseconds, beside the time the client saw. The baseline in
the same run: the referral service's own caseload answer, the call the caseload page is built on.
Results go into bench/results/workspace_pages.json under LABEL, with the referrals held.
"""

import argparse
import asyncio
import os
import random
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import async_playwright

from bench.common import Sampler, Stack, latency_summary_ms, load_stack, record_size, say

LIAISONS = [f"liaison-{n:02d}" for n in (1, 5, 9, 14, 18, 22, 27, 31)]
SUPERVISOR = "supervisor-01"
COOKIE = "__Host-cmhl_session"
LINK = re.compile(r'href="/referrals/([0-9a-f-]{36})">([^<,]+),')


async def sign_in_all(stack: Stack, usernames: list[str]) -> dict[str, str]:
    """Each user's workspace session id, from a real sign-in at the identity provider's form."""
    executable = os.environ.get("CMHL_CHROMIUM") or shutil.which("chromium") or "chromium"
    base = stack.url("workspace")
    sessions: dict[str, str] = {}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking"],
        )
        for username in usernames:
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(f"{base}/intake")
            await page.fill("input[name=username]", username)
            password = next(u for u in stack.creds["users"] if u["username"] == username)
            await page.fill("input[name=password]", password["password"])
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"{base}/intake")
            [cookie] = [c for c in await context.cookies() if c["name"] == COOKIE]
            sessions[username] = cookie["value"]
            await context.close()
        await browser.close()
    return sessions


async def measure(stack: Stack, samples: int) -> dict[str, Any]:
    base = stack.url("workspace")
    sessions = await sign_in_all(stack, [*LIAISONS, SUPERVISOR])
    rng = random.Random(11)
    # (liaison, referral id, family name) seen on caseload pages, for the referral and search pages.
    seen: list[tuple[str, str, str]] = []

    def cookie(user: str) -> dict[str, str]:
        # Set by hand: the cookie is Secure, and httpx keeps those for https only.
        return {"Cookie": f"{COOKIE}={sessions[user]}"}

    async def page(client: httpx.AsyncClient, user: str, path: str) -> tuple[float, str]:
        answer = await client.get(f"{base}{path}", headers=cookie(user))
        if answer.status_code != 200:
            raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text[:300]}")
        timing = re.search(r"app;dur=([0-9.]+)", answer.headers.get("server-timing", ""))
        if timing is None:
            raise RuntimeError(f"{path} has no Server-Timing header")
        return float(timing.group(1)) / 1000, answer.text

    def liaison() -> str:
        return rng.choice(LIAISONS)

    async def caseload(client: httpx.AsyncClient) -> float:
        user = liaison()
        seconds, html = await page(client, user, "/caseload")
        seen.extend((user, rid, name.strip()) for rid, name in LINK.findall(html)[:5])
        return seconds

    async def caseload_filtered(client: httpx.AsyncClient) -> float:
        status = rng.choice(["received", "accepted", "appointment_scheduled"])
        return (await page(client, liaison(), f"/caseload?status={status}"))[0]

    async def name_search(client: httpx.AsyncClient) -> float:
        user, _, family = rng.choice(seen)
        return (await page(client, user, f"/caseload?name={family}"))[0]

    async def referral(client: httpx.AsyncClient) -> float:
        user, referral_id, _ = rng.choice(seen)
        return (await page(client, user, f"/referrals/{referral_id}"))[0]

    def simple(
        path: str, user: Callable[[], str]
    ) -> Callable[[httpx.AsyncClient], Awaitable[float]]:
        async def one(client: httpx.AsyncClient) -> float:
            return (await page(client, user(), path))[0]

        return one

    tokens = {user: {"Authorization": f"Bearer {stack.token(user)}"} for user in LIAISONS}

    async def api_caseload(client: httpx.AsyncClient) -> float:
        started = time.perf_counter()
        answer = await client.get(
            f"{stack.url('referral')}/api/v1/referrals",
            params={"limit": 25},
            headers=tokens[liaison()],
        )
        answer.raise_for_status()
        return time.perf_counter() - started

    pages: list[tuple[str, Callable[[httpx.AsyncClient], Awaitable[float]]]] = [
        ("caseload", caseload),
        ("caseload_filtered", caseload_filtered),
        ("name_search", name_search),
        ("referral", referral),
        ("follow_ups", simple("/follow-ups", liaison)),
        ("bed_searches", simple("/placements", liaison)),
        ("trainings", simple("/trainings", liaison)),
        ("intake", simple("/intake", liaison)),
        ("team", simple("/team", lambda: SUPERVISOR)),
        ("baseline_referral_api_caseload", api_caseload),
    ]
    figures: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=60) as client:
        for name, request in pages:
            for _ in range(5):  # warm-up: connections, plans, caches
                await request(client)
            server: list[float] = []
            seen_by_client: list[float] = []
            load_before = Sampler.load()
            for _ in range(samples):
                started = time.perf_counter()
                server.append(await request(client))
                seen_by_client.append(time.perf_counter() - started)
            figures[name] = {
                "server_ms": latency_summary_ms(server),
                "client_ms": latency_summary_ms(seen_by_client),
                "load_avg_1m": round((load_before + Sampler.load()) / 2, 2),
            }
            say(f"{name}: server {figures[name]['server_ms']}")
        metrics = await client.get(
            f"{stack.url('reporting')}/api/v1/metrics/statewide",
            params={"period": "all"},
            # Everything held, the running quarter included: a role that may see records.
            headers={"Authorization": f"Bearer {stack.token('privacy-officer')}"},
        )
        figures["referrals_held"] = metrics.json()["referrals"]["total"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--size", required=True, help="label: demo, 10k, full, ...")
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    stack = load_stack(args.state_dir.resolve())
    figures = asyncio.run(measure(stack, args.samples))
    record_size("workspace_pages", args.size, figures, args.samples)


if __name__ == "__main__":
    main()
