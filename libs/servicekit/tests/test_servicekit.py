"""Cross-cutting defaults: safe error reasons, dead letters, logs, crypto, body limits."""

import asyncio
import gc
import json
import logging
import warnings
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from aiokafka import ConsumerRecord
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from cmhl_servicekit import testing
from cmhl_servicekit.consuming import (
    BatchProcessor,
    Delivery,
    RecordsRefused,
    dead_letter_headers,
    decode,
    run_bounded,
    safe_reason,
)
from cmhl_servicekit.crypto import FieldCipher, pseudonym
from cmhl_servicekit.http import BodySizeLimit
from cmhl_servicekit.logging import JsonFormatter


class Thing(BaseModel):
    name: str
    size: int


def record(value: bytes, offset: int = 0) -> "ConsumerRecord[bytes, bytes]":
    return ConsumerRecord("topic", 0, offset, 0, 0, b"k", value, None, 1, len(value), [])


def test_reasons_name_fields_never_values() -> None:
    with pytest.raises(ValidationError) as raised:
        Thing.model_validate({"name": 3, "size": "Jane Doe"})
    reason = safe_reason(raised.value)
    assert "size" in reason
    assert "Jane" not in reason


def test_decode_separates_good_from_bad_records() -> None:
    good, bad = decode(
        [record(b'{"name":"a","size":1}', 0), record(b"{oops", 1), record(b"", 2)], Thing
    )
    assert [d.offset for d in good] == [0]
    assert [(r.offset, reason.split(":")[0]) for r, reason in bad] == [
        (1, "invalid event"),
        (2, "empty message"),
    ]


async def test_a_poison_record_is_dead_lettered_after_bounded_retries_and_the_rest_applied() -> (
    None
):
    applied: list[int] = []
    attempts: dict[int, int] = {}
    dead: list[tuple[int, str]] = []

    async def apply(deliveries: list[Delivery[Thing]]) -> None:
        for delivery in deliveries:
            if delivery.event.name == "poison":
                attempts[delivery.offset] = attempts.get(delivery.offset, 0) + 1
                raise RuntimeError("handler bug")
        applied.extend(d.offset for d in deliveries)

    async def dead_letter(record: Any, reason: str) -> None:
        dead.append((record.offset, reason))

    records: Sequence[ConsumerRecord[bytes, bytes]] = [
        record(b'{"name":"a","size":1}', 0),
        record(b'{"name":"poison","size":1}', 1),
        record(b'{"name":"b","size":2}', 2),
        record(b"not json", 3),
    ]
    await BatchProcessor(Thing, apply, dead_letter, poison_attempts=3).process(records)
    assert applied == [0, 2]
    assert attempts == {1: 4}  # once in the batch, then three times alone
    assert sorted(offset for offset, _ in dead) == [1, 3]
    assert "handler failed 3 times: RuntimeError" in dict(dead)[1]


async def test_a_record_that_breaks_the_admit_rule_is_dead_lettered_with_it() -> None:
    applied: list[int] = []
    dead: list[tuple[int, str]] = []

    async def apply(deliveries: list[Delivery[Thing]]) -> None:
        applied.extend(d.offset for d in deliveries)

    async def dead_letter(record: Any, reason: str) -> None:
        dead.append((record.offset, reason))

    def small_only(delivery: Delivery[Thing]) -> str | None:
        return "too_big: size over 5" if delivery.event.size > 5 else None

    await BatchProcessor(Thing, apply, dead_letter, admit=small_only).process(
        [
            record(b'{"name":"a","size":1}', 0),
            record(b'{"name":"b","size":9}', 1),
            record(b"not json", 2),
            record(b'{"name":"c","size":5}', 3),
        ]
    )
    assert applied == [0, 3]
    assert sorted(offset for offset, _ in dead) == [1, 2]
    assert (1, "too_big: size over 5") in dead


