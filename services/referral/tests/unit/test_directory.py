"""The treatment directory: HSDS JSON and CSV packages read into services, each record checked on
its own with a reason that never quotes it; counties from locations and service areas; service
types from taxonomy terms; search keys; a re-import that stores nothing twice."""

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from cmhl_contracts import IntegrationEvent
from cmhl_contracts.directory import ReferralConnectedToServiceV1, ServiceType
from cmhl_referral.application.directory import Directory, Stored, UnknownService, sort_name
from cmhl_referral.application.hsds import InvalidPackage, csv_package_records, read_service
from cmhl_referral.application.service import Actor, NotAllowed, NotVisible
from cmhl_referral.domain.directory import (
    Connection,
    DirectoryService,
    Eligibility,
    InvalidDirectoryRecord,
    county_fips_of,
    search_key,
)
from cmhl_servicekit.auth import Principal, Role
from cmhl_servicekit.clock import AdjustableClock, SystemClock

from .test_service import NOW, Parts, command, liaison, parts  # noqa: F401  (the fixture)

ADMIN = Actor(Principal("admin-1", frozenset({Role.PROGRAM_ADMIN}), None), None, None)
LIAISON = Actor(Principal("liaison-01", frozenset({Role.LIAISON}), "cmhc-01"), None, None)
DEMO_PACKAGE = Path(__file__).parents[4] / "deploy" / "local" / "data" / "directory_hsds.json"
METRICS = Actor(Principal("dmh-1", frozenset({Role.METRICS_CONSUMER}), None), None, None)


def hsds_service(service_id: str = "svc-1", **overrides: Any) -> dict[str, Any]:
    """One HSDS 3.0 service, nested as the JSON package carries it."""
    return {
        "id": service_id,
        "name": "Crisis Stabilization Center",
        "description": "Walk-in crisis care, open all hours.",
        "url": "https://example.org/crisis",
        "status": "active",
        "minimum_age": 18,
        "organization": {"id": "org-1", "name": "Example Behavioral Health"},
        "service_at_locations": [
            {
                "id": "sal-1",
                "location": {
                    "id": "loc-1",
                    "name": "Main clinic",
                    "addresses": [
                        {
                            "address_1": "1 Main St",
                            "city": "Kansas City",
                            "region": "Jackson County",
                            "state_province": "MO",
                            "postal_code": "64106",
                            "country": "US",
                            "address_type": "physical",
                        }
                    ],
                },
            }
        ],
        "phones": [{"id": "ph-1", "number": "816-555-0100"}],
        "service_areas": [{"id": "sa-1", "name": "Clay"}],
        "attributes": [
            {
                "id": "at-1",
                "taxonomy_term": {
                    "id": "tt-1",
                    "code": "crisis",
                    "name": "Crisis",
                    "taxonomy": "cmhl_service_type",
                },
            },
            {
                "id": "at-2",
                "taxonomy_term": {"id": "tt-2", "name": "Peer Support Services"},
            },
            {
                "id": "at-3",
                "taxonomy_term": {"id": "tt-3", "code": "medicaid", "taxonomy": "cmhl_eligibility"},
            },
        ],
    } | overrides


def test_a_service_is_read_with_its_counties_types_and_eligibility() -> None:
    service = read_service(hsds_service())
    assert service.counties == ("29047", "29095")
    assert service.service_types == (ServiceType.CRISIS, ServiceType.PEER_SUPPORT)
    assert service.eligibility == (Eligibility.ADULTS, Eligibility.MEDICAID)
    assert service.locations[0].address == "1 Main St, Kansas City, MO 64106"
    assert service.locations[0].county_fips == "29095"
    assert service.phones == ("816-555-0100",)
    assert "29095|crisis" in service.search_keys()
    assert "*|peer_support" in service.search_keys()
    assert "29047|*" in service.search_keys()
    assert "29019|crisis" not in service.search_keys()


def test_counties_are_named_by_fips_or_name_and_statewide_covers_all() -> None:
    assert county_fips_of("29095") == "29095"
    assert county_fips_of(" jackson  county ") == "29095"
    assert county_fips_of("Saint Louis") == "29189"
    assert county_fips_of("City of St. Louis") == "29510"
    assert county_fips_of("Ste Genevieve") == "29186"
    assert county_fips_of("Cook County") is None
    statewide = read_service(hsds_service(service_areas=[{"name": "Statewide"}]))
    assert len(statewide.counties) == 115


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"attributes": []}, "attributes: no taxonomy term maps to a service type"),
        ({"service_areas": [{"name": "Cook County, IL"}]}, "service_areas.0: names no Missouri"),
        (
            {"service_areas": [], "service_at_locations": []},
            "the service serves no Missouri county",
        ),
        ({"phones": [{"number": "call Jane Doe"}]}, "phones.0.number"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"name": ""}, "name"),
        ({"minimum_age": 30, "maximum_age": 20}, "minimum_age is above maximum_age"),
        ({"organization": None}, "organization"),
    ],
)
def test_a_record_breaking_a_rule_is_refused_naming_the_rule_not_the_values(
    change: dict[str, Any], rule: str
) -> None:
    with pytest.raises(InvalidDirectoryRecord) as refused:
        read_service(hsds_service(**change))
    assert rule in str(refused.value)
    for value in ("Jane Doe", "Cook County", "javascript"):
        assert value not in str(refused.value)


