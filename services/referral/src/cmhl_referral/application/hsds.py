"""Reading Open Referral HSDS 3.0 packages: a service as HSDS JSON (with its organization,
service_at_locations and their locations and addresses, phones, service_areas and taxonomy
attributes nested), or a CSV package (a zip of the HSDS tables), read into the same JSON first.

Only what the directory keeps is read; every other HSDS field is ignored. A record's errors name
its fields and rules, never its values (servicekit.imports)."""

import csv
import io
import zipfile
import zlib
from collections import defaultdict
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from cmhl_contracts.events import Identifier, ReadableText
from cmhl_referral.domain.directory import (
    DirectoryService,
    InvalidDirectoryRecord,
    Location,
    Organization,
    check_serves_a_county,
    county_fips_of,
    eligibility_of,
    service_areas_counties,
    service_types_of,
)
from cmhl_servicekit.imports import reason_of

MAX_SERVICES: Final = 500
# What a CSV package may hold once unzipped: a bound against a zip that expands without end.
MAX_UNZIPPED_BYTES: Final = 20 * 1024 * 1024
MAX_NESTED: Final = 50

Text = Annotated[str, Field(max_length=200)]
Description = Annotated[str, Field(max_length=2000)]
Url = Annotated[str, Field(max_length=500, pattern=r"^https?://[^\s]+$")]
PhoneNumber = Annotated[str, Field(pattern=r"^[0-9+()\-. ]{3,24}([ ]?(x|ext\.?) ?[0-9]{1,6})?$")]
Age = Annotated[float, Field(ge=0, le=130)]