async def test_records_the_handler_refuses_are_dead_lettered_once_and_the_rest_applied_once() -> (
    None
):
    """A handler that applies a batch but refuses some records by a rule of its own: those go
    to the dead letters with its reason, without a retry, and the batch is not applied again
    (a re-application would audit or publish twice). Alone, as after another batch's failure,
    a refused record is dead-lettered the same way."""
    calls: list[list[int]] = []
    dead: list[tuple[int, str]] = []

    async def apply(deliveries: list[Delivery[Thing]]) -> None:
        calls.append([d.offset for d in deliveries])
        refused = [(d, f"too_big: {d.event.name} over 5") for d in deliveries if d.event.size > 5]
        if any(d.event.name == "bug" for d in deliveries):
            raise RuntimeError("handler bug")
        if refused:
            raise RecordsRefused(refused)

    async def dead_letter(record: Any, reason: str) -> None:
        dead.append((record.offset, reason))

    await BatchProcessor(Thing, apply, dead_letter).process(
        [
            record(b'{"name":"a","size":1}', 0),
            record(b'{"name":"b","size":9}', 1),
            record(b'{"name":"c","size":7}', 2),
            record(b'{"name":"d","size":2}', 3),
        ]
    )
    assert calls == [[0, 1, 2, 3]]
    assert dead == [(1, "too_big: b over 5"), (2, "too_big: c over 5")]

    calls.clear()
    dead.clear()
    await BatchProcessor(Thing, apply, dead_letter, poison_attempts=3).process(
        [
            record(b'{"name":"a","size":1}', 0),
            record(b'{"name":"bug","size":1}', 1),
            record(b'{"name":"c","size":7}', 2),
        ]
    )
    assert calls == [[0, 1, 2], [0], [1], [1], [1], [2]]
    assert dead[0][0] == 1
    assert "handler failed 3 times" in dead[0][1]
    assert dead[1] == (2, "too_big: c over 5")


def test_log_lines_keep_only_allowed_fields() -> None:
    entry = logging.LogRecord("x", logging.INFO, "f", 1, "created", None, None)
    entry.__dict__.update({"referral_id": "r-1", "given_name": "Jane", "narrative": "x"})
    line = json.loads(JsonFormatter("referral").format(entry))
    assert line["referral_id"] == "r-1"
    assert "given_name" not in line
    assert "narrative" not in line


def test_sealed_fields_open_only_with_their_context() -> None:
    cipher = FieldCipher(b"k" * 32)
    sealed = cipher.encrypt({"given_name": "Jane"}, "referral-1")
    assert "Jane" not in sealed
    assert cipher.decrypt(sealed, "referral-1") == {"given_name": "Jane"}
    with pytest.raises(Exception):  # noqa: B017, PT011 - the AEAD tag check fails
        cipher.decrypt(sealed, "referral-2")
    assert pseudonym(b"k", "Doe", "Jane") != pseudonym(b"other key", "Doe", "Jane")


async def chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_bodies_over_the_limit_get_413() -> None:
    app = FastAPI()

    @app.post("/echo")
    async def echo(body: dict[str, str]) -> dict[str, str]:
        return body

    limited = BodySizeLimit(app, max_bytes=100)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=limited), base_url="http://t"
    ) as client:
        small = await client.post("/echo", json={"a": "b"})
        large = await client.post("/echo", json={"a": "x" * 500})
        chunked = await client.post("/echo", content=chunks([b'{"a": "', b"x" * 500, b'"}']))
    assert small.status_code == 200
    assert large.status_code == 413
    assert chunked.status_code == 413


