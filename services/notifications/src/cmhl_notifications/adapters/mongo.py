"""MongoDB adapter: notifications (with their mail's state), the liaisons' addresses, and the
mail timers. A liaison's list is served by (liaison_id, happened_at); mail goes by timers."""

from dataclasses import asdict
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from cmhl_notifications.domain.notices import MailState, Notice
from cmhl_servicekit import timers
from cmhl_servicekit.mongo import insert_new

Document = dict[str, Any]
NOTIFICATIONS = "notifications"
ADDRESSES = "mail_addresses"
# One document per mail attempt being sent: an insert, so of two senders exactly one gets it
# (a guarded update is not atomic on every MongoDB-wire server; a unique `_id` is).
SENDING = "mail_sending"
# The mail timers' own collection: a service's due scan fires every timer it finds, so one that
# shared a database (a test's, or a misconfigured deployment) must not find another's.
MAIL_TIMERS = "mail_timers"


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[NOTIFICATIONS].create_index([("liaison_id", 1), ("happened_at", -1)])
    await db[NOTIFICATIONS].create_index([("liaison_id", 1), ("read_at", 1), ("happened_at", -1)])
    await timers.MongoTimerStore(db, MAIL_TIMERS).ensure_indexes()


def mail_timer(notification_id: str, attempt: int, at: datetime, now: datetime) -> timers.Timer:
    return timers.Timer(
        timer_id=f"{notification_id}|mail|{attempt}",
        kind="mail",
        subject_id=notification_id,
        fire_at=at,
        created_at=now,
        sequence=attempt,
    )


class MongoNotificationStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._notifications = db[NOTIFICATIONS]
        self._addresses = db[ADDRESSES]
        self._sending = db[SENDING]
        self._timers = timers.MongoTimerStore(db, MAIL_TIMERS)

    @property
    def timers(self) -> timers.MongoTimerStore:
        return self._timers

    async def add(self, notices: list[Notice], mail_to: dict[str, str], now: datetime) -> int:
        documents = []
        for notice in notices:
            fields = asdict(notice)
            key = str(fields.pop("notification_id"))
            documents.append(
                fields
                | {
                    "_id": key,
                    "kind": notice.kind.value,
                    "referral_id": str(notice.referral_id) if notice.referral_id else None,
                    "created_at": now,
                    "read_at": None,
                    "mail": {
                        "state": (
                            MailState.PENDING
                            if notice.liaison_id in mail_to
                            else MailState.NO_ADDRESS
                        ).value,
                        "attempts": 0,
                    },
                }
            )
        # Timers first: a timer whose notification was never written is settled as nothing once
        # it is old (servicekit's timers.orphaned); until then the notification may be landing.
        await self._timers.schedule(
            [
                mail_timer(d["_id"], 1, now, now)
                for d in documents
                if d["mail"]["state"] == "pending"
            ]
        )
        present = await insert_new(self._notifications, documents)
        return len(documents) - len(present)

    async def get(self, notification_id: str) -> Document | None:
        return await self._notifications.find_one({"_id": notification_id})

    async def claim_mail(
        self, notification_id: str, attempt: int, now: datetime, until: datetime
    ) -> bool:
        key = f"{notification_id}|{attempt}"
        # A claim past its time belongs to a sender that died: it may be taken over.
        await self._sending.delete_one({"_id": key, "until": {"$lt": now}})
        try:
            await self._sending.insert_one({"_id": key, "until": until})
        except DuplicateKeyError:
            return False
        return True

    async def settle_mail(self, notification_id: str, state: str, attempts: int) -> None:
        await self._notifications.update_one(
            {"_id": notification_id}, {"$set": {"mail.state": state, "mail.attempts": attempts}}
        )
        await self._sending.delete_one({"_id": f"{notification_id}|{attempts}"})

    async def retry_mail(self, notification_id: str, attempts: int, at: datetime) -> None:
        await self._timers.schedule([mail_timer(notification_id, attempts + 1, at, at)])
        await self._notifications.update_one(
            {"_id": notification_id},
            {"$set": {"mail.attempts": attempts, "mail.retry_at": at}},
        )
        await self._sending.delete_one({"_id": f"{notification_id}|{attempts}"})

    async def list_for(self, liaison_id: str, unread_only: bool, limit: int) -> list[Document]:
        selector: Document = {"liaison_id": liaison_id}
        if unread_only:
            selector["read_at"] = None
        cursor = self._notifications.find(selector, limit=limit).sort("happened_at", -1)
        return await cursor.to_list(None)

    async def mark_read(self, notification_id: str, liaison_id: str, at: datetime) -> bool:
        found = await self._notifications.find_one(
            {"_id": notification_id, "liaison_id": liaison_id}, {"read_at": 1}
        )
        if found is None:
            return False
        if found.get("read_at") is None:
            await self._notifications.update_one(
                {"_id": notification_id, "read_at": None}, {"$set": {"read_at": at}}
            )
        return True

    async def addresses(self, liaison_ids: list[str]) -> dict[str, str]:
        found = {}
        for liaison_id in liaison_ids:  # `_id` lookups: a handful per batch
            document = await self._addresses.find_one({"_id": liaison_id})
            if document is not None and document.get("address"):
                found[liaison_id] = str(document["address"])
        return found

    async def set_contact(self, recipient: str, address: str, version: int, at: datetime) -> bool:
        # One writer per facility (its events share a partition): read, then write if newer.
        current = await self._addresses.find_one({"_id": recipient}, {"record_version": 1})
        if current is not None and current.get("record_version", 0) >= version:
            return False
        await self._addresses.update_one(
            {"_id": recipient},
            {"$set": {"address": address, "record_version": version, "changed_at": at}},
            upsert=True,
        )
        return True

    async def set_address(self, liaison_id: str, address: str | None, at: datetime) -> None:
        await self._addresses.update_one(
            {"_id": liaison_id}, {"$set": {"address": address, "changed_at": at}}, upsert=True
        )
