"""What every benchmark shares: the bench stack's addresses and keys, resource sampling of the
stack's processes, percentiles, machine facts and the result file.

Benchmarks run against a stack of their own (`CMHL_BENCH_STATE`, default /tmp/cmhl-bench), never
the shared test stack. The machine is shared and small, so every figure carries the load average
around it and, where possible, is a ratio against a baseline measured in the same run."""

import asyncio
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from cmhl_contracts.counties import MISSOURI_COUNTIES
from cmhl_servicekit.oidc import demo_user
from cmhl_servicekit.testing import kafka_test_access, stack_mongo_uri

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
TMP = Path(tempfile.gettempdir())
STATE = Path(os.environ.get("CMHL_BENCH_STATE", TMP / "cmhl-bench"))
# The code under test: bench/run.sh exports a snapshot of the committed tree there (and puts its
# packages first on PYTHONPATH), so half-finished edits in the shared checkout are not measured.
SRC = Path(os.environ.get("CMHL_BENCH_SRC", REPO))
SERVICES = ("referral", "followup", "training", "reporting", "placement")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# ---------------------------------------------------------------- the bench stack


@dataclass(frozen=True)
class Stack:
    state_dir: Path
    kafka: str
    mongo_uri: str
    pids: dict[str, int]
    ports: dict[str, int]
    creds: dict[str, Any]

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def token(self, username: str) -> str:
        """A demo user's access token (password grant with the stack's test client); valid
        for five minutes, so a benchmark fetches one per measurement."""
        return demo_user(self.creds, username).token()

    def service_env(self, service: str, **overrides: str) -> dict[str, str]:
        """The environment stack.py gives a service (deploy/local/stack.py service_env)."""
        keys = self.creds["keys"]
        values = {
            "KAFKA_BOOTSTRAP": self.kafka,
            "KAFKA_USERNAME": service,
            "KAFKA_PASSWORD": self.creds["kafka_principals"][service],
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "MONGO_URI": self.mongo_uri,
            "AUTH_ISSUER": self.creds["issuer"],
            "AUTH_REFUSED_CLIENTS": "[]",
            "PSEUDONYM_KEY": keys.get(
                "training_pseudonym_key" if service == "training" else "pseudonym_key",
                keys["pseudonym_key"],
            ),
            "ENCRYPTION_KEY": keys["encryption_key"],
            "LOG_LEVEL": "WARNING",
        } | overrides
        prefix = f"CMHL_{service.upper()}_"
        return {prefix + key: value for key, value in values.items()}


def load_stack(state_dir: Path = STATE) -> Stack:
    state = json.loads((state_dir / "stack.json").read_text())
    creds = json.loads((state_dir / "credentials.json").read_text())
    # The benchmarks' own Kafka clients sign in as the stack's admin, as the tests do.
    os.environ["CMHL_TEST_KAFKA_USERNAME"] = "admin"
    os.environ["CMHL_TEST_KAFKA_PASSWORD"] = creds["keys"]["kafka_admin_password"]
    os.environ["CMHL_TEST_KAFKA_SECURITY_PROTOCOL"] = "SASL_PLAINTEXT"
    return Stack(
        state_dir=state_dir,
        kafka=f"127.0.0.1:{state['kafka_port']}",
        mongo_uri=stack_mongo_uri(state_dir),
        pids={name: pid for name, pid in state["pids"].items() if alive(pid)},
        ports=state.get("service_ports", {}),
        creds=creds,
    )


