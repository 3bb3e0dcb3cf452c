"""Batch consumption with bounded retries and dead letters: the partition always keeps moving.

A record that cannot be decoded or validated goes to `<topic>.dlq` at once, with the reason in its
headers and its original bytes as the value; so does one the handler refuses by a rule of its own
(`RecordsRefused`), while the rest of its batch is applied once. A transient infrastructure error
(database or broker unreachable) is retried with backoff and then raised, so the batch is rewound
and re-read, never dead-lettered. Any other error is a poison record: retried a bounded number of
times, then dead-lettered on its own while the rest of the batch is applied."""

import asyncio
import dataclasses
import functools
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from pydantic import BaseModel, ValidationError
from pymongo.errors import AutoReconnect, ConnectionFailure, NetworkTimeout

log = logging.getLogger(__name__)

E = TypeVar("E", bound=BaseModel)

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    AutoReconnect,
    ConnectionFailure,
    NetworkTimeout,
    KafkaConnectionError,
    KafkaTimeoutError,
    asyncio.TimeoutError,
    ConnectionError,
)


@dataclass(frozen=True)
class Delivery(Generic[E]):
    """A decoded event and where it was read, so projections can record what they applied."""

    event: E
    topic: str
    partition: int
    offset: int


class DeadLetterSink(Protocol):
    async def __call__(self, record: "ConsumerRecord[Any, Any]", reason: str) -> None: ...


REMOVED_HEADER = "dlq-removed"


def without_personal_data(
    record: "ConsumerRecord[Any, Any]", model: type[BaseModel]
) -> "ConsumerRecord[Any, Any]":
    """The record as a dead letter may keep it: without the event type's personal fields (a
    name, a birth date, a narrative). A value that is not a JSON object cannot be told apart,
    so none of it is kept. What was removed is named in a `dlq-removed` header; the rest (an
    agency and its own reference, say) tells the operator whom to ask to send it again."""
    personal: frozenset[str] = getattr(model, "PERSONAL_FIELDS", frozenset())
    if not personal:
        return record
    try:
        document = json.loads(record.value or b"")
    except (ValueError, UnicodeDecodeError):
        document = None
    if not isinstance(document, dict):
        return _replaced(record, b"", "value")
    removed = sorted(personal & document.keys())
    if not removed:
        return record
    kept = {k: v for k, v in document.items() if k not in personal}
    return _replaced(record, json.dumps(kept).encode(), ",".join(removed))


def _replaced(
    record: "ConsumerRecord[Any, Any]", value: bytes, removed: str
) -> "ConsumerRecord[Any, Any]":
    headers = [*(record.headers or ()), (REMOVED_HEADER, removed.encode())]
    return dataclasses.replace(record, value=value, headers=headers)


def safe_reason(exc: BaseException) -> str:
    """A reason that names fields and rules, never the rejected values (they may be a name)."""
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False, include_context=False)
        ]
        return "invalid event: " + "; ".join(parts)[:900]
    return f"{type(exc).__name__}"


def decode(
    records: Sequence["ConsumerRecord[Any, Any]"], model: type[E]
) -> tuple[list[Delivery[E]], list[tuple["ConsumerRecord[Any, Any]", str]]]:
    good: list[Delivery[E]] = []
    bad: list[tuple[ConsumerRecord[Any, Any], str]] = []
    for record in records:
        if not record.value:
            bad.append((record, "empty message"))
            continue
        try:
            event = model.model_validate_json(record.value)
        except ValidationError as exc:
            bad.append((record, safe_reason(exc)))
            continue
        good.append(Delivery(event, record.topic, record.partition, record.offset))
    return good, bad


def dead_letter_headers(record: "ConsumerRecord[Any, Any]", reason: str) -> dict[str, str]:
    headers = {
        "dlq-reason": reason,
        "dlq-original-topic": record.topic,
        "dlq-original-partition": str(record.partition),
        "dlq-original-offset": str(record.offset),
        "dlq-at": datetime.now(UTC).isoformat(),
    }
    removed = dict(record.headers or ()).get(REMOVED_HEADER)
    if removed:
        headers[REMOVED_HEADER] = bytes(removed).decode()
    return headers


T = TypeVar("T")


