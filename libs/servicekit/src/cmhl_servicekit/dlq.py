"""Dead letters: list them with their reasons, and re-drive chosen ones after a fix.

    python -m cmhl_servicekit.dlq list TOPIC [--bootstrap HOST:PORT]
    python -m cmhl_servicekit.dlq redrive TOPIC PARTITION:OFFSET [...] [--bootstrap HOST:PORT]

It runs as the operator's admin principal (CMHL_KAFKA_USERNAME, CMHL_KAFKA_PASSWORD,
CMHL_KAFKA_SECURITY_PROTOCOL): no service may read dead letters or write another's topic.
TOPIC is the original topic (its `.dlq` is read). A re-driven record goes back to the original
topic with its original key and bytes; consumers are idempotent, so re-driving one that was
already applied changes nothing. The listing shows reasons and routing, never the record's body.
"""

import argparse
import asyncio
import os
import sys
import uuid
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from cmhl_servicekit.kafka import KafkaAccess


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    @property
    def original_topic(self) -> str:
        return self.headers.get("dlq-original-topic", "")


async def read_dead_letters(access: KafkaAccess, topic: str) -> list[DeadLetter]:
    """Every record on `<topic>.dlq`. Nothing is committed; the throwaway group id is there
    because aiokafka 0.14's group-less consumer can fail its own `stop()`."""
    consumer = AIOKafkaConsumer(
        **access.client_options(),
        enable_auto_commit=False,
        group_id=f"cmhl-dlq-reader-{uuid.uuid4().hex[:8]}",
    )
    admin = AIOKafkaAdminClient(**access.client_options())
    await admin.start()
    try:
        [described] = await admin.describe_topics([f"{topic}.dlq"])
    finally:
        await admin.close()
    if described.get("error_code"):
        raise SystemExit(f"{topic}.dlq does not exist (is {topic} a topic of ours?)")
    assigned = [TopicPartition(f"{topic}.dlq", p["partition"]) for p in described["partitions"]]
    await consumer.start()
    try:
        if not assigned:
            return []
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        letters: list[DeadLetter] = []

        async def unread() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in assigned])

        while await unread():
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                letters.extend(
                    DeadLetter(
                        r.partition,
                        r.offset,
                        r.key,
                        r.value or b"",
                        {k: v.decode(errors="replace") for k, v in r.headers},
                    )
                    for r in records
                )
        return letters
    finally:
        await consumer.stop()


async def redrive(access: KafkaAccess, topic: str, chosen: set[tuple[int, int]]) -> int:
    letters = [
        letter
        for letter in await read_dead_letters(access, topic)
        if (letter.partition, letter.offset) in chosen
    ]
    missing = chosen - {(letter.partition, letter.offset) for letter in letters}
    if missing:
        raise SystemExit(f"not found on {topic}.dlq: {sorted(missing)}; run `list` to see them")
    producer = AIOKafkaProducer(**access.client_options(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for letter in letters:
            await producer.send_and_wait(
                letter.original_topic or topic,
                letter.value,
                key=letter.key,
                headers=[
                    ("redriven-from", f"{topic}.dlq:{letter.partition}:{letter.offset}".encode())
                ],
            )
    finally:
        await producer.stop()
    return len(letters)


def _position(text: str) -> tuple[int, int]:
    partition, _, offset = text.partition(":")
    if not (partition.isdigit() and offset.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not PARTITION:OFFSET")
    return int(partition), int(offset)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["list", "redrive"])
    parser.add_argument(
        "topic", help="the original topic, e.g. cmhl.agency.agency-referral-submitted.v1"
    )
    parser.add_argument("positions", nargs="*", type=_position, help="PARTITION:OFFSET on the .dlq")
    parser.add_argument(
        "--bootstrap", default=os.environ.get("CMHL_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
    args = parser.parse_args(argv)
    access = KafkaAccess.from_env(args.bootstrap)
    if args.command == "list":
        letters = asyncio.run(read_dead_letters(access, args.topic))
        for letter in letters:
            h = letter.headers
            print(
                f"{letter.partition}:{letter.offset}  from {h.get('dlq-original-topic')}"
                f"[{h.get('dlq-original-partition')}]@{h.get('dlq-original-offset')}"
                f"  at {h.get('dlq-at')}  reason: {h.get('dlq-reason')}"
            )
        print(f"{len(letters)} dead letters on {args.topic}.dlq", file=sys.stderr)
    else:
        if not args.positions:
            parser.error("redrive needs at least one PARTITION:OFFSET (see `list`)")
        count = asyncio.run(redrive(access, args.topic, set(args.positions)))
        print(f"re-drove {count} records to {args.topic}")


if __name__ == "__main__":
    main()
