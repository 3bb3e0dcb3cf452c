"""MongoDB adapters: referrals (with their embedded outbox) and the append-only audit log."""

import uuid
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cmhl_contracts import IntegrationEvent
from cmhl_contracts.vocabulary import (
    CourtType,
    PersonLocation,
    PresentingNeed,
    ReferralSource,
    ReferralStatus,
)
from cmhl_referral.application.ports import AuditEntry
from cmhl_referral.domain.referral import Assignment, Part2Consent, Person, Referral
from cmhl_servicekit.crypto import FieldCipher
from cmhl_servicekit.outbox import AggregateLocks, outbox_entry

Document = dict[str, Any]

REFERRALS = "referrals"
AUDIT_LOG = "audit_log"


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[REFERRALS].create_index([("person_id", 1), ("referred_at", 1)])
    await db[REFERRALS].create_index([("liaison_id", 1), ("received_at", -1)])
    await db[REFERRALS].create_index([("cmhc_id", 1), ("received_at", -1)])
    await db[REFERRALS].create_index("outbox_pending")
    await db[AUDIT_LOG].create_index([("person_id", 1), ("at", 1)])


class MongoReferralRepository:
    """Clear identifiers and the narrative are stored encrypted, bound to the referral id."""

    def __init__(
        self, db: AsyncDatabase[Document], cipher: FieldCipher, locks: AggregateLocks
    ) -> None:
        self._referrals = db[REFERRALS]
        self._cipher = cipher
        self._locks = locks

    async def add(self, referral: Referral, events: list[IntegrationEvent]) -> bool:
        document = self._to_document(referral)
        document["outbox"] = [outbox_entry(event) for event in events]
        document["outbox_pending"] = bool(events)
        async with self._locks(document["_id"]):
            try:
                await self._referrals.insert_one(document)
            except DuplicateKeyError:
                return False
        return True

    async def get(self, referral_id: uuid.UUID) -> Referral | None:
        document = await self._referrals.find_one({"_id": str(referral_id)}, {"outbox": 0})
        return None if document is None else self._from_document(document)

    async def referred_ats_of_person(self, person_id: str) -> list[datetime]:
        cursor = self._referrals.find({"person_id": person_id}, {"referred_at": 1})
        return [doc["referred_at"] for doc in await cursor.to_list(None)]

    def _to_document(self, referral: Referral) -> Document:
        context = str(referral.referral_id)
        person = asdict(referral.person) | {"birth_date": referral.person.birth_date.isoformat()}
        consent = referral.part2_consent
        return {
            "_id": context,
            "agency_id": referral.agency_id,
            "agency_reference": referral.agency_reference,
            "source": referral.source.value,
            "court_type": referral.court_type.value if referral.court_type else None,
            "officer_reference": referral.officer_reference,
            "county_fips": referral.county_fips,
            "primary_need": referral.primary_need.value,
            "other_needs": [need.value for need in referral.other_needs],
            "person_location": referral.person_location.value,
            "person_id": referral.person_id,
            "person_sealed": self._cipher.encrypt(person, context),
            "narrative_sealed": (
                self._cipher.encrypt(referral.narrative, context) if referral.narrative else None
            ),
            "part2_consent": (
                {"recipient": consent.recipient, "expires_on": consent.expires_on.isoformat()}
                if consent
                else None
            ),
            "liaison_id": referral.assignment.liaison_id,
            "cmhc_id": referral.assignment.cmhc_id,
            "referred_at": referral.referred_at,
            "received_at": referral.received_at,
            "repeat_involvement": referral.repeat_involvement,
            "status": referral.status.value,
            "history": referral.history,
        }

    def _from_document(self, doc: Document) -> Referral:
        context = doc["_id"]
        person = self._cipher.decrypt(doc["person_sealed"], context)
        consent = doc.get("part2_consent")
        return Referral(
            referral_id=uuid.UUID(context),
            agency_id=doc["agency_id"],
            agency_reference=doc.get("agency_reference"),
            source=ReferralSource(doc["source"]),
            court_type=CourtType(doc["court_type"]) if doc.get("court_type") else None,
            officer_reference=doc.get("officer_reference"),
            county_fips=doc["county_fips"],
            primary_need=PresentingNeed(doc["primary_need"]),
            other_needs=[PresentingNeed(n) for n in doc.get("other_needs", [])],
            person_location=PersonLocation(doc["person_location"]),
            person=Person(
                given_name=person["given_name"],
                family_name=person["family_name"],
                birth_date=date.fromisoformat(person["birth_date"]),
                agency_person_ref=person.get("agency_person_ref"),
            ),
            person_id=doc["person_id"],
            narrative=(
                self._cipher.decrypt(doc["narrative_sealed"], context)
                if doc.get("narrative_sealed")
                else None
            ),
            part2_consent=(
                Part2Consent(consent["recipient"], date.fromisoformat(consent["expires_on"]))
                if consent
                else None
            ),
            assignment=Assignment(doc["liaison_id"], doc["cmhc_id"]),
            referred_at=doc["referred_at"],
            received_at=doc["received_at"],
            repeat_involvement=doc["repeat_involvement"],
            status=ReferralStatus(doc["status"]),
            history=doc.get("history", []),
        )


class MongoAuditLog:
    """Append-only: entries are inserted, never updated or deleted by the service."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._entries = db[AUDIT_LOG]

    async def record(self, entry: AuditEntry) -> None:
        document = asdict(entry)
        document["actor_roles"] = list(entry.actor_roles)
        await self._entries.insert_one(document)
