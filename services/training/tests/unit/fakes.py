"""In-memory stand-ins for the training service's ports."""

import copy
from collections import defaultdict
from dataclasses import replace

from cmhl_contracts import IntegrationEvent
from cmhl_training.application.ports import ConcurrentChange
from cmhl_training.domain.catalog import Course
from cmhl_training.domain.session import Session


class InMemorySessionRepository:
    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.published: list[IntegrationEvent] = []

    async def add(self, session: Session, events: list[IntegrationEvent]) -> bool:
        if session.session_id in self.sessions:
            return False
        session.version = 1
        self.sessions[session.session_id] = copy.deepcopy(session)
        self.published.extend(events)
        return True

    async def get(self, session_id: str) -> Session | None:
        stored = self.sessions.get(session_id)
        return copy.deepcopy(stored) if stored else None

    async def save(self, session: Session, events: list[IntegrationEvent]) -> None:
        if self.sessions[session.session_id].version != session.version:
            raise ConcurrentChange
        session.version += 1
        self.sessions[session.session_id] = copy.deepcopy(session)
        self.published.extend(events)

    async def of_trainer(self, liaison_id: str, limit: int) -> list[Session]:
        found = [s for s in self.sessions.values() if s.trainer_liaison_id == liaison_id]
        return sorted(found, key=lambda s: s.held_on, reverse=True)[:limit]

    async def of_cmhc(self, cmhc_id: str, limit: int) -> list[Session]:
        found = [s for s in self.sessions.values() if s.trainer_cmhc_id == cmhc_id]
        return sorted(found, key=lambda s: s.held_on, reverse=True)[:limit]


class InMemoryCourseCatalog:
    def __init__(self) -> None:
        self.courses: dict[str, Course] = {}

    async def seed(self, courses: tuple[Course, ...]) -> None:
        for course in courses:
            self.courses.setdefault(course.course_id, course)

    async def all(self) -> list[Course]:
        return sorted(self.courses.values(), key=lambda c: c.course_id)

    async def get(self, course_id: str) -> Course | None:
        return self.courses.get(course_id)

    async def add(self, course: Course) -> bool:
        if course.course_id in self.courses:
            return False
        self.courses[course.course_id] = course
        return True

    async def retire(self, course_id: str) -> Course | None:
        if course_id not in self.courses:
            return None
        self.courses[course_id] = replace(self.courses[course_id], retired=True)
        return self.courses[course_id]


class InMemoryOfficerLedger:
    def __init__(self) -> None:
        self.entries: dict[str, set[str]] = defaultdict(set)

    async def register(self, session_id: str, officer_ids: list[str]) -> None:
        for officer_id in officer_ids:
            self.entries[officer_id].add(session_id)

    async def sessions_of(self, officer_id: str) -> list[str]:
        return sorted(self.entries.get(officer_id, set()))
