"""The demo's treatment directory: an illustrative HSDS 3.0 package (deploy/local/data/
directory_hsds.json, a few Missouri counties; no real provider) imported through the referral
service's API as the program admin, as an admin would load a real one. A re-run stores nothing
twice (each service keeps its HSDS id)."""

import json
from pathlib import Path
from typing import Any, Protocol

import httpx

PACKAGE = Path(__file__).resolve().parent / "data" / "directory_hsds.json"


class SignIns(Protocol):
    def headers(self, username: str) -> dict[str, str]: ...


async def import_directory(base_url: str, people: SignIns, admin: str) -> dict[str, Any]:
    """Posts the package; returns the import's answer (imported, updated, unchanged, rejected).
    Raises if the service refuses the package or any record of it."""
    package = json.loads(PACKAGE.read_text())
    body = {"system": package["system"], "records": package["records"]}
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        response = await client.post(
            "/api/v1/directory/imports", json=body, headers=people.headers(admin)
        )
    if response.status_code != 200:
        raise RuntimeError(
            f"directory import refused: {response.status_code} {response.text[:300]}"
        )
    result: dict[str, Any] = response.json()
    if result["rejected"]:
        raise RuntimeError(f"directory records rejected: {result['rejected']}")
    return result
