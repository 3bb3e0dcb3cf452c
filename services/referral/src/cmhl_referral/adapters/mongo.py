"""MongoDB adapter: referrals, with their embedded outbox and the person ledger."""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from cmhl_contracts import IntegrationEvent
from cmhl_contracts.vocabulary import (
    CourtType,
    PersonLocation,
    PresentingNeed,
    ReferralSource,
    ReferralStatus,
)
from cmhl_referral.application.ports import (
    CaseloadQuery,
    ConcurrentChange,
    PersonRegistration,
)
from cmhl_referral.domain.consent import Consent, ConsentScope, ConsentTerms
from cmhl_referral.domain.referral import Assignment, ImportSource, Person, Referral
from cmhl_servicekit.crypto import FieldCipher, pseudonym
from cmhl_servicekit.mongo import find_by_ids, insert_new
from cmhl_servicekit.outbox import Outbox

Document = dict[str, Any]

REFERRALS = "referrals"
PERSON_REFERRALS = "person_referrals"
# How long a claimed ledger slot whose referral is not stored yet counts as a write in flight
# (seconds in practice; a minute covers a slow batch), not one that failed.
CLAIM_IN_FLIGHT = timedelta(minutes=1)
# One-time changes to stored documents, each recorded when done.
MIGRATIONS = "migrations"
FAMILY_NAME_KEYS = "family_name_key"
# Which referrals hold a consent for a recipient and scope, until when: how a court's progress
# report finds its participants without reading every referral. Written before the referral's
# own write and checked against it when read, so a failed write leaves no false entry.
CONSENTS_BY_RECIPIENT = "consents_by_recipient"


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[REFERRALS].create_index([("person_id", 1), ("referred_at", 1)])
    await db[REFERRALS].create_index([("liaison_id", 1), ("received_at", -1)])
    await db[REFERRALS].create_index([("cmhc_id", 1), ("received_at", -1)])
    # Search by family name within a caseload, through its keyed hash (the name is encrypted).
    await db[REFERRALS].create_index(
        [("liaison_id", 1), ("family_name_key", 1), ("received_at", -1)]
    )
    await db[REFERRALS].create_index([("cmhc_id", 1), ("family_name_key", 1), ("received_at", -1)])
    await db[CONSENTS_BY_RECIPIENT].create_index(
        [("recipient", 1), ("scope", 1), ("expires_on", 1)]
    )


def family_name_key(key: bytes, family_name: str) -> str:
    """A blind index of the family name: equal for the same name whatever its case and spacing,
    and without the key no guessed name can be tested against it. Its own label, so it never
    equals a person id made with the same key."""
    return pseudonym(key, "family_name", family_name)


