"""MongoDB adapters: sessions (with their embedded outbox), the course catalog, the officer
ledger and the append-only audit log."""

from dataclasses import asdict
from datetime import date
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cmhl_contracts import IntegrationEvent
from cmhl_servicekit.mongo import insert_new
from cmhl_servicekit.outbox import Outbox
from cmhl_training.application.ports import ConcurrentChange
from cmhl_training.domain.catalog import COURSES_BY_ID, Course, PostCategory
from cmhl_training.domain.session import Officer, Session, SessionStatus

Document = dict[str, Any]
SESSIONS = "training_sessions"
COURSES = "courses"
OFFICER_SESSIONS = "officer_sessions"


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[SESSIONS].create_index([("trainer_liaison_id", 1), ("held_on", -1)])
    await db[SESSIONS].create_index([("trainer_cmhc_id", 1), ("held_on", -1)])
    await db[OFFICER_SESSIONS].create_index("officer_id")


def _officers(documents: list[Document]) -> list[Officer]:
    return [Officer(d["agency_id"], d["officer_ref"], d.get("post_license")) for d in documents]


class MongoSessionRepository:
    def __init__(self, db: AsyncDatabase[Document], outbox: Outbox) -> None:
        self._sessions = db[SESSIONS]
        self._outbox = outbox

    async def add(self, session: Session, events: list[IntegrationEvent]) -> bool:
        if not await self._outbox.insert(SESSIONS, self._to_document(session), events):
            return False
        session.version = 1
        return True

    async def get(self, session_id: str) -> Session | None:
        document = await self._sessions.find_one({"_id": session_id}, {"outbox": 0})
        return None if document is None else self._from_document(document)

    async def save(self, session: Session, events: list[IntegrationEvent]) -> None:
        changes = {
            key: value
            for key, value in self._to_document(session).items()
            if key in ("registered", "attended", "status", "revision")
        }
        saved = await self._outbox.update(
            SESSIONS, session.session_id, session.version, changes, events
        )
        if not saved:
            raise ConcurrentChange
        session.version += 1

    async def of_trainer(self, liaison_id: str, limit: int) -> list[Session]:
        return await self._find({"trainer_liaison_id": liaison_id}, limit)

    async def of_cmhc(self, cmhc_id: str, limit: int) -> list[Session]:
        return await self._find({"trainer_cmhc_id": cmhc_id}, limit)

    async def _find(self, query: Document, limit: int) -> list[Session]:
        cursor = self._sessions.find(query, {"outbox": 0}, limit=limit).sort(
            [("held_on", -1), ("_id", -1)]
        )
        return [self._from_document(d) for d in await cursor.to_list(None)]

    @staticmethod
    def _to_document(session: Session) -> Document:
        # Officer ids issued by agencies stay here (certificates and agencies' reads need them);
        # events, logs and reports carry pseudonyms only.
        return {
            "_id": session.session_id,
            "course_id": session.course_id,
            "course_title": session.course_title,
            "category": session.category.value,
            "credit_hours": session.credit_hours,
            "held_on": session.held_on.isoformat(),
            "county_fips": session.county_fips,
            "host_agency_id": session.host_agency_id,
            "trainer_liaison_id": session.trainer_liaison_id,
            "trainer_cmhc_id": session.trainer_cmhc_id,
            "capacity": session.capacity,
            "registered": [asdict(o) for o in session.registered],
            "attended": [asdict(o) for o in session.attended],
            "status": session.status.value,
            "revision": session.revision,
        }

    @staticmethod
    def _from_document(doc: Document) -> Session:
        # Sessions stored before registrations existed hold only `roster` (who attended).
        attended = _officers(doc["attended"] if "attended" in doc else doc.get("roster") or [])
        known = COURSES_BY_ID.get(doc["course_id"])
        return Session(
            session_id=doc["_id"],
            course_id=doc["course_id"],
            course_title=str(
                doc.get("course_title") or (known.title if known else doc["course_id"])
            ),
            category=PostCategory(
                doc.get("category", known.category if known else PostCategory.INTERPERSONAL)
            ),
            credit_hours=doc["credit_hours"],
            held_on=date.fromisoformat(doc["held_on"]),
            county_fips=doc["county_fips"],
            host_agency_id=doc["host_agency_id"],
            trainer_liaison_id=doc["trainer_liaison_id"],
            trainer_cmhc_id=doc.get("trainer_cmhc_id"),
            capacity=doc["capacity"],
            registered=_officers(doc["registered"]) if "registered" in doc else attended,
            attended=attended,
            status=SessionStatus(doc.get("status", SessionStatus.COMPLETED)),
            revision=doc.get("revision", 1),
            version=doc.get("version", 1),
        )


class MongoCourseCatalog:
    """A small collection (tens of courses) keyed by course id; supervisors are its only
    writers, one request at a time."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._courses = db[COURSES]

    async def seed(self, courses: tuple[Course, ...]) -> None:
        # Seeded before: the stored courses (maybe retired) stay.
        await insert_new(self._courses, [_course_document(c) for c in courses])

    async def all(self) -> list[Course]:
        cursor = self._courses.find({}).sort("_id", 1)
        return [_course(d) for d in await cursor.to_list(None)]

    async def get(self, course_id: str) -> Course | None:
        document = await self._courses.find_one({"_id": course_id})
        return None if document is None else _course(document)

    async def add(self, course: Course) -> bool:
        try:
            await self._courses.insert_one(_course_document(course))
        except DuplicateKeyError:
            return False
        return True

    async def retire(self, course_id: str) -> Course | None:
        await self._courses.update_one({"_id": course_id}, {"$set": {"retired": True}})
        return await self.get(course_id)


def _course_document(course: Course) -> Document:
    return {
        "_id": course.course_id,
        "title": course.title,
        "category": course.category.value,
        "credit_hours": course.credit_hours,
        "retired": course.retired,
    }


def _course(doc: Document) -> Course:
    return Course(
        doc["_id"], doc["title"], PostCategory(doc["category"]), doc["credit_hours"], doc["retired"]
    )


class MongoOfficerLedger:
    """`officer_id|session_id` entries, written as inserts (the completion path stays one
    insert_many whatever the roster size); an officer's sessions are read by the `officer_id`
    index."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._entries = db[OFFICER_SESSIONS]

    async def register(self, session_id: str, officer_ids: list[str]) -> None:
        if not officer_ids:
            return
        documents = [
            {"_id": f"{officer}|{session_id}", "officer_id": officer, "session_id": session_id}
            for officer in officer_ids
        ]
        await insert_new(self._entries, documents)  # entries of an earlier revision or attempt stay

    async def sessions_of(self, officer_id: str) -> list[str]:
        cursor = self._entries.find({"officer_id": officer_id}, {"session_id": 1})
        return [d["session_id"] for d in await cursor.to_list(None)]
