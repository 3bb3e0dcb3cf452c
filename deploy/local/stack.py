"""The local stack: installs, starts and stops Apache Kafka (KRaft), PostgreSQL, FerretDB on it,
and the services.

    python deploy/local/stack.py up [--services] [--free-ports] [--state-dir DIR]
    python deploy/local/stack.py down [--state-dir DIR]
    python deploy/local/stack.py status [--state-dir DIR]
    python deploy/local/stack.py rebuild [--state-dir DIR]   (the reporting views, from the log)

Kafka's jars come from Maven Central (deploy/local/kafka/pom.xml) and FerretDB is built with Go
from the module proxy (deploy/local/ferretdb); both are cached under ~/.cache/cmhl by a hash of
their build files, so only the first run downloads. PostgreSQL is Debian's package. State (data, logs, pids, credentials) lives in
a git-ignored state folder. A second `up` while everything runs is a no-op.
"""

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_STATE = HERE / "state"
CACHE = Path(os.environ.get("CMHL_CACHE_DIR", Path.home() / ".cache" / "cmhl"))
KAFKA_HEAP = os.environ.get("CMHL_KAFKA_HEAP", "512m")
# Connection refusals while the broker starts are expected; the readiness loop reports progress.
logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
SERVICES = {
    "referral": 8001,
    "followup": 8002,
    "training": 8003,
    "reporting": 8004,
    "placement": 8005,
}


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def fail(message: str) -> None:
    print(f"[stack] ERROR: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


@dataclass
class StackState:
    kafka_port: int
    controller_port: int
    mongo_port: int
    postgres_port: int = 0
    pids: dict[str, int] = field(default_factory=dict)
    service_ports: dict[str, int] = field(default_factory=dict)

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}/"


def load_state(state_dir: Path) -> StackState | None:
    path = state_dir / "stack.json"
    if not path.exists():
        return None
    return StackState(**json.loads(path.read_text()))


def save_state(state_dir: Path, state: StackState) -> None:
    (state_dir / "stack.json").write_text(json.dumps(asdict(state), indent=2))


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie still answers kill(0); treat it as dead.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(")")[-1].split()[0] != "Z"
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        fail(f"`{name}` is not installed. {hint}")
    assert path is not None
    return path


def digest(*files: Path) -> str:
    h = hashlib.sha256()
    for path in files:
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


# ---------------------------------------------------------------- install (cached)


def chromium() -> None:
    """Debian's chromium for the dashboard's browser test (Playwright drives it through
    `executable_path`; its own browser download is never used). Quiet when present."""
    if not shutil.which("chromium"):
        apt_install("chromium", "for the dashboard test")


def apt_install(package: str, why: str) -> None:
    """Installs one of Debian's packages (first run only), saying why and how long it took."""
    apt = require_tool("apt-get", f"Install {package} with your package manager.")
    sudo = [] if os.geteuid() == 0 else [require_tool("sudo", f"Run as root to install {package}.")]
    say(f"installing {package} with apt-get ({why}, first run only)...")
    started = time.monotonic()
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, apt, "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, apt, "install", "-y", "-qq", package], check=True, env=env)
    say(f"{package} installed ({time.monotonic() - started:.0f}s)")


def kafka_lib() -> Path:
    pom = HERE / "kafka" / "pom.xml"
    lib = CACHE / f"kafka-{digest(pom)}" / "lib"
    if (lib / ".complete").exists():
        return lib
    require_tool(
        "java", "Install a Java 17+ runtime, e.g. `apt-get install openjdk-17-jre-headless`."
    )
    mvn = require_tool("mvn", "Install Maven, e.g. `apt-get install maven`.")
    say(f"resolving Apache Kafka jars from Maven Central into {lib} (first run only)...")
    started = time.monotonic()
    lib.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
            f"-DoutputDirectory={lib}",
            "-DincludeScope=runtime",
        ],
        check=True,
    )
    (lib / ".complete").touch()
    say(
        f"Kafka jars ready ({len(list(lib.glob('*.jar')))} jars, {time.monotonic() - started:.0f}s)"
    )
    return lib