def stack_up(state_dir: Path = STATE) -> Stack:
    """Starts (or keeps) the bench stack with every service; idempotent."""
    subprocess.run(  # noqa: S603 - our own interpreter and stack script
        [
            sys.executable,
            str(SRC / "deploy" / "local" / "stack.py"),
            "up",
            "--services",
            "--free-ports",
            "--state-dir",
            str(state_dir),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return load_stack(state_dir)


def stop_services(stack: Stack) -> None:
    """Stops the stack's services (not Kafka or FerretDB), so a cold projector has the machine
    to itself; `stack_up` starts them again."""
    for name in SERVICES:
        pid = stack.pids.get(name)
        if pid and alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, 15)
    deadline = time.monotonic() + 30
    while any(alive(stack.pids.get(n)) for n in SERVICES) and time.monotonic() < deadline:
        time.sleep(0.2)


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------- processes: CPU and memory


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def process_tree_cpu() -> tuple[dict[int, list[int]], dict[int, float]]:
    """Every process's children, and its CPU seconds with those of its children it has reaped
    (utime + stime + cutime + cstime): PostgreSQL does its work in backend processes under the
    postmaster, which its own CPU time leaves out."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(pid)
        cpu[pid] = sum(int(f) for f in fields[11:15]) / CLK_TCK
    return children, cpu


def tree_cpu_seconds(
    pid: int, children: dict[int, list[int]], cpu: dict[int, float]
) -> float | None:
    """CPU seconds of a process and every descendant, reaped or running."""
    if pid not in cpu:
        return None
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += cpu.get(current, 0.0)
        stack.extend(children.get(current, []))
    return total


def rss_mb(pid: int) -> float | None:
    try:
        resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except OSError:
        return None
    return resident * PAGE / 1_048_576


class Sampler:
    """Samples RSS (peak) and CPU time of named processes in a thread, every `interval` s."""

    def __init__(self, pids: dict[str, int], interval: float = 0.5) -> None:
        self.pids = dict(pids)
        self.pids["bench"] = os.getpid()
        self.peak_rss: dict[str, float] = {}
        self._cpu_start: dict[str, float] = {}
        self._cpu_last: dict[str, float] = {}
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._load_start = os.getloadavg()[0]
        self._started = 0.0
        self.elapsed = 0.0

    @staticmethod
    def load() -> float:
        return round(os.getloadavg()[0], 2)

    def add(self, name: str, pid: int) -> None:
        self.pids[name] = pid
        self._sample_one(name, pid)

    def _sample_one(
        self, name: str, pid: int, tree: tuple[dict[int, list[int]], dict[int, float]] | None = None
    ) -> None:
        rss = rss_mb(pid)
        cpu = tree_cpu_seconds(pid, *(tree or process_tree_cpu()))
        if rss is not None:
            self.peak_rss[name] = max(self.peak_rss.get(name, 0.0), rss)
        if cpu is not None:
            self._cpu_start.setdefault(name, cpu)
            self._cpu_last[name] = cpu

    def _sample(self) -> None:
        tree = process_tree_cpu()
        for name, pid in list(self.pids.items()):
            self._sample_one(name, pid, tree)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> "Sampler":
        self._started = time.monotonic()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._sample()
        self._stop.set()
        self._thread.join()
        self.elapsed = time.monotonic() - self._started

    def cpu_snapshot(self) -> dict[str, float]:
        """CPU seconds so far per process (for per-step deltas)."""
        tree = process_tree_cpu()
        return {
            n: c for n, pid in self.pids.items() if (c := tree_cpu_seconds(pid, *tree)) is not None
        }

    def summary(self) -> dict[str, Any]:
        cpu = {n: round(self._cpu_last[n] - self._cpu_start[n], 2) for n in self._cpu_last}
        total = sum(cpu.values()) or 1.0
        return {
            "seconds": round(self.elapsed, 1),
            "cpu_seconds": cpu,
            "cpu_share": {n: round(c / total, 3) for n, c in cpu.items()},
            "peak_rss_mb": {n: round(r, 1) for n, r in self.peak_rss.items()},
            "load_avg_1m": [round(self._load_start, 2), round(os.getloadavg()[0], 2)],
        }


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {n: round(after[n] - before[n], 2) for n in after if n in before}


def wait_quiet(stack: "Stack", *, below: float = 0.4, timeout: float = 90.0) -> float:
    """Waits until the stack (services, FerretDB, Kafka) together use less than `below` of a
    core over two seconds, so one benchmark's leftover work does not land in the next."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        tree = process_tree_cpu()
        before = [tree_cpu_seconds(pid, *tree) or 0.0 for pid in stack.pids.values()]
        time.sleep(2.0)
        tree = process_tree_cpu()
        after = [tree_cpu_seconds(pid, *tree) or 0.0 for pid in stack.pids.values()]
        if (sum(after) - sum(before)) / 2.0 < below:
            break
    waited = round(time.monotonic() - started, 1)
    say(f"stack quiet after {waited}s" if waited < timeout else f"stack still busy after {waited}s")
    return waited


def stop_others(stack: "Stack", keep: str) -> None:
    """Stops every service but `keep` (for an isolated measurement); `stack_up` restarts them."""
    for name in SERVICES:
        pid = stack.pids.get(name)
        if name != keep and pid and alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, 15)
    deadline = time.monotonic() + 30
    others = [n for n in SERVICES if n != keep]
    while any(alive(stack.pids.get(n)) for n in others) and time.monotonic() < deadline:
        time.sleep(0.2)