def test_a_location_whose_region_is_no_missouri_county_is_refused() -> None:
    record = hsds_service()
    record["service_at_locations"][0]["location"]["addresses"][0]["region"] = "Johnson, KS"
    with pytest.raises(InvalidDirectoryRecord, match="`region` names no Missouri county"):
        read_service(record)


def test_an_inactive_service_is_found_by_no_search() -> None:
    assert read_service(hsds_service(status="inactive")).search_keys() == []


def _zip(tables: dict[str, list[dict[str, str]]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, rows in tables.items():
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
            archive.writestr(f"hsds/{name}.csv", text.getvalue())
    return buffer.getvalue()


def csv_package() -> bytes:
    return _zip(
        {
            "organizations": [{"id": "org-9", "name": "Boone Recovery"}],
            "services": [
                {
                    "id": "svc-9",
                    "organization_id": "org-9",
                    "name": "Outpatient Recovery",
                    "description": "",
                    "url": "",
                    "status": "active",
                    "minimum_age": "",
                    "maximum_age": "17",
                }
            ],
            "locations": [{"id": "loc-9", "name": "Columbia office"}],
            "service_at_locations": [
                {"id": "sal-9", "service_id": "svc-9", "location_id": "loc-9"}
            ],
            "addresses": [
                {
                    "id": "ad-9",
                    "location_id": "loc-9",
                    "address_1": "9 Elm St",
                    "city": "Columbia",
                    "region": "29019",
                    "state_province": "MO",
                    "postal_code": "65201",
                    "address_type": "physical",
                }
            ],
            "phones": [{"id": "ph-9", "service_id": "svc-9", "number": "573-555-0199"}],
            "service_areas": [{"id": "sa-9", "service_id": "svc-9", "name": "Howard"}],
            "taxonomy_terms": [
                {"id": "tt-9", "code": "substance_use", "taxonomy": "cmhl_service_type", "name": ""}
            ],
            "attributes": [
                {
                    "id": "at-9",
                    "link_id": "svc-9",
                    "link_type": "service",
                    "taxonomy_term_id": "tt-9",
                }
            ],
        }
    )


def test_a_csv_package_is_joined_into_the_same_services() -> None:
    [record] = csv_package_records(csv_package())
    service = read_service(record)
    assert service.organization.name == "Boone Recovery"
    assert service.counties == ("29019", "29089")
    assert service.service_types == (ServiceType.SUBSTANCE_USE,)
    assert service.eligibility == (Eligibility.YOUTH,)
    assert service.description is None
    assert service.locations[0].address == "9 Elm St, Columbia, MO 65201"


def test_a_package_that_is_no_zip_or_has_no_services_is_refused_whole() -> None:
    with pytest.raises(InvalidPackage, match="not a zip"):
        csv_package_records(b"id,name\n1,x\n")
    with pytest.raises(InvalidPackage, match=r"no services\.csv"):
        csv_package_records(_zip({"organizations": [{"id": "o", "name": "n"}]}))


class InMemoryDirectory:
    def __init__(self) -> None:
        self.services: dict[str, tuple[str, DirectoryService]] = {}
        self.connections: dict[tuple[str, str], Connection] = {}
        self.events: list[IntegrationEvent] = []

    async def store(self, service: DirectoryService, system: str) -> Stored:
        existing = self.services.get(service.id)
        if existing is not None and existing[0] != system:
            return Stored.HELD_ELSEWHERE
        self.services[service.id] = (system, service)
        if existing is None:
            return Stored.IMPORTED
        return Stored.UNCHANGED if existing[1] == service else Stored.UPDATED

    async def get(self, service_id: str) -> DirectoryService | None:
        found = self.services.get(service_id)
        return found[1] if found else None

    async def search(
        self, key: str, after: tuple[str, str] | None, limit: int
    ) -> list[DirectoryService]:
        found = sorted(
            (s for _, s in self.services.values() if key in s.search_keys()),
            key=lambda s: (sort_name(s), s.id),
        )
        return [s for s in found if after is None or (sort_name(s), s.id) > after][:limit]

    async def add_connection(self, connection: Connection, events: list[IntegrationEvent]) -> bool:
        key = (connection.referral_id, connection.service_id)
        if key in self.connections:
            return False
        self.connections[key] = connection
        self.events.extend(events)
        return True

    async def connection(self, referral_id: str, service_id: str) -> Connection | None:
        return self.connections.get((referral_id, service_id))

    async def connections_of(self, referral_id: str) -> list[Connection]:
        return [c for (r, _), c in self.connections.items() if r == referral_id]


def directory(repository: InMemoryDirectory) -> Directory:
    return Directory(repository, None, SystemClock())  # type: ignore[arg-type]


async def test_a_reimport_stores_nothing_twice_and_updates_what_changed() -> None:
    repository = InMemoryDirectory()
    records = [hsds_service("svc-1"), hsds_service("svc-2", name="Mobile Crisis Team")]
    first = await directory(repository).import_services("mo-211", records, ADMIN)
    assert (first.imported, first.updated, first.already_imported) == (2, 0, 0)
    records[1] = hsds_service("svc-2", name="Mobile Crisis Team (24/7)")
    bad = hsds_service("svc-3", phones=[{"number": "Jane Roe"}])
    again = await directory(repository).import_services("mo-211", [*records, bad], ADMIN)
    assert (again.imported, again.updated, again.already_imported) == (0, 1, 1)
    assert [(r.index, r.record_id) for r in again.rejected] == [(2, "svc-3")]
    assert "Jane Roe" not in again.rejected[0].reason
    other = await directory(repository).import_services("other", [hsds_service("svc-1")], ADMIN)
    assert "another system" in other.rejected[0].reason
    assert len(repository.services) == 2


async def test_only_a_program_admin_imports_and_only_staff_search() -> None:
    repository = InMemoryDirectory()
    with pytest.raises(NotAllowed):
        await directory(repository).import_services("mo-211", [hsds_service()], LIAISON)
    await directory(repository).import_services(
        "mo-211",
        [hsds_service(f"svc-{n}", name=f"Service {n}") for n in range(5)]
        + [hsds_service("svc-x", service_areas=[], attributes=[_type("housing")])],
        ADMIN,
    )
    with pytest.raises(NotAllowed):
        await directory(repository).search("29095", None, None, 10, METRICS)
    first = await directory(repository).search("29047", ServiceType.CRISIS, None, 3, LIAISON)
    assert [s.id for s in first.services] == ["svc-0", "svc-1", "svc-2"]
    assert first.last == ("service 2", "svc-2")
    rest = await directory(repository).search("29047", ServiceType.CRISIS, first.last, 3, LIAISON)
    assert [s.id for s in rest.services] == ["svc-3", "svc-4"]
    assert rest.last is None
    housing = await directory(repository).search("29095", ServiceType.HOUSING, None, 10, LIAISON)
    assert [s.id for s in housing.services] == ["svc-x"]
    assert search_key(None, None) == "*|*"


def _type(code: str) -> dict[str, Any]:
    return {"taxonomy_term": {"code": code, "taxonomy": "cmhl_service_type"}}


def test_the_demo_package_is_valid_hsds_for_the_directory() -> None:
    """The illustrative package `make up` imports (deploy/local/data/directory_hsds.json)."""
    package = json.loads(DEMO_PACKAGE.read_text())
    services = [read_service(record) for record in package["records"]]
    assert len({s.id for s in services}) == len(services) >= 10
    assert {t for s in services for t in s.service_types} == set(ServiceType)
    statewide = [s for s in services if len(s.counties) == 115]
    assert [s.name for s in statewide] == ["Statewide Crisis Line"]


async def test_a_connection_is_recorded_once_with_its_event_and_audited(parts: Parts) -> None:  # noqa: F811
    referrals, _, audit, _ = parts
    owner, stranger = liaison("liaison-05"), liaison("liaison-09", "cmhc-09")
    referral = (await referrals.create(command("REF-77"), owner)).referral
    repository = InMemoryDirectory()
    await directory(repository).import_services(
        "mo-211", [hsds_service("svc-1"), hsds_service("svc-2", status="inactive")], ADMIN
    )
    connecting = Directory(repository, referrals, AdjustableClock(NOW))

    first, created = await connecting.connect(referral.referral_id, "svc-1", owner, "c-1")
    again, created_again = await connecting.connect(referral.referral_id, "svc-1", owner, "c-2")
    assert (created, created_again) == (True, False)
    assert again == first
    assert (first.connected_by, first.connected_at) == ("liaison-05", NOW)
    [event] = repository.events
    assert isinstance(event, ReferralConnectedToServiceV1)
    assert (event.referral_id, event.service_id, event.person_id) == (
        referral.referral_id,
        "svc-1",
        referral.person_id,
    )
    assert event.service_types == [ServiceType.CRISIS, ServiceType.PEER_SUPPORT]
    assert event.kafka_key() == str(referral.referral_id).encode()

    for service_id in ("svc-none", "svc-2"):
        with pytest.raises(UnknownService):
            await connecting.connect(referral.referral_id, service_id, owner, "c-3")
    with pytest.raises(NotVisible):
        await connecting.connect(referral.referral_id, "svc-1", stranger, "c-4")
    outcomes = [(e.actor, e.outcome) for e in audit.entries if e.action == "connect_service"]
    assert outcomes == [
        ("liaison-05", "changed"),
        ("liaison-05", "unchanged"),
        ("liaison-05", "refused"),
        ("liaison-05", "refused"),
        ("liaison-09", "denied"),
    ]
    assert await connecting.connections_of(referral.referral_id) == [first]