def ferretdb_binary() -> Path:
    source = HERE / "ferretdb"
    build_files = [source / "go.mod", source / "go.sum", source / "patches.toml"]
    binary = CACHE / f"ferretdb-{digest(*build_files, *sorted(source.glob('*.go')))}" / "ferretdb"
    if binary.exists():
        return binary
    go = require_tool(
        "go", "Install Go 1.24+ (https://go.dev/doc/install or `apt-get install golang`)."
    )
    say("building FerretDB 1.24.2 with Go from the module proxy (first run only, ~2 min)...")
    started = time.monotonic()
    build = binary.parent / "build"
    shutil.rmtree(build, ignore_errors=True)
    wrapper = build / "wrapper"
    shutil.copytree(source, wrapper)
    patched = patched_ferretdb(go, wrapper, build / "FerretDB")
    subprocess.run(
        [go, "mod", "edit", f"-replace=github.com/FerretDB/FerretDB={patched}"],
        cwd=wrapper,
        check=True,
    )
    partial = binary.with_suffix(".partial")
    subprocess.run([go, "build", "-o", str(partial), "."], cwd=wrapper, check=True)
    partial.rename(binary)
    shutil.rmtree(build)
    say(f"FerretDB built ({time.monotonic() - started:.0f}s)")
    return binary


def patched_ferretdb(go: str, wrapper: Path, target: Path) -> Path:
    """A copy of the FerretDB module with deploy/local/ferretdb/patches.toml applied (why: there)."""
    listing = subprocess.run(
        [go, "mod", "download", "-json", "github.com/FerretDB/FerretDB"],
        cwd=wrapper,
        check=True,
        capture_output=True,
        text=True,
    )
    # The module cache is read-only; the copy's files are made writable.
    shutil.copytree(json.loads(listing.stdout)["Dir"], target, copy_function=shutil.copyfile)
    for patch in tomllib.loads((wrapper / "patches.toml").read_text())["patch"]:
        path = target / patch["file"]
        text = path.read_text()
        if text.count(patch["old"]) != patch["count"]:
            fail(
                f"FerretDB's {patch['file']} does not contain {patch['old']!r} "
                f"{patch['count']} time(s): check deploy/local/ferretdb/patches.toml "
                "against this FerretDB version."
            )
        path.write_text(text.replace(patch["old"], patch["new"]))
    return target


# ---------------------------------------------------------------- processes