class MongoReferralRepository:
    """Clear identifiers and the narrative are stored encrypted, bound to the referral id."""

    def __init__(
        self, db: AsyncDatabase[Document], cipher: FieldCipher, outbox: Outbox, search_key: bytes
    ) -> None:
        self._search_key = search_key
        self._db = db
        self._referrals = db[REFERRALS]
        self._migrations = db[MIGRATIONS]
        self._person_referrals = db[PERSON_REFERRALS]
        self._cipher = cipher
        self._outbox = outbox

    async def add_many(
        self, referrals: list[tuple[Referral, list[IntegrationEvent]]]
    ) -> list[bool]:
        stored = await self._outbox.insert_many(
            REFERRALS, [(self._to_document(referral), events) for referral, events in referrals]
        )
        for (referral, _), was_stored in zip(referrals, stored, strict=True):
            if was_stored:
                referral.version = 1
        return stored

    async def get(self, referral_id: uuid.UUID) -> Referral | None:
        document = await self._referrals.find_one({"_id": str(referral_id)}, {"outbox": 0})
        return None if document is None else self._from_document(document)

    async def get_many(self, referral_ids: list[uuid.UUID]) -> list[Referral]:
        """Those stored, in the order asked: one read of an `_id` list per chunk of ids."""
        ids = [str(r) for r in referral_ids]
        found = await find_by_ids(self._referrals, ids, {"outbox": 0})
        return [self._from_document(found[i]) for i in ids if i in found]

    async def save(self, referral: Referral, events: list[IntegrationEvent]) -> None:
        changes = {
            "status": referral.status.value,
            "liaison_id": referral.assignment.liaison_id,
            "cmhc_id": referral.assignment.cmhc_id,
            "history": referral.history,
            "consents": [_consent_document(c) for c in referral.consents],
        }
        saved = await self._outbox.update(
            REFERRALS, str(referral.referral_id), referral.version, changes, events
        )
        if not saved:
            raise ConcurrentChange
        referral.version += 1

    async def note_consent(self, referral_id: uuid.UUID, consent: Consent) -> None:
        entries = [
            {
                "_id": f"{consent.consent_id}|{scope}",
                "referral_id": str(referral_id),
                "recipient": consent.terms.recipient,
                "scope": scope.value,
                "expires_on": consent.terms.expires_on.isoformat(),
            }
            for scope in sorted(consent.terms.scope)
        ]
        await insert_new(self._db[CONSENTS_BY_RECIPIENT], entries)

    async def consented_referrals(
        self, recipient: str, scope: ConsentScope, in_force_from: date
    ) -> list[uuid.UUID]:
        cursor = self._db[CONSENTS_BY_RECIPIENT].find(
            {
                "recipient": recipient,
                "scope": scope.value,
                "expires_on": {"$gte": in_force_from.isoformat()},
            },
            {"referral_id": 1},
        )
        ids = {document["referral_id"] async for document in cursor}
        return [uuid.UUID(i) for i in sorted(ids)]

    async def key_family_names(self) -> int:
        """Gives referrals stored before the name search their `family_name_key`, once: a
        marker in `migrations` says it was done, so later starts do not look again."""
        if await self._migrations.find_one({"_id": FAMILY_NAME_KEYS}):
            return 0
        keyed = 0
        missing = self._referrals.find(
            {"family_name_key": {"$exists": False}}, {"person_sealed": 1}
        )
        async for document in missing:
            person = self._cipher.decrypt(document["person_sealed"], document["_id"])
            key = family_name_key(self._search_key, person["family_name"])
            await self._referrals.update_one(
                {"_id": document["_id"]}, {"$set": {"family_name_key": key}}
            )
            keyed += 1
        await self._migrations.update_one(
            {"_id": FAMILY_NAME_KEYS}, {"$set": {"referrals": keyed}}, upsert=True
        )
        return keyed

    async def count_up_to(self, liaison_id: str, status: str, cap: int) -> int:
        """How many of a liaison's referrals are in a status, counting no further than `cap`:
        ids only, through the (liaison, status) equality the caseload index serves (a database
        count would read every match)."""
        cursor = self._referrals.find(
            {"liaison_id": liaison_id, "status": status}, {"_id": 1}, limit=cap
        )
        return len(await cursor.to_list(None))

    async def newest_received(self, liaison_id: str | None, cmhc_id: str | None) -> datetime | None:
        scope = {"liaison_id": liaison_id} if liaison_id else {"cmhc_id": cmhc_id}
        cursor = self._referrals.find(scope, {"received_at": 1}, limit=1).sort(
            [("received_at", -1), ("_id", -1)]
        )
        found = await cursor.to_list(None)
        return found[0]["received_at"] if found else None

    async def find(self, query: CaseloadQuery) -> list[Referral]:
        """Newest first; the cursor continues strictly after the last (received_at, id) seen.

        One flat selector (no top-level `$and`): equalities on the caseload's fields and one
        range on `received_at`, the shape a planner serves from the (liaison or CMHC,
        received_at) indexes."""
        selector: Document = {
            field: value
            for field, value in (
                ("liaison_id", query.liaison_id),
                ("cmhc_id", query.cmhc_id),
                ("status", query.status),
                ("county_fips", query.county_fips),
                ("agency_id", query.agency_id),
                ("repeat_involvement", query.repeat_involvement),
                (
                    "family_name_key",
                    family_name_key(self._search_key, query.family_name)
                    if query.family_name
                    else None,
                ),
            )
            if value is not None
        }
        received: Document = {}
        if query.received_from:
            received["$gte"] = query.received_from
        if query.received_to:
            received["$lt"] = query.received_to
        if query.after:
            at, last_id = query.after
            # Implied by the $or below; said again so the range bounds the index scan.
            received["$lte"] = at
            selector["$or"] = [
                {"received_at": {"$lt": at}},
                {"received_at": at, "_id": {"$lt": last_id}},
            ]
        if received:
            selector["received_at"] = received
        cursor = self._referrals.find(selector, {"outbox": 0}, limit=query.limit).sort(
            [("received_at", -1), ("_id", -1)]
        )
        return [self._from_document(doc) for doc in await cursor.to_list(None)]

    async def earlier_referrals_of_people(
        self,
        registrations: Sequence[PersonRegistration],
        counted_by_caller: Collection[uuid.UUID] = (),
    ) -> list[list[datetime]]:
        """Registers each referral in its person's ledger and returns, in order, the times of
        each person's other referrals, stored or being written (below). The people are distinct.

        The ledger holds `person_id|1`, `person_id|2`, ...: reading and claiming the next free
        slot are `_id` operations (a scan of the referrals would grow with every referral), and
        a duplicate-key error on the claim is the lock when two referrals of one person race.
        Every person's slot n is read by one `$in` on `_id`, the free slots are claimed by one
        unordered insert, and the earlier slots' referrals are checked by one `$in`: a batch of
        an import costs a few round trips, not a few per record.

        An earlier slot counts if its referral is stored, or if it was claimed less than
        CLAIM_IN_FLIGHT ago: that referral is being written at this moment (another replica,
        another batch), and two referrals of one person arriving together must not both miss
        each other. A slot older than that whose referral is not stored was left by a write
        that failed, and is skipped. Slots of `counted_by_caller` are skipped too: the caller's
        own batch, not stored yet, whose records it counts itself (a record it then refuses
        must not count)."""
        if len({r.person_id for r in registrations}) != len(registrations):
            # Two of one person's referrals would race for one slot: a person's go in order.
            raise ValueError("a person is registered once per call")
        claimed_at = datetime.now(UTC)
        next_slot = {index: 1 for index in range(len(registrations))}
        held: list[list[Document]] = [[] for _ in registrations]
        while next_slot:
            keys = {f"{registrations[i].person_id}|{slot}": i for i, slot in next_slot.items()}
            found = await find_by_ids(self._person_referrals, list(keys), {})
            free: dict[str, int] = {}
            for key, index in keys.items():
                entry = found.get(key)
                if entry is None:
                    free[key] = index
                elif entry["referral_id"] == str(registrations[index].referral_id):
                    del next_slot[index]  # registered by an earlier attempt of this referral
                else:
                    held[index].append(entry)
                    next_slot[index] += 1
            claims = [
                {
                    "_id": key,
                    "referral_id": str(registrations[index].referral_id),
                    "referred_at": registrations[index].referred_at,
                    "claimed_at": claimed_at,
                }
                for key, index in free.items()
            ]
            # A slot another referral of the person took meanwhile is read again next round.
            taken = await insert_new(self._person_referrals, claims)
            for key, index in free.items():
                if key not in taken:
                    del next_slot[index]
        in_flight_since = claimed_at - CLAIM_IN_FLIGHT
        own = {str(referral_id) for referral_id in counted_by_caller}
        held = [[e for e in entries if e["referral_id"] not in own] for entries in held]
        named = list({entry["referral_id"] for entries in held for entry in entries})
        stored = await find_by_ids(self._referrals, named, {"_id": 1})
        return [
            [
                entry["referred_at"]
                for entry in entries
                if entry["referral_id"] in stored or _claimed_since(entry, in_flight_since)
            ]
            for entries in held
        ]

    def _to_document(self, referral: Referral) -> Document:
        context = str(referral.referral_id)
        person = asdict(referral.person) | {"birth_date": referral.person.birth_date.isoformat()}
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
            "family_name_key": family_name_key(self._search_key, referral.person.family_name),
            "narrative_sealed": (
                self._cipher.encrypt(referral.narrative, context) if referral.narrative else None
            ),
            "consents": [_consent_document(c) for c in referral.consents],
            "liaison_id": referral.assignment.liaison_id,
            "cmhc_id": referral.assignment.cmhc_id,
            "referred_at": referral.referred_at,
            "received_at": referral.received_at,
            "repeat_involvement": referral.repeat_involvement,
            "status": referral.status.value,
            "history": referral.history,
            "version": referral.version,
            "imported_from": (
                {
                    "system": referral.imported_from.system,
                    "record_id": referral.imported_from.record_id,
                }
                if referral.imported_from
                else None
            ),
            "submission_id": referral.submission_id,
        }

    def _from_document(self, doc: Document) -> Referral:
        context = doc["_id"]
        person = self._cipher.decrypt(doc["person_sealed"], context)
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
            consents=read_consents(doc),
            assignment=Assignment(doc["liaison_id"], doc["cmhc_id"]),
            referred_at=doc["referred_at"],
            received_at=doc["received_at"],
            repeat_involvement=doc["repeat_involvement"],
            status=ReferralStatus(doc["status"]),
            history=doc.get("history", []),
            version=doc.get("version", 0),
            imported_from=(
                ImportSource(**doc["imported_from"]) if doc.get("imported_from") else None
            ),
            submission_id=doc.get("submission_id"),
        )


