"""The demo's consultations and barriers: illustrative records (made up, not the program's
figures) posted through the referral service's API by the demo liaisons, dated over the last
60 days (the most a record may be entered late). Each carries an Idempotency-Key derived from
the day and its place in the run, so re-running the demo stores nothing twice."""

import asyncio
import random
from datetime import date, timedelta
from typing import Protocol

import httpx

from cmhl_contracts.activity import LATE_ENTRY_DAYS, BarrierKind, ConsultationTopic
from cmhl_contracts.counties import MISSOURI_COUNTIES

ASKED_BY = [("municipal_police", 70), ("sheriff", 15), ("court", 12), ("other", 3)]
LIAISONS = [f"liaison-{n:02d}" for n in range(1, 32)]


class SignIns(Protocol):
    def headers(self, username: str) -> dict[str, str]: ...


def _weighted(rng: random.Random, choices: list[tuple[str, int]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


async def record_activity(
    base_url: str, people: SignIns, today: date, consultations: int = 300, barriers: int = 120
) -> int:
    """Posts the records; returns how many were new (a re-run on the same day finds them all)."""
    rng = random.Random(f"activity-{today.isoformat()}")  # noqa: S311 - made-up demo data
    counties = sorted(MISSOURI_COUNTIES)
    bodies: list[tuple[str, str, str, dict[str, str]]] = []
    for n in range(consultations):
        day = today - timedelta(days=rng.randrange(LATE_ENTRY_DAYS))
        body = {
            "county_fips": rng.choice(counties[:40]),
            "occurred_on": day.isoformat(),
            "asked_by": _weighted(rng, ASKED_BY),
            "topic": rng.choice(list(ConsultationTopic)).value,
        }
        bodies.append(("/api/v1/consultations", rng.choice(LIAISONS), f"demo-c-{today}-{n}", body))
    for n in range(barriers):
        day = today - timedelta(days=rng.randrange(LATE_ENTRY_DAYS))
        body = {
            "county_fips": rng.choice(counties[:40]),
            "occurred_on": day.isoformat(),
            "kind": rng.choice(list(BarrierKind)).value,
        }
        bodies.append(("/api/v1/barriers", rng.choice(LIAISONS), f"demo-b-{today}-{n}", body))
    created = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        for chunk in range(0, len(bodies), 20):
            answers = await asyncio.gather(
                *(
                    client.post(
                        path,
                        json=body,
                        headers=people.headers(liaison) | {"Idempotency-Key": key},
                    )
                    for path, liaison, key, body in bodies[chunk : chunk + 20]
                )
            )
            for answer in answers:
                if answer.status_code not in (200, 201):
                    raise RuntimeError(
                        f"activity refused: {answer.status_code} {answer.text[:300]}"
                    )
                created += answer.status_code == 201
    return created
