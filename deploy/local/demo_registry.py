"""The demo's registry of CMHCs and liaisons (deploy/local/data/registry_illustrative.json),
loaded through the referral service's API as the program admin, as an admin would enter a real
one. ILLUSTRATIVE: no public source giving each Missouri CMHC's counties turned up, so it is the
platform's default table (31 liaisons of 25 CMHCs over the counties in FIPS order), which keeps
the demo sign-ins (liaison-NN and their `cmhc` claims in keycloak/cmhl-realm.json) and the
referrals they see as they were. A re-run stores nothing twice: a record already registered
(409) is left as it is."""

import json
from pathlib import Path
from typing import Any, Protocol

import httpx

REGISTRY = Path(__file__).resolve().parent / "data" / "registry_illustrative.json"


class SignIns(Protocol):
    def headers(self, username: str) -> dict[str, str]: ...


async def load_registry(base_url: str, people: SignIns, admin: str) -> tuple[int, int]:
    """Registers every CMHC, then every liaison; returns how many of each were new. Raises if
    the service refuses one for any reason but its being registered already."""
    registry: dict[str, Any] = json.loads(REGISTRY.read_text())
    since = registry["effective_from"]
    new = {"cmhcs": 0, "liaisons": 0}
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        for kind in ("cmhcs", "liaisons"):
            for record in registry[kind]:
                response = await client.post(
                    f"/api/v1/{kind}",
                    json=record | {"effective_from": since},
                    headers=people.headers(admin),
                )
                if response.status_code == 201:
                    new[kind] += 1
                elif not (
                    response.status_code == 409 and "is registered" in response.json()["detail"]
                ):
                    raise RuntimeError(
                        f"registry record refused: {response.status_code} {response.text[:300]}"
                    )
    return new["cmhcs"], new["liaisons"]