async def run_bounded(work: Iterable[Awaitable[T]], limit: int) -> list[T]:
    """Runs the awaitables at most `limit` at a time (a handler's database round trips overlap
    instead of queueing). If any fails, every other one finishes first and then one error is
    raised, a transient one if any: the caller's retry then never overlaps work still running."""
    slots = asyncio.Semaphore(limit)

    async def one(awaitable: Awaitable[T]) -> T:
        started = False
        try:
            async with slots:
                started = True
                return await awaitable
        except BaseException:
            # Cancelled while waiting for a slot (the caller is stopping): a coroutine that never
            # ran is closed, or the garbage collector warns that it was never awaited.
            if not started and asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise

    items = list(work)
    try:
        outcomes = await asyncio.gather(*(one(a) for a in items), return_exceptions=True)
    except BaseException:
        # Cancelled before some `one` even started: its coroutine is closed here instead.
        for awaitable in items:
            if inspect.iscoroutine(awaitable) and (
                inspect.getcoroutinestate(awaitable) == inspect.CORO_CREATED
            ):
                awaitable.close()
        raise
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if errors:
        errors.sort(key=lambda e: not isinstance(e, TRANSIENT_ERRORS))
        raise errors[0]
    return [o for o in outcomes if not isinstance(o, BaseException)]


async def retry_transient(
    operation: Callable[[], Awaitable[None]], *, attempts: int = 6, first_delay: float = 0.2
) -> None:
    """Retry an operation on transient errors with exponential backoff, then give up by raising."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            await operation()
            return
        except TRANSIENT_ERRORS as exc:
            if attempt == attempts:
                raise
            log.warning(
                "transient error, retrying", extra={"attempt": attempt, "reason": safe_reason(exc)}
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def _position(delivery: "Delivery[Any]") -> tuple[str, int, int]:
    return (delivery.topic, delivery.partition, delivery.offset)


class RecordsRefused(Exception):
    """Raised by a batch's `apply` that applied every delivery but these, which break a rule
    of the service (a 4xx over HTTP): each is dead-lettered with its reason, at once and
    without a retry, and the rest of the batch is not applied again."""

    def __init__(self, refused: Sequence[tuple["Delivery[Any]", str]]) -> None:
        super().__init__(f"{len(refused)} records refused")
        self.refused = list(refused)


class BatchProcessor(Generic[E]):
    """Decodes a batch, applies the good part in one call, and isolates poison records."""

    def __init__(
        self,
        model: type[E],
        apply: Callable[[list[Delivery[E]]], Awaitable[None]],
        dead_letter: DeadLetterSink,
        *,
        poison_attempts: int = 3,
        admit: Callable[[Delivery[E]], str | None] | None = None,
    ) -> None:
        """`admit` is a rule a well-formed event must also pass where it was read (an agency's
        own topic carries only that agency's submissions): the reason it gives, naming the
        rule, dead-letters the record like a malformed one; None lets it through."""
        self._model = model
        self._apply = apply
        self._dead_letter = dead_letter
        self._poison_attempts = poison_attempts
        self._admit = admit

    async def process(self, records: Sequence["ConsumerRecord[Any, Any]"]) -> None:
        deliveries, rejected = decode(records, self._model)
        by_position = {(r.topic, r.partition, r.offset): r for r in records}
        if self._admit is not None:
            admitted = []
            for delivery in deliveries:
                refusal = self._admit(delivery)
                if refusal is None:
                    admitted.append(delivery)
                else:
                    rejected.append((by_position[_position(delivery)], refusal))
            deliveries = admitted
        for record, reason in rejected:
            await self._dead_letter_invalid(record, reason)
        if not deliveries:
            return
        try:
            await retry_transient(lambda: self._apply(deliveries))
        except TRANSIENT_ERRORS:
            raise
        except RecordsRefused as refusal:
            for delivery, reason in refusal.refused:
                await self._dead_letter_invalid(by_position[_position(delivery)], reason)
        except Exception:
            log.exception("batch failed, applying records one by one")
            for delivery in deliveries:
                await self._apply_one(delivery, by_position[_position(delivery)])

    async def _dead_letter_invalid(self, record: "ConsumerRecord[Any, Any]", reason: str) -> None:
        """A record that breaks a rule: dead-lettered at once with the rule, never retried."""
        log.warning(
            "dead-lettering invalid record",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": reason[:200],
            },
        )
        letter = without_personal_data(record, self._model)
        await retry_transient(functools.partial(self._dead_letter, letter, reason))

    async def _apply_one(self, delivery: Delivery[E], record: "ConsumerRecord[Any, Any]") -> None:
        last_error: Exception | None = None
        for _ in range(self._poison_attempts):
            try:
                await retry_transient(lambda: self._apply([delivery]))
                return
            except TRANSIENT_ERRORS:
                raise
            except RecordsRefused as refusal:
                for _, reason in refusal.refused:
                    await self._dead_letter_invalid(record, reason)
                return
            except Exception as exc:
                last_error = exc
        reason = (
            f"handler failed {self._poison_attempts} times: {safe_reason(last_error)}"
            if (last_error)
            else "handler failed"
        )
        log.error(
            "dead-lettering poison record",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": reason,
            },
        )
        letter = without_personal_data(record, self._model)
        await retry_transient(lambda: self._dead_letter(letter, reason))