async def test_bounded_work_overlaps_up_to_its_limit_and_fails_only_after_all_ended() -> None:
    running = peak = 0
    finished: list[int] = []

    async def job(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        if n == 2:
            raise ValueError("a permanent error")
        if n == 5:
            raise ConnectionError("a transient error")
        finished.append(n)
        return n * 10

    assert await run_bounded((job(n) for n in (0, 1, 3)), limit=2) == [0, 10, 30]
    assert peak == 2
    finished.clear()
    with pytest.raises(ConnectionError):  # the transient one, so the caller retries the batch
        await run_bounded(map(job, range(8)), limit=3)
    assert sorted(finished) == [0, 1, 3, 4, 6, 7]  # none cut short by the failures


def test_asking_for_a_docker_engine_leaves_no_socket_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fixtures ask for Docker only when nothing is configured; without an engine the
    probe must not leave a socket to the garbage collector (an unraisable warning that would
    fail whichever test runs next)."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = testing._docker_available()
        gc.collect()
    assert available is Path("/var/run/docker.sock").exists()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


async def test_work_still_waiting_for_a_slot_when_the_caller_stops_is_closed_not_leaked() -> None:
    """A stopping service cancels its loops mid-pass: work that never got a slot must not be
    left as a coroutine never awaited (a warning the garbage collector raises anywhere)."""
    started: list[int] = []
    release = asyncio.Event()

    async def job(n: int) -> int:
        started.append(n)
        await release.wait()
        return n

    first_started = asyncio.Event()

    async def watched(n: int) -> int:
        first_started.set()
        return await job(n)

    running = asyncio.create_task(run_bounded(map(watched, range(5)), limit=1))
    await first_started.wait()
    running.cancel()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(asyncio.CancelledError):
            await running
        gc.collect()
    assert started == [0]
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]


class Personal(BaseModel):
    PERSONAL_FIELDS: ClassVar[frozenset[str]] = frozenset({"person", "narrative"})
    agency: str
    person: dict[str, str]
    narrative: str | None = None
    size: int


async def test_a_dead_letter_keeps_no_personal_field_of_its_event_type() -> None:
    """Whether the record failed to decode or failed in the handler, its dead letter drops the
    fields the event type declares personal, says so, and keeps what tells whom to ask again."""
    dead: list[ConsumerRecord[bytes, bytes]] = []

    async def apply(deliveries: list[Delivery[Personal]]) -> None:
        raise RuntimeError("handler bug")

    async def dead_letter(record: Any, reason: str) -> None:
        dead.append(record)

    person = b'{"given_name": "Jane", "family_name": "Roe", "birth_date": "1990-01-02"}'
    invalid = (
        b'{"agency": "stl-pd", "person": ' + person + b', "narrative": "said x", "size": "big"}'
    )
    poison = b'{"agency": "stl-pd", "person": ' + person + b', "size": 3}'
    garbled = b'{"agency": "stl-pd", "person": {"given_name": "Jane"'
    await BatchProcessor(Personal, apply, dead_letter, poison_attempts=1).process(
        [record(invalid, 0), record(poison, 1), record(garbled, 2)]
    )
    by_offset = {letter.offset: letter for letter in dead}
    assert sorted(by_offset) == [0, 1, 2]
    for letter in dead:
        assert b"Jane" not in letter.value
        assert b"said x" not in letter.value
    assert json.loads(by_offset[0].value) == {"agency": "stl-pd", "size": "big"}
    assert dict(by_offset[0].headers)["dlq-removed"] == b"narrative,person"
    assert json.loads(by_offset[1].value) == {"agency": "stl-pd", "size": 3}
    assert (by_offset[2].value, dict(by_offset[2].headers)["dlq-removed"]) == (b"", b"value")
    headers = dead_letter_headers(by_offset[0], "invalid")
    assert headers["dlq-removed"] == "narrative,person"


async def test_a_loop_that_swallows_its_cancellation_is_still_stopped() -> None:
    """As 3.11's wait_for can, when a wake-up and the cancellation arrive together."""
    import asyncio

    from cmhl_servicekit.runtime import stop_tasks

    swallowed = 0

    async def loop() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # the first cancellation is lost

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    await asyncio.wait_for(stop_tasks([task], again_after=0.05), timeout=5)
    assert task.cancelled()
    assert swallowed == 1
