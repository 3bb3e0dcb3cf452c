"""Group commit: a lone caller is applied at once in its own context; callers arriving while a
batch runs go together in the next; each gets its own answer or its batch's error; a caller who
gives up does not stop the write; a batch of several is traced as one span linked to each
caller."""

import asyncio
import contextvars

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cmhl_servicekit import tracing
from cmhl_servicekit.group_commit import GroupCommit

REQUEST = contextvars.ContextVar[str]("REQUEST", default="none")


class Writer:
    """Records each batch it is given; holds a batch open until released, when asked to."""

    def __init__(self, *, hold: bool = False, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.contexts: list[str] = []
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        if not hold:
            self.release.set()
        self.fail_on = fail_on

    async def apply(self, items: list[str]) -> list[str]:
        self.batches.append(list(items))
        self.contexts.append(REQUEST.get())
        self.started.set()
        await self.release.wait()
        if self.fail_on in items:
            raise ConnectionError("database unavailable")
        return [f"stored {item}" for item in items]


async def submit_as(group: GroupCommit[str, str], request: str, item: str) -> str:
    REQUEST.set(request)
    return await group.submit(item)


async def writing_a_while_b_waits(
    writer: Writer, group: GroupCommit[str, str]
) -> tuple["asyncio.Task[str]", "asyncio.Task[str]"]:
    """ "a" submitted and its batch held open by the writer, then "b" submitted behind it."""
    a = asyncio.create_task(group.submit("a"))
    await writer.started.wait()
    b = asyncio.create_task(group.submit("b"))
    await asyncio.sleep(0)
    return a, b


async def test_a_lone_caller_is_applied_at_once_alone_in_its_own_context() -> None:
    writer = Writer()
    group = GroupCommit(writer.apply, span_name="test.write")
    answer = await asyncio.wait_for(submit_as(group, "request-1", "a"), 1)
    assert answer == "stored a"
    assert writer.batches == [["a"]]
    assert writer.contexts == ["request-1"]  # as a direct call would see it


async def test_callers_arriving_during_a_batch_go_together_in_the_next_each_answered() -> None:
    writer = Writer(hold=True)
    group = GroupCommit(writer.apply, span_name="test.write", max_batch=3)
    first = asyncio.create_task(group.submit("a"))
    await writer.started.wait()
    later = [asyncio.create_task(group.submit(item)) for item in "bcdef"]
    await asyncio.sleep(0)
    writer.release.set()
    answers = await asyncio.wait_for(asyncio.gather(first, *later), 1)
    assert answers == [f"stored {item}" for item in "abcdef"]
    # The first at once, alone; then those that waited, in their order, max_batch at a time.
    assert writer.batches == [["a"], ["b", "c", "d"], ["e", "f"]]


async def test_a_failed_batch_answers_its_own_callers_with_the_error_and_the_next_runs() -> None:
    writer = Writer(hold=True, fail_on="b")
    group = GroupCommit(writer.apply, span_name="test.write", max_batch=2)
    first = asyncio.create_task(group.submit("a"))
    await writer.started.wait()
    failing = [asyncio.create_task(group.submit(item)) for item in "bc"]
    after = asyncio.create_task(group.submit("d"))
    await asyncio.sleep(0)
    writer.release.set()
    assert await asyncio.wait_for(first, 1) == "stored a"
    for task in failing:
        with pytest.raises(ConnectionError, match="database unavailable"):
            await asyncio.wait_for(task, 1)
    assert await asyncio.wait_for(after, 1) == "stored d"
    assert writer.batches == [["a"], ["b", "c"], ["d"]]


async def test_an_apply_that_answers_too_few_fails_its_callers_instead_of_hanging() -> None:
    async def forgetful(items: list[str]) -> list[str]:
        return items[:1]

    group = GroupCommit(forgetful, span_name="test.write")
    with pytest.raises(RuntimeError, match="apply answered 1 of 2 items"):
        await asyncio.wait_for(asyncio.gather(group.submit("a"), group.submit("b")), 1)


async def test_a_caller_who_gives_up_does_not_stop_the_write_of_its_item_or_of_others() -> None:
    writer = Writer(hold=True)
    group = GroupCommit(writer.apply, span_name="test.write")
    leaver, stayer = await writing_a_while_b_waits(writer, group)
    leaver.cancel()  # the client of the request that started the batch disconnects
    writer.release.set()
    assert await asyncio.wait_for(stayer, 1) == "stored b"
    assert writer.batches == [["a"], ["b"]]
    with pytest.raises(asyncio.CancelledError):
        await leaver


async def test_callers_waiting_when_the_writer_is_cancelled_are_told_not_left_waiting() -> None:
    writer = Writer(hold=True)
    group = GroupCommit(writer.apply, span_name="test.write")
    first, queued = await writing_a_while_b_waits(writer, group)
    assert group._writer is not None
    group._writer.cancel()  # the service stops mid-write
    for task in (first, queued):
        with pytest.raises(RuntimeError, match="stopping"):
            await asyncio.wait_for(task, 1)
    writer.release.set()
    assert await asyncio.wait_for(group.submit("c"), 1) == "stored c"  # a new writer starts


async def test_a_batch_of_several_is_one_span_linked_to_each_caller_and_its_writes_continue_it(
    spans: InMemorySpanExporter,
) -> None:
    tracer = trace.get_tracer("test", tracer_provider=tracing._Current())
    written_under: list[str | None] = []
    release = asyncio.Event()

    async def apply(items: list[str]) -> list[str]:
        # What outbox_entry stores with each event, for the relay's publish to continue.
        written_under.append(tracing.current_traceparent())
        await release.wait()
        return items

    group = GroupCommit(apply, span_name="referral.create")

    async def request(name: str) -> trace.SpanContext:
        with tracer.start_as_current_span(name) as span:
            await group.submit(name)
            return span.get_span_context()

    first = asyncio.create_task(request("POST 1"))
    await asyncio.sleep(0.01)
    together = [asyncio.create_task(request(f"POST {n}")) for n in (2, 3)]
    await asyncio.sleep(0.01)
    release.set()
    alone, *grouped = await asyncio.wait_for(asyncio.gather(first, *together), 1)

    batch = next(s for s in spans.get_finished_spans() if s.name == "referral.create")
    assert batch.context is not None
    assert batch.parent is None  # a trace of its own
    assert {link.context.span_id for link in batch.links} == {c.span_id for c in grouped}
    assert batch.attributes is not None
    assert batch.attributes["db.operation.batch.size"] == 2
    # The lone first caller's write continues its own trace; the pair's, the batch span's.
    assert written_under[0] is not None
    assert f"{alone.trace_id:032x}" in written_under[0]
    assert written_under[1] is not None
    assert f"{batch.context.trace_id:032x}-{batch.context.span_id:016x}" in written_under[1]


def test_a_batch_must_hold_at_least_one_item() -> None:
    async def apply(items: list[str]) -> list[str]:
        return items

    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(apply, span_name="test.write", max_batch=0)