def _claimed_since(entry: Document, moment: datetime) -> bool:
    """Whether a ledger slot was claimed after `moment` (slots claimed before claims were dated
    have no date: long ago)."""
    claimed_at: datetime | None = entry.get("claimed_at")
    return claimed_at is not None and claimed_at > moment


def _consent_document(consent: Consent) -> Document:
    terms = consent.terms
    return {
        "consent_id": str(consent.consent_id),
        "recipient": terms.recipient,
        "purpose": terms.purpose,
        "scope": sorted(terms.scope),
        "signed_on": terms.signed_on.isoformat(),
        "expires_on": terms.expires_on.isoformat(),
        "recorded_at": consent.recorded_at,
        "revoked_at": consent.revoked_at,
    }


# What a consent stored before consents named their purpose and scope (`part2_consent`: a
# recipient and an expiry) meant: feedback on the referral to the referring agency.
LEGACY_CONSENT_PURPOSE = "feedback on the referral to the referring agency"


def read_consents(doc: Document) -> list[Consent]:
    if "consents" in doc:
        return [
            Consent(
                consent_id=uuid.UUID(c["consent_id"]),
                terms=ConsentTerms(
                    recipient=c["recipient"],
                    purpose=c["purpose"],
                    scope=frozenset(ConsentScope(s) for s in c["scope"]),
                    signed_on=date.fromisoformat(c["signed_on"]),
                    expires_on=date.fromisoformat(c["expires_on"]),
                ),
                recorded_at=c["recorded_at"],
                revoked_at=c.get("revoked_at"),
            )
            for c in doc["consents"]
        ]
    legacy = doc.get("part2_consent")
    if not legacy:
        return []
    received_at: datetime = doc["received_at"]
    terms = ConsentTerms(
        recipient=legacy["recipient"],
        purpose=LEGACY_CONSENT_PURPOSE,
        scope=frozenset({ConsentScope.REFERRAL_STATUS}),
        signed_on=received_at.date(),
        expires_on=date.fromisoformat(legacy["expires_on"]),
    )
    return [Consent.record(uuid.UUID(doc["_id"]), terms, received_at)]
