"""The per-document locks the outbox's writers and its relay share (no database)."""

import asyncio

from cmhl_servicekit.outbox import AggregateLocks


async def test_holding_several_documents_keeps_their_writers_waiting_until_released() -> None:
    locks = AggregateLocks(stripes=8)
    order: list[str] = []

    async def writer(document_id: str) -> None:
        async with locks(document_id):
            order.append(f"write {document_id}")

    async with locks.all_of(["a", "b", "c"]):
        writers = [asyncio.create_task(writer(d)) for d in ("a", "c")]
        await asyncio.sleep(0.01)
        order.append("pulled")
    await asyncio.gather(*writers)
    assert order[0] == "pulled"
    assert sorted(order[1:]) == ["write a", "write c"]


async def test_overlapping_holders_and_writers_never_wait_for_each_other() -> None:
    """Few stripes, so documents share them and holders overlap in every order: each takes its
    stripes in one order, so all finish (a deadlock would time out)."""
    locks = AggregateLocks(stripes=3)
    finished = 0

    async def holder(document_ids: list[str]) -> None:
        nonlocal finished
        async with locks.all_of(document_ids):
            await asyncio.sleep(0)
        finished += 1

    async def writer(document_id: str) -> None:
        nonlocal finished
        async with locks(document_id):
            await asyncio.sleep(0)
        finished += 1

    documents = [f"doc-{n}" for n in range(10)]
    work = [holder(documents[n:] + documents[:n]) for n in range(10)]
    work += [holder(list(reversed(documents)))]
    work += [writer(d) for d in documents]
    await asyncio.wait_for(asyncio.gather(*work), timeout=5)
    assert finished == 21