class _Hsds(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class HsdsOrganization(_Hsds):
    id: Identifier
    name: ReadableText


class HsdsAddress(_Hsds):
    address_1: Text | None = None
    city: Text | None = None
    region: Text | None = Field(default=None, description="The county: its FIPS code or name")
    state_province: Text | None = None
    postal_code: Annotated[str, Field(max_length=16)] | None = None
    address_type: Annotated[str, Field(pattern=r"^(physical|postal|virtual)$")] = "physical"


class HsdsLocation(_Hsds):
    id: Identifier
    name: ReadableText | None = None
    addresses: Annotated[list[HsdsAddress], Field(max_length=MAX_NESTED)] = []


class HsdsServiceAtLocation(_Hsds):
    id: Identifier | None = None
    location: HsdsLocation


class HsdsPhone(_Hsds):
    number: PhoneNumber


class HsdsServiceArea(_Hsds):
    name: Text | None = None
    extent: Text | None = None
    extent_type: Text | None = None


class HsdsTaxonomyTerm(_Hsds):
    code: Text | None = None
    name: Text | None = None
    taxonomy: Text | None = None


class HsdsAttribute(_Hsds):
    taxonomy_term: HsdsTaxonomyTerm


class HsdsService(_Hsds):
    """One HSDS 3.0 service with what it links to, nested."""

    id: Identifier
    name: ReadableText
    description: Description | None = None
    url: Url | None = None
    status: Annotated[str, Field(pattern=r"^(active|inactive|defunct|temporarily closed)$")] = (
        "active"
    )
    minimum_age: Age | None = None
    maximum_age: Age | None = None
    organization: HsdsOrganization
    service_at_locations: Annotated[list[HsdsServiceAtLocation], Field(max_length=MAX_NESTED)] = []
    phones: Annotated[list[HsdsPhone], Field(max_length=MAX_NESTED)] = []
    service_areas: Annotated[list[HsdsServiceArea], Field(max_length=MAX_NESTED)] = []
    attributes: Annotated[list[HsdsAttribute], Field(max_length=MAX_NESTED)] = []


_SERVICE = TypeAdapter(HsdsService)


def read_service(raw: dict[str, Any]) -> DirectoryService:
    """The directory's service from one HSDS service record. Raises InvalidDirectoryRecord with
    the field and the rule it broke."""
    try:
        record = _SERVICE.validate_python(raw)
    except ValidationError as exc:
        raise InvalidDirectoryRecord(reason_of(exc)) from exc
    terms = [a.taxonomy_term for a in record.attributes]
    return check_serves_a_county(
        DirectoryService(
            id=record.id,
            name=record.name,
            description=record.description,
            organization=Organization(record.organization.id, record.organization.name),
            service_types=service_types_of([(t.taxonomy, t.code, t.name) for t in terms]),
            eligibility=eligibility_of(
                [(t.taxonomy, t.code) for t in terms], record.minimum_age, record.maximum_age
            ),
            locations=tuple(
                _location(index, link.location)
                for index, link in enumerate(record.service_at_locations)
            ),
            phones=tuple(dict.fromkeys(p.number for p in record.phones)),
            url=record.url,
            area_counties=service_areas_counties(
                [
                    (area.name, area.extent if area.extent_type == "text" else None)
                    for area in record.service_areas
                ]
            ),
            active=record.status == "active",
        )
    )


def _location(index: int, location: HsdsLocation) -> Location:
    physical = next((a for a in location.addresses if a.address_type == "physical"), None)
    if physical is None:
        return Location(location.id, location.name, None, None)
    county = None
    if physical.region is not None:
        county = county_fips_of(physical.region)
        if county is None:
            raise InvalidDirectoryRecord(
                f"service_at_locations.{index}.location.addresses: `region` names no Missouri "
                "county (give its FIPS code or name)"
            )
    parts = [physical.address_1, physical.city]
    state = " ".join(p for p in (physical.state_province, physical.postal_code) if p)
    address = ", ".join(p for p in (*parts, state) if p) or None
    return Location(location.id, location.name, address, county)


class InvalidPackage(ValueError):
    """The package as a whole cannot be read (not a zip, no services table, too large)."""


# HSDS's CSV tables this reader joins; any other table in the package is ignored.
TABLES: Final = (
    "services",
    "organizations",
    "locations",
    "service_at_locations",
    "addresses",
    "phones",
    "service_areas",
    "attributes",
    "taxonomy_terms",
)

Row = dict[str, str]


def csv_package_records(package: bytes) -> list[dict[str, Any]]:
    """The services of an HSDS CSV package (a zip of its tables), each as HSDS JSON with its
    linked rows nested, in the order of services.csv. Empty cells are absent fields."""
    tables = _tables(package)
    if "services" not in tables:
        raise InvalidPackage("the package has no services.csv")
    if len(tables["services"]) > MAX_SERVICES:
        raise InvalidPackage(f"the package has more than {MAX_SERVICES} services")
    organizations = {row["id"]: row for row in tables.get("organizations", []) if "id" in row}
    terms = {row["id"]: row for row in tables.get("taxonomy_terms", []) if "id" in row}
    addresses = _by(tables, "addresses", "location_id")
    locations = {
        row["id"]: row | {"addresses": addresses.get(row["id"], [])}
        for row in tables.get("locations", [])
        if "id" in row
    }
    links = _by(tables, "service_at_locations", "service_id")
    phones = _by(tables, "phones", "service_id")
    areas = _by(tables, "service_areas", "service_id")
    attributes = _by(tables, "attributes", "link_id")
    records = []
    for service in tables["services"]:
        service_id = service.get("id", "")
        record: dict[str, Any] = dict(service)
        if (organization := organizations.get(service.get("organization_id", ""))) is not None:
            record["organization"] = organization
        record["service_at_locations"] = [
            link
            | (
                {"location": locations[link["location_id"]]}
                if link.get("location_id") in locations
                else {}
            )
            for link in links.get(service_id, [])
        ]
        record["phones"] = phones.get(service_id, [])
        record["service_areas"] = areas.get(service_id, [])
        record["attributes"] = [
            attribute | {"taxonomy_term": terms.get(attribute.get("taxonomy_term_id", ""), {})}
            for attribute in attributes.get(service_id, [])
            if attribute.get("link_type", "service") == "service"
        ]
        records.append(record)
    return records


def _by(tables: dict[str, list[Row]], table: str, column: str) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = defaultdict(list)
    for row in tables.get(table, []):
        if column in row:
            grouped[row[column]].append(row)
    return grouped


def _tables(package: bytes) -> dict[str, list[Row]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(package))
    except zipfile.BadZipFile as exc:
        raise InvalidPackage("the package is not a zip file") from exc
    with archive:
        members = {
            info.filename.rsplit("/", 1)[-1].removesuffix(".csv"): info
            for info in archive.infolist()
            if info.filename.endswith(".csv") and not info.is_dir()
        }
        wanted = {name: info for name, info in members.items() if name in TABLES}
        if sum(info.file_size for info in wanted.values()) > MAX_UNZIPPED_BYTES:
            raise InvalidPackage("the package's tables exceed 20 MiB unzipped")
        tables = {}
        for name, info in wanted.items():
            try:
                text = archive.read(info).decode("utf-8-sig")
            # A corrupt member, an encrypted one, or text that is not UTF-8.
            except (
                UnicodeDecodeError,
                zipfile.BadZipFile,
                RuntimeError,
                EOFError,
                zlib.error,
            ) as exc:
                raise InvalidPackage(f"{name}.csv is not readable UTF-8 CSV") from exc
            try:
                rows = list(csv.DictReader(io.StringIO(text)))
            except csv.Error as exc:
                raise InvalidPackage(f"{name}.csv is not readable UTF-8 CSV") from exc
            # An empty cell is an absent field: HSDS's CSV has no other way to say none.
            tables[name] = [
                {k: v for k, v in row.items() if isinstance(k, str) and v not in (None, "")}
                for row in rows
            ]
    return tables
