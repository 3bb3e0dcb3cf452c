"""The demo's facilities (cmhl_placement.domain.demo: fictional hospitals in real Missouri
counties), registered through the placement service's registry API as the program admin, as an
admin would enter real ones. A re-run stores nothing twice: the service answers a repeated
registration with the first (200).

Compose's demo image holds no placement package: there the placement service lists the same
facilities itself (CMHL_PLACEMENT_SEED_DEMO_FACILITIES), and this step is skipped."""

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx

if TYPE_CHECKING:
    from cmhl_placement.domain.registry import FacilityRecord

# Where the placement service answers, when not in the local stack's state folder.
URL_ENV = "CMHL_DEMO_PLACEMENT_URL"


class SignIns(Protocol):
    def headers(self, username: str) -> dict[str, str]: ...


def placement_url(state_dir: Path) -> str | None:
    if url := os.environ.get(URL_ENV):
        return url
    stack_file = state_dir / "stack.json"
    if not stack_file.exists():
        return None
    stack: dict[str, Any] = json.loads(stack_file.read_text())
    return f"http://127.0.0.1:{stack['service_ports']['placement']}"


def body(record: "FacilityRecord") -> dict[str, Any]:
    """The registry API's body of a demo record (POST /api/v1/facilities)."""
    return {
        "facility_id": record.facility_id,
        "name": record.name,
        "county_fips": record.county_fips,
        "phone": record.phone,
        "contact_email": record.contact_email,
        "medical_clearance_required": record.medical_clearance_required,
        "units": [
            {
                "unit_type": u.unit_type.value,
                "capacity": u.capacity,
                "available": u.available,
                "patient_types": sorted(u.patient_types),
                "involuntary_holds": u.involuntary_holds,
                "security_level": u.security_level.value,
                "exclusions": sorted(u.exclusions),
            }
            for u in record.units
        ],
    }


async def load_facilities(state_dir: Path, people: SignIns, admin: str) -> int:
    """Registers every demo facility; returns how many were new. Raises if the service refuses
    one (a 409 means an admin changed its settings since: left as it is)."""
    url = placement_url(state_dir)
    try:
        from cmhl_placement.domain.demo import DEMO_FACILITIES
    except ImportError:
        url = None
    if url is None:
        print("[demo] facilities: no placement service here to register them with; skipped")
        return 0
    new = 0
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for record in DEMO_FACILITIES:
            response = await client.post(
                "/api/v1/facilities", json=body(record), headers=people.headers(admin)
            )
            if response.status_code == 201:
                new += 1
            elif response.status_code not in (200, 409):
                raise SystemExit(
                    f"[demo] facility {record.facility_id} refused: {response.status_code} "
                    f"{response.text[:300]}"
                )
    print(f"[demo] facilities: {new} registered, {len(DEMO_FACILITIES) - new} there before")
    return new