def wait_idle(pid: int, *, below: float = 0.15, timeout: float = 120.0) -> float:
    """Waits until a process uses less than `below` of a core over a second (its backlog is
    done); returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        after = cpu_seconds(pid)
        if before is None or after is None or after - before < below:
            break
    return round(time.monotonic() - started, 1)


# ---------------------------------------------------------------- figures


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of unsorted values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def latency_summary_ms(seconds: list[float]) -> dict[str, float | None]:
    return {
        f"p{str(q).replace('.', '_').removesuffix('_0')}": (
            round(v * 1000, 1) if (v := percentile(seconds, q)) is not None else None
        )
        for q in (50.0, 95.0, 99.0, 99.9)
    }


def versions() -> dict[str, str]:
    pom = (SRC / "deploy" / "local" / "kafka" / "pom.xml").read_text()
    gomod = (SRC / "deploy" / "local" / "ferretdb" / "go.mod").read_text()
    kafka = re.search(r"<kafka\.version>([^<]+)<", pom)
    ferret = re.search(r"github.com/FerretDB/FerretDB v(\S+)", gomod)
    return {
        "python": platform.python_version(),
        "kafka": kafka.group(1) if kafka else "?",
        "ferretdb": ferret.group(1) if ferret else "?",
    }


def commit() -> str:
    if given := os.environ.get("CMHL_BENCH_COMMIT"):
        return given
    command = ["git", "rev-parse", "--short", "HEAD"]
    head = subprocess.run(command, cwd=REPO, capture_output=True, text=True)  # noqa: S603
    return head.stdout.strip() + "+worktree"


def machine() -> dict[str, Any]:
    return {
        "commit": commit(),
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PHYS_PAGES") * PAGE / 1024**3, 1),
        **versions(),
    }


def record_size(name: str, size: str, figures: dict[str, Any], samples: int) -> Path:
    """Adds one size's figures to bench/results/<name>.json, next to the other sizes measured
    (10k, full, ...), so they compare in one table."""
    path = RESULTS / f"{name}.json"
    document = json.loads(path.read_text()) if path.exists() else {"benchmark": name}
    document.setdefault("sizes", {})[size] = figures | {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "samples": samples,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n")
    say(f"wrote {path}")
    return path


def write_result(name: str, figures: dict[str, Any], started: float) -> Path:
    """Writes bench/results/<name>.json: figures only, never samples or data."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(time.monotonic() - started, 1),
        "machine": machine(),
        **figures,
    }
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)
    say(f"wrote {path.relative_to(REPO)}")
    return path


# ---------------------------------------------------------------- Kafka offsets


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        **kafka_test_access(bootstrap).client_options(), enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        if len({tp.topic for tp in partitions}) < len(topics):
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
            ]
        offsets: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return offsets
    finally:
        await consumer.stop()


async def committed_by_prefix(admin: AIOKafkaAdminClient, prefix: str) -> dict[TopicPartition, int]:
    """The highest committed offset per partition among the consumer groups with a prefix."""
    groups = [g[0] for g in await admin.list_consumer_groups() if g[0].startswith(prefix)]
    committed: dict[TopicPartition, int] = {}
    for group in groups:
        offsets = await admin.list_consumer_group_offsets(group)
        for tp, meta in offsets.items():
            if meta.offset >= 0:
                committed[tp] = max(committed.get(tp, 0), meta.offset)
    return committed


def remaining(targets: dict[TopicPartition, int], committed: dict[TopicPartition, int]) -> int:
    return sum(max(0, end - committed.get(tp, 0)) for tp, end in targets.items())


# ---------------------------------------------------------------- valid referral bodies

COUNTIES = sorted(MISSOURI_COUNTIES)
NEEDS = ["threat_to_self_or_others", "behavioral_needs", "substance_use", "other"]
LOCATIONS = ["community", "detention", "hospital_er"]


def run_id() -> str:
    return uuid.uuid4().hex[:8]


def referral_body(run: str, n: int, referred_at: datetime | None = None) -> dict[str, Any]:
    """A valid POST /api/v1/referrals body; synthetic identifiers unique per (run, n)."""
    body: dict[str, Any] = {
        "agency": {"agency_id": "bench-pd", "source": "municipal_police"},
        "agency_reference": f"bench-{run}-{n}",
        "county_fips": COUNTIES[n % len(COUNTIES)],
        "primary_need": NEEDS[n % len(NEEDS)],
        "person_location": LOCATIONS[n % len(LOCATIONS)],
        "person": {
            "given_name": "Bench",
            "family_name": f"Person{run}{n}",
            "birth_date": (date(1960, 1, 1) + timedelta(days=n % 15000)).isoformat(),
        },
    }
    if referred_at is not None:
        body["referred_at"] = referred_at.isoformat().replace("+00:00", "Z")
    return body


