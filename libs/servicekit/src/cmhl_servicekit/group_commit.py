"""Group commit: what concurrent callers write goes to the database together.

A request that writes alone pays every round trip of its write. Ten requests arriving together
pay them ten times, and on a loaded machine they queue for the same database anyway. A
`GroupCommit` hands the items of callers who arrive together to one `apply`:

- the first caller starts a batch at once, so a lone request waits for no company and costs what
  a direct call does;
- callers who arrive while a batch runs wait for it to end, then go together in the next one (at
  most `max_batch` items each);
- every caller gets its own item's answer, or, if the batch as a whole fails, its error.

The batch runs in a task of its own, so a caller that gives up (a client that disconnects) does
not cancel the write of the others; its own item is still applied, and its answer dropped.

Tracing: a batch of one runs in its caller's context, exactly as a direct call. A batch of several
serves several traces, so it runs in a span of its own linked to each caller's span (see
`tracing.serving`)."""

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from opentelemetry import trace

from cmhl_servicekit import tracing

Item = TypeVar("Item")
Answer = TypeVar("Answer")


@dataclass(frozen=True)
class _Waiting(Generic[Item, Answer]):
    item: Item
    answer: asyncio.Future[Answer]
    context: contextvars.Context
    span: trace.SpanContext | None


class GroupCommit(Generic[Item, Answer]):
    """`await submit(item)` answers as `apply([item])` would, with concurrent callers' items
    applied together. `apply` answers its items in order, one answer each."""

    def __init__(
        self,
        apply: Callable[[list[Item]], Coroutine[Any, Any, list[Answer]]],
        *,
        span_name: str,
        max_batch: int = 64,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._apply = apply
        self._span_name = span_name
        self._max_batch = max_batch
        self._waiting: list[_Waiting[Item, Answer]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Answer:
        waiting = _Waiting(
            item,
            asyncio.get_running_loop().create_future(),
            contextvars.copy_context(),
            tracing.caller_span(),
        )
        self._waiting.append(waiting)
        if self._writer is None:
            # Created from no caller's context: a batch of several belongs to none of them.
            self._writer = asyncio.create_task(self._write(), context=contextvars.Context())
        try:
            # shield: a caller cancelled stops waiting; the batch (and its item) goes on.
            return await asyncio.shield(waiting.answer)
        except asyncio.CancelledError:
            waiting.answer.add_done_callback(_retrieve)  # nobody will read a batch's error
            raise

    async def _write(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                await self._apply_batch(batch)
        finally:
            # No await since the loop's last check: a caller arriving now starts a new writer.
            self._writer = None

    async def _apply_batch(self, batch: list[_Waiting[Item, Answer]]) -> None:
        try:
            if len(batch) == 1:
                [alone] = batch
                answers: list[Answer] = await asyncio.create_task(
                    self._apply([alone.item]), context=alone.context.copy()
                )
            else:
                with tracing.serving(self._span_name, [w.span for w in batch]):
                    answers = await self._apply([w.item for w in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"apply answered {len(answers)} of {len(batch)} items")
        except Exception as error:
            for waiting in batch:
                if not waiting.answer.done():
                    waiting.answer.set_exception(error)
            return
        except BaseException:
            # Cancelled (the service stops): nobody may wait for an answer that will not come.
            for waiting in [*batch, *self._waiting]:
                if not waiting.answer.done():
                    waiting.answer.set_exception(RuntimeError("the service is stopping"))
            self._waiting.clear()
            raise
        for waiting, answer in zip(batch, answers, strict=True):
            if not waiting.answer.done():
                waiting.answer.set_result(answer)


def _retrieve(answer: asyncio.Future[object]) -> None:
    if not answer.cancelled():
        answer.exception()