def spawn(
    name: str,
    args: list[str],
    state_dir: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = (logs / f"{name}.log").open("ab")
    process = subprocess.Popen(
        args,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    return process.pid


def log_tail(state_dir: Path, name: str, lines: int = 25) -> str:
    path = state_dir / "logs" / f"{name}.log"
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def stop_pid(name: str, pid: int) -> None:
    if not alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if alive(pid):
        say(f"{name} did not stop in 20s; killing it")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def wait_until(check: Any, what: str, timeout: float, pid: int, state_dir: Path, log: str) -> None:
    started = time.monotonic()
    next_report = started + 10
    while True:
        if check():
            say(f"{what} ready after {time.monotonic() - started:.1f}s")
            return
        if not alive(pid):
            fail(f"{what} exited during start-up. Last log lines:\n{log_tail(state_dir, log)}")
        if time.monotonic() - started > timeout:
            fail(
                f"{what} not ready after {timeout:.0f}s. Last log lines:\n"
                f"{log_tail(state_dir, log)}"
            )
        if time.monotonic() > next_report:
            say(f"waiting for {what} ({time.monotonic() - started:.0f}s)...")
            next_report += 10
        time.sleep(0.5)


# ---------------------------------------------------------------- Kafka


def kafka_properties(state: StackState, data: Path) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{state.controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{state.kafka_port},"
            f"CONTROLLER://127.0.0.1:{state.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{state.kafka_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={data}",
            "num.partitions=3",
            "auto.create.topics.enable=false",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "log.retention.hours=-1",
            "",
        ]
    )


def cluster_id() -> str:
    while True:
        candidate = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode()[:22]
        if not candidate.startswith("-"):
            return candidate


def start_kafka(state: StackState, state_dir: Path) -> int:
    lib = kafka_lib()
    java = require_tool("java", "Install a Java 17+ runtime.")
    home = state_dir / "kafka"
    data = home / "data"
    home.mkdir(parents=True, exist_ok=True)
    properties = home / "server.properties"
    properties.write_text(kafka_properties(state, data))
    classpath = f"{lib}/*"
    if not (data / "meta.properties").exists():
        id_file = home / "cluster-id"
        if not id_file.exists():
            id_file.write_text(cluster_id())
        subprocess.run(
            [
                java,
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "-g",
                "-t",
                id_file.read_text().strip(),
                "-c",
                str(properties),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    log4j = HERE / "kafka" / "log4j2.properties"
    return spawn(
        "kafka",
        [
            java,
            f"-Xmx{KAFKA_HEAP}",
            f"-Xms{KAFKA_HEAP}",
            "-XX:+UseG1GC",
            f"-Dkafka.logs.dir={state_dir / 'logs'}",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            classpath,
            "kafka.Kafka",
            str(properties),
        ],
        state_dir,
    )


async def _kafka_metadata(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.describe_cluster()
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def kafka_ready(bootstrap: str) -> bool:
    return asyncio.run(_kafka_metadata(bootstrap))


def declared_topics() -> dict[str, int]:
    """Topic -> partitions, from deploy/topics.toml; every contract topic must be declared."""
    from cmhl_servicekit.topics import declared_topics as from_declarations

    try:
        return from_declarations(tomllib.loads((REPO / "deploy" / "topics.toml").read_text()))
    except ValueError as exc:
        fail(str(exc))
        raise


def create_topics(bootstrap: str) -> None:
    # The same code path as compose's topics service and the Kubernetes topics Job.
    from cmhl_servicekit.topics import create_topics as create_missing

    topics = declared_topics()
    created = asyncio.run(create_missing(bootstrap, topics))
    say(f"topics: {len(created)} created, all {len(topics)} declared topics present")


# ---------------------------------------------------------------- PostgreSQL

# The OS user PostgreSQL runs as when the stack runs as root (PostgreSQL refuses root); Debian's
# package creates it. As any other user, PostgreSQL runs as that user.
POSTGRES_USER = "postgres"
POSTGRES_DATABASE = "cmhl"  # also spelled out in postgres_ready's two statements
POSTGRES_ROLE = "ferretdb"
# Settings for a local and test database on a small machine. Custom plans always: FerretDB sends
# the field name as a parameter (`_jsonb->$1`), and only a plan made for the actual name can use
# the expression index on that field. synchronous_commit=off can lose the last few hundred
# milliseconds of commits if PostgreSQL itself crashes (never if FerretDB or a client does), the
# same trade the SQLite backend made; production runs MongoDB with its own durability settings.
POSTGRES_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "plan_cache_mode": "force_custom_plan",
    "synchronous_commit": "off",
    "shared_buffers": "256MB",
    # The planner picks an index by the statistics autovacuum gathers; after a bulk load (a
    # test's fixture, an import) they should be there within seconds, not after a minute.
    "autovacuum_naptime": "1s",
    "autovacuum_analyze_threshold": "100",
    "autovacuum_analyze_scale_factor": "0.02",
    "random_page_cost": "1.1",
    "max_connections": "300",
    # Errors the services expect (a duplicate key is how an insert-only claim loses a race) are
    # not logged, nor the values of a failing key, which could carry an identifier.
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",
    "log_error_verbosity": "terse",
}


def postgres_bin() -> Path:
    """Debian's PostgreSQL server binaries, installed with apt-get when missing."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if found:
        return found[-1].parent
    apt_install("postgresql", "the database FerretDB stores in")
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found:
        fail("apt-get installed postgresql but /usr/lib/postgresql/*/bin/postgres is missing")
    return found[-1].parent


def as_postgres_user(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return [require_tool("runuser", "Install util-linux."), "-u", POSTGRES_USER, "--", *args]


def reachable_by_postgres_user(folder: Path) -> None:
    """PostgreSQL's data lives in the state folder; the postgres OS user must be able to pass
    through every folder above it. Where one is closed to others (a 0700 home or pytest's
    temporary folders), it gets the traverse bit only: its listing and files stay closed."""
    if os.geteuid() != 0:
        return
    for parent in [folder, *folder.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            say(f"letting the postgres OS user pass through {parent} (chmod o+x)")
            parent.chmod(mode | 0o001)


def init_postgres(state_dir: Path, password: str) -> Path:
    """A cluster of the stack's own in the state folder (mode 0700, owned by the postgres OS user),
    C locale so strings compare bytewise as in MongoDB, password authentication over TCP."""
    bin_dir = postgres_bin()
    root = state_dir / "postgresql"
    data = root / "data"
    if (data / "PG_VERSION").exists():
        return data
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    if os.geteuid() == 0:
        shutil.chown(root, POSTGRES_USER, POSTGRES_USER)
        reachable_by_postgres_user(root.parent)
    say("initialising PostgreSQL's data folder (first start of this state folder only)")
    pwfile = root / "initial-password"
    pwfile.write_text(password)
    if os.geteuid() == 0:
        shutil.chown(pwfile, POSTGRES_USER, POSTGRES_USER)
    subprocess.run(
        as_postgres_user(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                POSTGRES_ROLE,
                f"--pwfile={pwfile}",
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--locale=C",
                "--encoding=UTF8",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    pwfile.unlink()
    return data


def start_postgres(state: StackState, state_dir: Path, password: str) -> int:
    data = init_postgres(state_dir, password)
    settings = [f"--{key}={value}" for key, value in POSTGRES_SETTINGS.items()]
    return spawn(
        "postgresql",
        as_postgres_user(
            [
                str(postgres_bin() / "postgres"),
                "-D",
                str(data),
                "-p",
                str(state.postgres_port),
                # The socket stays in the data folder, away from the system's /var/run.
                f"--unix_socket_directories={data}",
                *settings,
            ]
        ),
        state_dir,
    )


def postgres_ready(state: StackState, password: str) -> bool:
    """Ready once the database FerretDB uses exists (created here on the first start)."""
    env = os.environ | {"PGPASSWORD": password}
    base = [
        str(postgres_bin() / "psql"),
        "-h",
        "127.0.0.1",
        "-p",
        str(state.postgres_port),
        "-U",
        POSTGRES_ROLE,
        "-d",
        "postgres",
        "-tAq",
        "-c",
    ]
    found = subprocess.run(
        [*base, "SELECT 1 FROM pg_database WHERE datname = 'cmhl'"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        return False
    if found.stdout.strip() != "1":
        subprocess.run([*base, "CREATE DATABASE cmhl"], env=env, check=True)
    return True


# ---------------------------------------------------------------- FerretDB


def start_ferretdb(state: StackState, state_dir: Path, password: str) -> int:
    binary = ferretdb_binary()
    url = (
        f"postgres://{POSTGRES_ROLE}:{password}@127.0.0.1:{state.postgres_port}/{POSTGRES_DATABASE}"
    )
    return spawn(
        "ferretdb",
        [str(binary), f"-listen-addr=127.0.0.1:{state.mongo_port}", "-handler=postgresql"],
        state_dir,
        # In the environment, not the command line, where every local user could read it.
        env={"CMHL_FERRETDB_POSTGRESQL_URL": url},
    )


def mongo_ready(port: int) -> bool:
    # The wire protocol: a TCP connect that FerretDB accepts means its listener is up; the services'
    # own readiness probes then ping through the driver.
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


# ---------------------------------------------------------------- credentials and services


def credentials(state_dir: Path) -> dict[str, Any]:
    path = state_dir / "credentials.json"
    if path.exists():
        stored: dict[str, Any] = json.loads(path.read_text())
        if "facility_api_keys" not in stored:  # a state folder from before the placement service
            add_facility_keys(stored)
            path.write_text(json.dumps(stored, indent=2))
        if "database_password" not in stored["keys"]:  # from before the PostgreSQL backend
            stored["keys"]["database_password"] = secrets.token_urlsafe(24)
            path.write_text(json.dumps(stored, indent=2))
        if "training_pseudonym_key" not in stored["keys"]:  # from when services shared one
            # The training service keeps the key its stored officer ids were made with.
            stored["keys"]["training_pseudonym_key"] = stored["keys"]["pseudonym_key"]
            path.write_text(json.dumps(stored, indent=2))
        return stored
    sys.path.insert(0, str(REPO / "libs" / "servicekit" / "src"))
    from cmhl_servicekit.auth import Role, TokenSettings, mint_token

    keys = {
        "auth_signing_key": secrets.token_urlsafe(32),
        "pseudonym_key": secrets.token_urlsafe(32),  # the referral service's
        "training_pseudonym_key": secrets.token_urlsafe(32),
        "encryption_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "database_password": secrets.token_urlsafe(24),
    }
    token_settings = TokenSettings("cmhl-local", "cmhl", keys["auth_signing_key"])
    lifetime = timedelta(days=30)
    demo_people = {  # credential name -> (subject, role, CMHC)
        "liaison": ("liaison-01", Role.LIAISON, "cmhc-01"),
        "supervisor": ("supervisor-01", Role.SUPERVISOR, "cmhc-01"),
        "metrics_consumer": ("dmh-analyst", Role.METRICS_CONSUMER, None),
        "privacy_officer": ("privacy-officer", Role.PRIVACY_OFFICER, None),
    }
    tokens = {
        name: mint_token(
            token_settings, subject=subject, roles=[role], cmhc_id=cmhc, lifetime=lifetime
        )
        for name, (subject, role, cmhc) in demo_people.items()
    }
    from cmhl_servicekit.auth import api_key_hash

    agency_key = secrets.token_urlsafe(24)
    keys["agency_api_keys"] = json.dumps({api_key_hash(agency_key): "columbia-pd"})
    creds = {
        "keys": keys,
        "tokens": tokens,
        "agency_api_key": {"agency_id": "columbia-pd", "key": agency_key},
        "note": "Demo credentials for the local stack only. Never use them elsewhere.",
    }
    add_facility_keys(creds)
    path.write_text(json.dumps(creds, indent=2))
    path.chmod(0o600)
    return creds


def add_facility_keys(creds: dict[str, Any]) -> None:
    """One API key per demo facility of the placement service, bound to that facility; the
    service gets only their SHA-256 hashes."""
    sys.path.insert(0, str(REPO / "libs" / "servicekit" / "src"))
    sys.path.insert(0, str(REPO / "contracts" / "src"))
    sys.path.insert(0, str(REPO / "services" / "placement" / "src"))
    from cmhl_placement.domain.demo import DEMO_FACILITIES
    from cmhl_servicekit.auth import api_key_hash

    keys = {f.facility_id: secrets.token_urlsafe(24) for f in DEMO_FACILITIES}
    creds["facility_api_keys"] = keys
    creds["keys"]["facility_api_keys"] = json.dumps(
        {api_key_hash(key): facility for facility, key in keys.items()}
    )


def service_env(name: str, state: StackState, creds: dict[str, Any]) -> dict[str, str]:
    prefix = f"CMHL_{name.upper()}_"
    keys = creds["keys"]
    values = {
        "KAFKA_BOOTSTRAP": state.kafka_bootstrap,
        "MONGO_URI": state.mongo_uri,
        "HTTP_PORT": str(state.service_ports[name]),
        "AUTH_SIGNING_KEY": keys["auth_signing_key"],
        # Each service its own pseudonym key: one leaked key links only that service's ids.
        "PSEUDONYM_KEY": keys["training_pseudonym_key" if name == "training" else "pseudonym_key"],
        "ENCRYPTION_KEY": keys["encryption_key"],
        "AGENCY_API_KEYS": keys["agency_api_keys"],
        "FACILITY_API_KEYS": keys.get("facility_api_keys", "{}"),
    }
    return {prefix + key: value for key, value in values.items()}


def http_ok(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
        return bool(response.status == 200)
    return False


def start_services(state: StackState, state_dir: Path) -> None:
    creds = credentials(state_dir)
    for name, port in SERVICES.items():
        state.service_ports.setdefault(name, port)
        if alive(state.pids.get(name)):
            say(f"{name} already running on :{state.service_ports[name]}")
            continue
        state.pids[name] = spawn(
            name,
            [sys.executable, "-m", f"cmhl_{name}"],
            state_dir,
            env=service_env(name, state, creds),
            cwd=REPO,
        )
        save_state(state_dir, state)
    for name in SERVICES:
        url = f"http://127.0.0.1:{state.service_ports[name]}/health/ready"
        wait_until(
            lambda u=url: http_ok(u), f"{name} service", 90, state.pids[name], state_dir, name
        )


# ---------------------------------------------------------------- commands


def ensure_started(
    state: StackState, state_dir: Path, name: str, what: str, start: Callable[[], int]
) -> None:
    """Starts a part unless it runs already (a second `up` is a no-op), and records its pid."""
    if alive(state.pids.get(name)):
        say(f"already running: {what}")
        return
    say(f"starting {what}")
    state.pids[name] = start()
    save_state(state_dir, state)


def up(state_dir: Path, with_services: bool, free_ports: bool) -> StackState:
    state_dir.mkdir(parents=True, exist_ok=True)
    state = load_state(state_dir)
    if state is None:
        state = (
            StackState(free_port(), free_port(), free_port(), free_port())
            if free_ports
            else StackState(9092, 9093, 27017, 5433)
        )
        save_state(state_dir, state)
    if not state.postgres_port:  # a state folder from before the PostgreSQL backend
        state.postgres_port = free_port() if free_ports else 5433
    password = credentials(state_dir)["keys"]["database_password"]
    ensure_started(
        state,
        state_dir,
        "kafka",
        f"Apache Kafka on {state.kafka_bootstrap} (KRaft, heap {KAFKA_HEAP})",
        lambda: start_kafka(state, state_dir),
    )
    ensure_started(
        state,
        state_dir,
        "postgresql",
        f"PostgreSQL on 127.0.0.1:{state.postgres_port}",
        lambda: start_postgres(state, state_dir, password),
    )
    wait_until(
        lambda: postgres_ready(state, password),
        "PostgreSQL",
        60,
        state.pids["postgresql"],
        state_dir,
        "postgresql",
    )
    ensure_started(
        state,
        state_dir,
        "ferretdb",
        f"FerretDB on {state.mongo_uri} (PostgreSQL backend)",
        lambda: start_ferretdb(state, state_dir, password),
    )
    wait_until(
        lambda: mongo_ready(state.mongo_port),
        "FerretDB",
        60,
        state.pids["ferretdb"],
        state_dir,
        "ferretdb",
    )
    wait_until(
        lambda: kafka_ready(state.kafka_bootstrap),
        "Kafka",
        180,
        state.pids["kafka"],
        state_dir,
        "kafka",
    )
    create_topics(state.kafka_bootstrap)
    if free_ports:
        for name in SERVICES:
            state.service_ports.setdefault(name, free_port())
    if with_services:
        start_services(state, state_dir)
    save_state(state_dir, state)
    (state_dir / "test.env").write_text(
        f"CMHL_TEST_KAFKA_BOOTSTRAP={state.kafka_bootstrap}\n"
        f"CMHL_TEST_MONGO_URI={state.mongo_uri}\n"
    )
    return state


def down(state_dir: Path) -> None:
    state = load_state(state_dir)
    if state is None:
        say("nothing to stop")
        return
    # Services first, so they do not log connection errors for the broker going away.
    for name in [*SERVICES, "ferretdb", "postgresql", "kafka"]:
        pid = state.pids.pop(name, None)
        if pid and alive(pid):
            say(f"stopping {name} (pid {pid})")
            stop_pid(name, pid)
    save_state(state_dir, state)
    say("stopped")


def status(state_dir: Path) -> None:
    state = load_state(state_dir)
    if state is None:
        say("not started")
        return
    for name, pid in state.pids.items():
        say(f"{name:10} pid {pid:>7}  {'running' if alive(pid) else 'stopped'}")


def rebuild(state_dir: Path) -> None:
    """Rebuilds the reporting views from the topics (cmhl_reporting.rebuild, with the settings
    the running reporting service has), while the service keeps serving the current ones."""
    state = load_state(state_dir)
    if state is None or not alive(state.pids.get("kafka")) or not alive(state.pids.get("ferretdb")):
        fail("the stack is not running: `make up` first")
    assert state is not None
    state.service_ports.setdefault("reporting", SERVICES["reporting"])
    env = {**os.environ, **service_env("reporting", state, credentials(state_dir))}
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "cmhl_reporting.rebuild"], env=env, check=True)
    say(f"views rebuilt in {time.monotonic() - started:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "status", "install", "rebuild"])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)
    parser.add_argument("--services", action="store_true", help="also start the four services")
    parser.add_argument(
        "--free-ports",
        action="store_true",
        help="pick free ports (for tests) instead of the fixed local ones",
    )
    args = parser.parse_args()
    state_dir = args.state_dir.resolve()
    if args.command == "install":
        kafka_lib()
        ferretdb_binary()
        postgres_bin()
        chromium()
    elif args.command == "up":
        up(state_dir, args.services, args.free_ports)
    elif args.command == "down":
        down(state_dir)
    elif args.command == "rebuild":
        rebuild(state_dir)
    else:
        status(state_dir)


if __name__ == "__main__":
    main()