# ---------------------------------------------------------------- open-loop load


@dataclass
class LoadResult:
    scheduled: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    completions: list[tuple[float, int]] = field(default_factory=list)
    """(monotonic time of each 2xx answer, request number), for freshness."""


async def open_loop(
    client: Any,
    path: str,
    rate: float,
    duration: float,
    body_for: Any,
    headers: dict[str, str],
    *,
    drain_timeout: float = 15.0,
    headers_for: Any = None,
) -> LoadResult:
    """Sends requests at fixed intervals whatever the answers, and times each from its
    *scheduled* start, so queueing (in the client pool or the server) shows in the latency."""
    result = LoadResult()
    tasks: list[asyncio.Task[None]] = []
    start = time.monotonic()

    async def one(n: int, scheduled: float) -> None:
        body = body_for(n)
        try:
            extra = headers_for(n) if headers_for else {}
            response = await client.post(path, json=body, headers=headers | extra)
            status = str(response.status_code)
            if response.status_code in (200, 201):
                result.latencies.append(time.monotonic() - scheduled)
                result.completions.append((time.monotonic(), n))
        except Exception as exc:
            status = type(exc).__name__
        result.statuses[status] = result.statuses.get(status, 0) + 1

    total = int(rate * duration)
    for n in range(total):
        scheduled = start + n / rate
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, scheduled)))
    result.scheduled = total
    _, pending = await asyncio.wait(tasks, timeout=drain_timeout) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    if pending:
        result.statuses["unfinished"] = result.statuses.get("unfinished", 0) + len(pending)
        await asyncio.gather(*pending, return_exceptions=True)
    return result


@contextlib.contextmanager
def stopwatch() -> Iterator[list[float]]:
    box = [time.monotonic()]
    yield box
    box.append(time.monotonic() - box[0])


# ---------------------------------------------------------------- profiles (py-spy)


def start_profile(pid: int, seconds: int, out: Path) -> "subprocess.Popen[bytes]":
    """Samples a process with py-spy (collapsed stacks) without pausing it."""
    py_spy = Path(sys.executable).parent / "py-spy"
    command = [str(py_spy), "record", "-p", str(pid), "-d", str(seconds), "-r", "50"]
    return subprocess.Popen(  # noqa: S603 - py-spy from our own environment
        [*command, "--nonblocking", "-f", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


BUCKETS = (
    ("pymongo", "pymongo/bson (driver)"),
    ("bson", "pymongo/bson (driver)"),
    ("aiokafka", "aiokafka"),
    ("faststream", "faststream"),
    ("pydantic", "pydantic (validation/serialisation)"),
    ("cryptography", "cryptography"),
    ("uvicorn", "uvicorn/starlette/fastapi"),
    ("starlette", "uvicorn/starlette/fastapi"),
    ("fastapi", "uvicorn/starlette/fastapi"),
    ("json", "json"),
    ("logging", "logging"),
    ("cmhl_", "cmhl code"),
    ("asyncio", "asyncio event loop"),
    ("selectors", "asyncio event loop"),
)


def summarize_profile(out: Path, top: int = 8) -> dict[str, Any]:
    """Shares of on-CPU samples: by library of the innermost frame, and the hottest functions."""
    if not out.exists():
        return {"error": "no profile (py-spy needs ptrace rights)"}
    by_bucket: dict[str, int] = {}
    by_function: dict[str, int] = {}
    total = 0
    for line in out.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        leaf = frames[-1]
        where = leaf[leaf.find("(") :] if "(" in leaf else leaf
        bucket = next((label for key, label in BUCKETS if key in where), "other")
        by_bucket[bucket] = by_bucket.get(bucket, 0) + count
        name = re.sub(r":\d+\)", ")", leaf)
        name = re.sub(r"\(.*/(site-packages|src|lib/python3\.\d+)/", "(", name)
        by_function[name] = by_function.get(name, 0) + count
    if not total:
        return {"samples": 0}

    def shares(counts: dict[str, int], n: int) -> dict[str, float]:
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:n]
        return {k: round(v / total, 3) for k, v in ranked}

    return {
        "samples": total,
        "by_library": shares(by_bucket, 12),
        "top_functions": shares(by_function, top),
    }
