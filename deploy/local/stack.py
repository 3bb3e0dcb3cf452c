"""The local stack: installs, starts and stops Apache Kafka (KRaft), PostgreSQL, FerretDB on it,
Keycloak (the OpenID Connect provider, also on PostgreSQL) and the services.

    python deploy/local/stack.py install [--for-tests]   (also the tests' browser and PDF tools)
    python deploy/local/stack.py up [--services] [--free-ports] [--state-dir DIR]
    python deploy/local/stack.py down [--state-dir DIR]
    python deploy/local/stack.py status [--state-dir DIR]
    python deploy/local/stack.py rebuild [--state-dir DIR]   (the reporting views, from the log)

Kafka's jars and Keycloak's server come from Maven Central (deploy/local/kafka/pom.xml,
KEYCLOAK_VERSION) and FerretDB is built with Go from the module proxy (deploy/local/ferretdb); all
are cached under ~/.cache/cmhl by a hash of their build inputs, so only the first run downloads.
PostgreSQL is Debian's package. State (data, logs, pids, credentials) lives in a git-ignored
state folder. A second `up` while everything runs is a no-op (its install check included, once
everything is cached).
"""

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from cmhl_servicekit.database_access import DatabaseUser
    from cmhl_servicekit.kafka import KafkaAccess
    from cmhl_servicekit.kafka_access import Grant

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_STATE = HERE / "state"
CACHE = Path(os.environ.get("CMHL_CACHE_DIR", Path.home() / ".cache" / "cmhl"))
KAFKA_HEAP = os.environ.get("CMHL_KAFKA_HEAP", "512m")
# Connection refusals while the broker starts are expected; the readiness loop reports progress.
logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
KEYCLOAK_VERSION = "26.7.3"
KEYCLOAK_BUILD = ["--db=postgres", "--health-enabled=true"]
REALM = "cmhl"
# The realm as code: roles, the token and session policy, the second factor, the clients and the
# demo users, with ${VARIABLE} placeholders for secrets (Keycloak's own import syntax, which
# compose uses; here realm_document fills them from the credentials file).
REALM_FILE = HERE / "keycloak" / "cmhl-realm.json"
TEST_CLIENT = "cmhl-test"
# Local demo users sign in without a second factor unless CMHL_DEMO_USERS_MFA=required.
DEMO_MFA_EXEMPT_ROLE = "mfa_exempt"
SERVICES = {
    "referral": 8001,
    "followup": 8002,
    "training": 8003,
    "reporting": 8004,
    "placement": 8005,
    "notifications": 8007,
    # The pages, over the other services' APIs: it starts last.
    "workspace": 8006,
}


def say(message: str) -> None:
    # One write per line: the installs run side by side, and print's separate write of the
    # newline let two threads' lines run together.
    sys.stdout.write(f"[stack] {message}\n")
    sys.stdout.flush()


def fail(message: str) -> None:
    sys.stderr.write(f"[stack] ERROR: {message}\n")  # one write, as in say()
    sys.stderr.flush()
    raise SystemExit(1)


@dataclass
class StackState:
    kafka_port: int
    controller_port: int
    mongo_port: int
    postgres_port: int = 0
    keycloak_port: int = 0
    keycloak_management_port: int = 0
    smtp_port: int = 0
    prometheus_port: int = 0
    pids: dict[str, int] = field(default_factory=dict)
    service_ports: dict[str, int] = field(default_factory=dict)

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def mongo_address(self) -> str:
        return f"127.0.0.1:{self.mongo_port}"

    def mongo_uri(self, user: str, password: str) -> str:
        """A database user's URI. FerretDB takes SASL PLAIN and passes the user on to PostgreSQL
        (ADR 0011); production's MongoDB takes SCRAM, a setting of the URI, not of the code."""
        return f"mongodb://{user}:{password}@{self.mongo_address}/?authMechanism=PLAIN"

    @property
    def keycloak_url(self) -> str:
        return f"http://127.0.0.1:{self.keycloak_port}"

    @property
    def issuer(self) -> str:
        return f"{self.keycloak_url}/realms/{REALM}"


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


def postgres_installed() -> bool:
    return any(Path("/usr/lib/postgresql").glob("*/bin/postgres"))


# Debian's packages the stack needs: how to tell each is there (where the code that uses it
# looks) and why it is needed. The tests' own are installed only for `make test`
# (`install --for-tests`).
STACK_PACKAGES: dict[str, tuple[Callable[[], object], str]] = {
    "postgresql": (postgres_installed, "the database FerretDB stores in"),
    "prometheus": (
        lambda: shutil.which("prometheus"),
        "the metrics server that scrapes every service",
    ),
}
TEST_PACKAGES: dict[str, tuple[Callable[[], object], str]] = {
    # Playwright drives Debian's chromium through `executable_path` (or CMHL_CHROMIUM's); its
    # own browser download is never used.
    "chromium": (
        lambda: os.environ.get("CMHL_CHROMIUM") or shutil.which("chromium"),
        "the browser tests",
    ),
    "poppler-utils": (lambda: shutil.which("pdftoppm"), "the annual report's PDF test"),
}


def missing_packages(for_tests: bool) -> dict[str, str]:
    """The packages not installed yet, each with why it is needed."""
    wanted = STACK_PACKAGES | (TEST_PACKAGES if for_tests else {})
    return {package: why for package, (installed, why) in wanted.items() if not installed()}


def apt_install(packages: dict[str, str]) -> None:
    """Installs Debian's packages in one apt-get run (first run only), saying why and how long
    it took. apt-get's own output goes to a log, shown if it fails: it runs beside the other
    installs, whose progress lines it would bury."""
    if not packages:
        return
    names = sorted(packages)
    apt = require_tool("apt-get", f"Install {', '.join(names)} with your package manager.")
    sudo = (
        []
        if os.geteuid() == 0
        else [require_tool("sudo", f"Run as root to install {', '.join(names)}.")]
    )
    say(
        "installing with apt-get (first run only): "
        + "; ".join(f"{name} ({packages[name]})" for name in names)
    )
    started = time.monotonic()
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    CACHE.mkdir(parents=True, exist_ok=True)
    log = CACHE / "apt-get.log"
    with log.open("w") as output:
        for step in (["update", "-qq"], ["install", "-y", "-qq", *names]):
            done = subprocess.run(
                [*sudo, apt, *step], env=env, stdout=output, stderr=subprocess.STDOUT
            )
            if done.returncode != 0:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                fail(
                    f"apt-get {step[0]} failed (exit {done.returncode}); its output ends:\n"
                    f"{tail}\nThe whole output is in {log}. Install {', '.join(names)} by hand "
                    "and run the command again."
                )
    say(f"{', '.join(names)} installed ({time.monotonic() - started:.0f}s)")


def install(for_tests: bool) -> None:
    """What the stack runs (and with `for_tests` what the tests use), fetched and built side by
    side. FerretDB's Go build is bound by the CPU while Maven's and apt-get's downloads wait on
    the network: one after another they made `make up` on a fresh machine take 295 s. Maven's
    two steps run in order, as they share the local repository. Each step is a no-op once
    cached. Every step that failed is named; a step not begun yet is not begun after one fails
    or after Ctrl-C."""
    started = time.monotonic()

    def from_maven() -> None:
        kafka_lib()
        keycloak_home()

    steps: dict[str, Callable[[], object]] = {
        "FerretDB's build": ferretdb_binary,
        "Kafka's and Keycloak's download": from_maven,
        "apt-get": lambda: apt_install(missing_packages(for_tests)),
    }
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(steps))
    try:
        jobs = {name: pool.submit(step) for name, step in steps.items()}
        concurrent.futures.wait(jobs.values())
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    failed = {name: job.exception() for name, job in jobs.items() if job.exception() is not None}
    for name, error in failed.items():
        # fail() has said why already; anything else says it here.
        detail = "see above" if isinstance(error, SystemExit) else str(error)
        say(f"ERROR: {name} failed ({detail})")
    if failed:
        raise SystemExit(1)
    if time.monotonic() - started > 1:
        say(f"installed in {time.monotonic() - started:.0f}s")


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


# The stack runs FerretDB on PostgreSQL only: leaving its SQLite backend out (FerretDB's own build
# tag) spares compiling the SQLite engine, a fresh build 76 -> 55 s on two cores.
FERRETDB_BUILD_TAGS = "ferretdb_no_sqlite"


def ferretdb_binary() -> Path:
    source = HERE / "ferretdb"
    build_files = [source / "go.mod", source / "go.sum", source / "patches.toml"]
    inputs = digest(*build_files, *sorted(source.glob("*.go")))
    binary = CACHE / f"ferretdb-{inputs}-{FERRETDB_BUILD_TAGS}" / "ferretdb"
    if binary.exists():
        return binary
    go = require_tool(
        "go", "Install Go 1.24+ (https://go.dev/doc/install or `apt-get install golang`)."
    )
    say("building FerretDB 1.24.2 with Go from the module proxy (first run only, ~1 min)...")
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
    subprocess.run(
        [go, "build", "-tags", FERRETDB_BUILD_TAGS, "-o", str(partial), "."],
        cwd=wrapper,
        check=True,
    )
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


def keycloak_home() -> Path:
    """Keycloak's server from Maven Central, unpacked and built once (`kc.sh build` fixes the
    build-time options: PostgreSQL, health endpoints) so each start is `start --optimized`."""
    options = hashlib.sha256(" ".join(KEYCLOAK_BUILD).encode()).hexdigest()[:8]
    home = CACHE / f"keycloak-{KEYCLOAK_VERSION}-{options}"
    if (home / ".complete").exists():
        return home
    mvn = require_tool("mvn", "Install Maven, e.g. `apt-get install maven`.")
    say(f"fetching Keycloak {KEYCLOAK_VERSION} from Maven Central (first run only, 177 MB)...")
    started = time.monotonic()
    shutil.rmtree(home, ignore_errors=True)
    download = home.with_suffix(".download")
    shutil.rmtree(download, ignore_errors=True)
    download.mkdir(parents=True)
    subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy",
            f"-Dartifact=org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:zip",
            f"-DoutputDirectory={download}",
        ],
        check=True,
    )
    shutil.unpack_archive(next(download.glob("*.zip")), download)
    unpacked = download / f"keycloak-{KEYCLOAK_VERSION}"
    for script in (unpacked / "bin").glob("*.sh"):
        script.chmod(0o755)
    say("building Keycloak for PostgreSQL (first run only, ~25 s)...")
    subprocess.run(
        [str(unpacked / "bin" / "kc.sh"), "build", *KEYCLOAK_BUILD],
        check=True,
        env=os.environ | {"JAVA_HOME": str(keycloak_java())},
        stdout=subprocess.DEVNULL,
    )
    unpacked.rename(home)
    shutil.rmtree(download)
    (home / ".complete").touch()
    say(f"Keycloak ready to start ({time.monotonic() - started:.0f}s)")
    return home


def keycloak_java() -> Path:
    """The newest JDK under /usr/lib/jvm (Keycloak recommends 25; 17 and 21 are supported), else
    the one `java` on PATH belongs to."""
    found: list[tuple[int, Path]] = []
    for release in Path("/usr/lib/jvm").glob("*/release"):
        match = re.search(r'JAVA_VERSION="(\d+)', release.read_text(errors="replace"))
        if match and (release.parent / "bin" / "java").exists():
            found.append((int(match.group(1)), release.parent))
    if found:
        return max(found)[1]
    java = Path(require_tool("java", "Install a Java 17+ runtime (21 or 25 preferred)."))
    return java.resolve().parents[1]


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


# Clients sign in with SCRAM-SHA-512 over the loopback interface (production: SASL_SSL, ADR
# 0010); the controller listener takes SASL/PLAIN with a password only this file holds (KRaft's
# controllers cannot use SCRAM: its credentials live in the metadata they serve).
KAFKA_PROTOCOL: Final = "SASL_PLAINTEXT"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"
PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule"


def kafka_properties(state: StackState, data: Path, keys: dict[str, str] | None) -> str:
    """The broker's settings; `keys` None gives the unsecured settings of a state folder from
    before ADR 0010, used once to give it its admin credential (see migrate_kafka)."""
    if keys is None:
        listeners = [
            f"listeners=PLAINTEXT://127.0.0.1:{state.kafka_port},"
            f"CONTROLLER://127.0.0.1:{state.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{state.kafka_port}",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        ]
    else:
        admin, controller = keys["kafka_admin_password"], keys["kafka_controller_password"]
        listeners = [
            f"listeners=CLIENT://127.0.0.1:{state.kafka_port},"
            f"CONTROLLER://127.0.0.1:{state.controller_port}",
            f"advertised.listeners=CLIENT://127.0.0.1:{state.kafka_port}",
            "inter.broker.listener.name=CLIENT",
            f"listener.security.protocol.map=CLIENT:{KAFKA_PROTOCOL},CONTROLLER:SASL_PLAINTEXT",
            "listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
            "listener.name.client.scram-sha-512.sasl.jaas.config="
            f'{SCRAM_LOGIN} required username="admin" password="{admin}";',
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            "sasl.mechanism.controller.protocol=PLAIN",
            "listener.name.controller.plain.sasl.jaas.config="
            f'{PLAIN_LOGIN} required username="controller" password="{controller}" '
            f'user_controller="{controller}";',
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users=User:admin;User:controller",
            "allow.everyone.if.no.acl.found=false",
        ]
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{state.controller_port}",
            *listeners,
            "controller.listener.names=CONTROLLER",
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


def start_kafka(state: StackState, state_dir: Path, keys: dict[str, str]) -> int:
    lib = kafka_lib()
    java = require_tool("java", "Install a Java 17+ runtime.")
    home = state_dir / "kafka"
    data = home / "data"
    home.mkdir(parents=True, exist_ok=True)
    properties = home / "server.properties"
    classpath = f"{lib}/*"
    secured = home / "secured"
    if (data / "meta.properties").exists() and not secured.exists():
        migrate_kafka(state, state_dir, java, classpath, keys)
    properties.write_text(kafka_properties(state, data, keys))
    properties.chmod(0o600)  # it holds the admin's and the controller's passwords
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
                # The admin's SCRAM credential, in the metadata from the start: the broker signs
                # in to itself with it; every other principal is created by kafka_access.apply.
                "--add-scram",
                f"SCRAM-SHA-512=[name=admin,password={keys['kafka_admin_password']}]",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    secured.touch()
    return spawn("kafka", kafka_java(java, classpath, state_dir, properties), state_dir)


def kafka_java(java: str, classpath: str, state_dir: Path, properties: Path) -> list[str]:
    log4j = HERE / "kafka" / "log4j2.properties"
    return [
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
    ]


def migrate_kafka(
    state: StackState, state_dir: Path, java: str, classpath: str, keys: dict[str, str]
) -> None:
    """A state folder from before ADR 0010 holds an unsecured cluster, whose metadata has no
    admin credential to sign in with: it is started once as it was, given the admin's SCRAM
    credential over its old listener, and stopped; then it starts secured, history kept."""
    from aiokafka.admin import AIOKafkaAdminClient

    from cmhl_servicekit.kafka_access import set_credentials

    say("Kafka: giving this state folder's cluster its admin credential (once, ADR 0010)")
    home = state_dir / "kafka"
    legacy = home / "server-unsecured.properties"
    legacy.write_text(kafka_properties(state, home / "data", None))
    process = subprocess.Popen(
        kafka_java(java, classpath, state_dir, legacy),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    async def give_credential() -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=state.kafka_bootstrap, request_timeout_ms=5000
        )
        await admin.start()
        try:
            await set_credentials(admin, {"admin": keys["kafka_admin_password"]})
        finally:
            await admin.close()

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                asyncio.run(give_credential())
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    fail("Kafka did not start to receive its admin credential: see logs/")
                time.sleep(1)
    finally:
        process.terminate()
        process.wait(60)
        legacy.unlink()
    (home / "secured").touch()


def admin_access(state: StackState, keys: dict[str, str]) -> "KafkaAccess":
    from cmhl_servicekit.kafka import KafkaAccess

    return KafkaAccess(state.kafka_bootstrap, "admin", keys["kafka_admin_password"], KAFKA_PROTOCOL)


async def _kafka_metadata(access: "KafkaAccess") -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**access.client_options(), request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.describe_cluster()
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def kafka_ready(access: "KafkaAccess") -> bool:
    return asyncio.run(_kafka_metadata(access))


def declared_topics() -> dict[str, int]:
    """Topic -> partitions, from deploy/topics.toml; every contract topic must be declared."""
    from cmhl_servicekit.topics import declared_topics as from_declarations

    try:
        return from_declarations(tomllib.loads((REPO / "deploy" / "topics.toml").read_text()))
    except ValueError as exc:
        fail(str(exc))
        raise


def kafka_feedback_agencies() -> list[str]:
    """The agencies that read feedback on their own topic, from deploy/topics.toml."""
    from cmhl_servicekit.topics import feedback_agencies

    return feedback_agencies(tomllib.loads((REPO / "deploy" / "topics.toml").read_text()))


def create_topics(access: "KafkaAccess") -> None:
    # The same code path as compose's topics service and the Kubernetes topics Job.
    from cmhl_servicekit.topics import create_topics as create_missing
    from cmhl_servicekit.topics import declared_retention

    topics = declared_topics()
    retention = declared_retention(tomllib.loads((REPO / "deploy" / "topics.toml").read_text()))
    created = asyncio.run(create_missing(access, topics, retention_ms=retention))
    say(f"topics: {len(created)} created, all {len(topics)} declared topics present")


def kafka_grants() -> list["Grant"]:
    from cmhl_servicekit.kafka_access import load

    return load(REPO / "deploy" / "kafka-access.toml", REPO / "deploy" / "topics.toml", demo=True)


def grant_kafka_access(access: "KafkaAccess", passwords: dict[str, str]) -> None:
    """Each service's, agency's and the demo's principal and what it may do (ADR 0010)."""
    from cmhl_servicekit.kafka_access import apply

    grants = kafka_grants()
    asyncio.run(apply(access, grants, passwords))
    say(f"Kafka: {len(passwords)} principals, {len(grants)} grants (deploy/kafka-access.toml)")


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
    # Each of those analyzes samples 300 x this many rows and evaluates every index's expression
    # on each: at the default (100) they took 40% of PostgreSQL's CPU under the agency-intake
    # benchmark. The services' filters are equalities and ranges on btree indexes, for which a
    # sample of 3,000 rows estimates well enough.
    "default_statistics_target": "10",
    "random_page_cost": "1.1",
    # Eight FerretDB users (the services and the administrator) at 25 connections each, and
    # Keycloak's pool of up to 100, with room to spare.
    "max_connections": "400",
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
    apt_install({"postgresql": STACK_PACKAGES["postgresql"][1]})
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
    # Statement counts and times for a benchmark's run (docs/benchmarks.md): the
    # pg_stat_statements view, after `CREATE EXTENSION pg_stat_statements` in the cmhl database.
    if os.environ.get("CMHL_POSTGRES_STATEMENT_STATS"):
        settings.append("--shared_preload_libraries=pg_stat_statements")
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


def psql(
    state: StackState,
    password: str,
    sql: str,
    check: bool = True,
    database: str = "postgres",
) -> str | None:
    """SQL as the stack's PostgreSQL superuser role, stopping at the first error; its output, or None
    where it failed and `check` is off (PostgreSQL still starting). The SQL goes in on stdin:
    it may hold a password, and a command line is readable by every local user."""
    done = subprocess.run(
        [
            str(postgres_bin() / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(state.postgres_port),
            "-U",
            POSTGRES_ROLE,
            "-d",
            database,
            "-tAq",
            "-v",
            "ON_ERROR_STOP=1",
        ],
        input=sql,
        env=os.environ | {"PGPASSWORD": password},
        capture_output=True,
        text=True,
        check=check,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def postgres_ready(state: StackState, password: str) -> bool:
    """Ready once the database FerretDB uses exists (created here on the first start)."""
    found = psql(state, password, "SELECT 1 FROM pg_database WHERE datname = 'cmhl'", check=False)
    if found is None:
        return False
    if found != "1":
        psql(state, password, "CREATE DATABASE cmhl")
    return True


# ---------------------------------------------------------------- FerretDB


def start_ferretdb(state: StackState, state_dir: Path, password: str) -> int:
    binary = ferretdb_binary()
    # FerretDB's own connection (the catalog, internal clean-up) signs in as the superuser role;
    # every client's queries run on a pool of that client's own user (ADR 0011). Eight users at
    # 25 connections each stay within max_connections, beside Keycloak's.
    url = (
        f"postgres://{POSTGRES_ROLE}:{password}@127.0.0.1:{state.postgres_port}/{POSTGRES_DATABASE}"
        "?pool_max_conns=25"
    )
    arguments = [str(binary), f"-listen-addr=127.0.0.1:{state.mongo_port}", "-handler=postgresql"]
    # Go's profiler for a benchmark's run (docs/benchmarks.md), on an address of the caller's.
    if profiler := os.environ.get("CMHL_FERRETDB_PPROF_ADDR"):
        arguments.append(f"-pprof-addr={profiler}")
    return spawn(
        "ferretdb",
        arguments,
        state_dir,
        # In the environment, not the command line, where every local user could read it.
        # GOGC=400: FerretDB allocates a great deal per document it decodes, and Go's collector
        # at its default (100) took a third of its CPU serving finds; at 400 a document read
        # costs 30% less CPU for 14 MB more memory (docs/benchmarks.md).
        env={"CMHL_FERRETDB_POSTGRESQL_URL": url, "GOGC": "400"},
    )


def mongo_ready(port: int) -> bool:
    # The wire protocol: a TCP connect that FerretDB accepts means its listener is up; the services'
    # own readiness probes then ping through the driver.
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


# ---------------------------------------------------------------- database users

# FerretDB makes a database when its first collection is created; the stack makes each service's
# database as the admin (this collection, created and dropped) so as to hand it to its user, who
# may not create databases.
DATABASE_CLAIM = "database_created_by_stack"


def database_users() -> list["DatabaseUser"]:
    from cmhl_servicekit.database_access import load

    try:
        return load(REPO / "deploy" / "database-access.toml")
    except ValueError as exc:
        fail(f"deploy/database-access.toml: {exc}")
        raise


def admin_mongo_uri(state: StackState, password: str) -> str:
    """The stack's administrator (PostgreSQL's superuser role), for tests and the stack itself."""
    return state.mongo_uri(POSTGRES_ROLE, password)


async def _prepare_databases(uri: str, users: list["DatabaseUser"]) -> None:
    from pymongo import AsyncMongoClient

    from cmhl_servicekit.audit import AUDIT_DATABASE, MongoAuditLog

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    try:
        present = set(await client.list_database_names())
        for user in users:
            if user.database not in present:
                await client[user.database].create_collection(DATABASE_CLAIM)
                await client[user.database].drop_collection(DATABASE_CLAIM)
        # The audit log exists, with its index, before services that may only append to it.
        await MongoAuditLog(client[AUDIT_DATABASE], "stack").ensure_indexes()
    finally:
        await client.close()


def database_grants_sql(users: list["DatabaseUser"], passwords: dict[str, str]) -> str:
    """One PostgreSQL role per database user (ADR 0011), as deploy/database-access.toml says:
    it owns its service's schema (FerretDB's database) and every table in it, and may insert
    into (and, if declared, select from) the audit log's table, owned by the superuser; it may
    not update or delete there, nor see any other schema or the Keycloak database."""
    from cmhl_servicekit.audit import AUDIT_DATABASE, AUDIT_LOG

    def literal(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    # Names come from the validated declarations (lower-case letters, digits, _) and passwords
    # are quoted as literals, hence the S608 exemptions below.
    audit = AUDIT_DATABASE
    statements = [
        "BEGIN;",
        f"REVOKE ALL ON DATABASE {POSTGRES_DATABASE} FROM PUBLIC;",
        "REVOKE ALL ON DATABASE keycloak FROM PUBLIC;",
    ]
    for user in users:
        role, schema = user.name, user.database
        privileges = "INSERT, SELECT" if user.may_read_audit else "INSERT"
        grant_audit = (
            f"EXECUTE format('GRANT {privileges} ON %I.%I TO %I', {literal(audit)}, t, "
            f"{literal(role)});"
            if user.may_append_audit
            else ""
        )
        own_tables = (
            f"SELECT tablename FROM pg_tables WHERE schemaname = {literal(schema)} "  # noqa: S608
            f"AND tableowner <> {literal(role)}"
        )
        audit_table = (
            f"SELECT _jsonb->>'table' FROM \"{audit}\"._ferretdb_database_metadata "  # noqa: S608
            f"WHERE _jsonb->>'_id' = {literal(AUDIT_LOG)}"
        )
        statements += [
            f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {literal(role)}) "
            f'THEN CREATE ROLE "{role}"; END IF; END$$;',
            f'ALTER ROLE "{role}" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION '
            f"NOBYPASSRLS PASSWORD {literal(passwords[role])};",
            f'GRANT CONNECT ON DATABASE {POSTGRES_DATABASE} TO "{role}";',
            f'ALTER SCHEMA "{schema}" OWNER TO "{role}";',
            # Tables made before the service had a user of its own (an older state folder).
            f"DO $$DECLARE t text; BEGIN FOR t IN {own_tables} LOOP "
            f"EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', {literal(schema)}, t, "
            f"{literal(role)}); END LOOP; END$$;",
            f'REVOKE ALL ON SCHEMA "{audit}" FROM "{role}";',
            f"DO $$DECLARE t text; BEGIN {audit_table.replace(' FROM ', ' INTO STRICT t FROM ', 1)}; "
            f"EXECUTE format('REVOKE ALL ON %I.%I FROM %I', {literal(audit)}, t, {literal(role)}); "
            f"{grant_audit} END$$;",
        ]
        if user.may_append_audit:
            statements.append(f'GRANT USAGE ON SCHEMA "{audit}" TO "{role}";')
    statements.append("COMMIT;")
    return "\n".join(statements) + "\n"


def grant_database_access(state: StackState, password: str, passwords: dict[str, str]) -> None:
    """Each service's own database user, with what deploy/database-access.toml grants it."""
    users = database_users()
    asyncio.run(_prepare_databases(admin_mongo_uri(state, password), users))
    psql(state, password, database_grants_sql(users, passwords), database=POSTGRES_DATABASE)
    say(f"database: {len(users)} users, each its own database (deploy/database-access.toml)")


# ---------------------------------------------------------------- Prometheus

ALERT_RULES = REPO / "deploy" / "k8s" / "alerts" / "cmhl-alerts.yaml"


def prometheus_tool(name: str) -> str:
    """Debian's `prometheus` package (the server and promtool), installed when missing."""
    found = shutil.which(name)
    if found:
        return found
    apt_install({"prometheus": STACK_PACKAGES["prometheus"][1]})
    return require_tool(name, "apt-get installed prometheus, but it is not on the PATH.")


def write_prometheus_config(state: StackState, state_dir: Path) -> Path:
    """Scrapes every service's /metrics, job named after the service (as the alert rules
    expect), and evaluates the alert rules Kubernetes uses. JSON is YAML too."""
    config = {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "rule_files": [str(ALERT_RULES)],
        "scrape_configs": [
            {
                "job_name": name,
                "static_configs": [
                    {"targets": [f"127.0.0.1:{state.service_ports.get(name, port)}"]}
                ],
            }
            for name, port in SERVICES.items()
        ],
    }
    path = state_dir / "prometheus" / "prometheus.yml"
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def start_prometheus(state: StackState, state_dir: Path) -> int:
    config = write_prometheus_config(state, state_dir)
    return spawn(
        "prometheus",
        [
            prometheus_tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={state_dir / 'prometheus' / 'data'}",
            "--storage.tsdb.retention.time=7d",
            f"--web.listen-address=127.0.0.1:{state.prometheus_port}",
        ],
        state_dir,
    )


def prometheus_ready(state: StackState) -> bool:
    return http_ok(f"http://127.0.0.1:{state.prometheus_port}/-/ready")


# ---------------------------------------------------------------- Keycloak


def ensure_keycloak_database(state: StackState, password: str, keycloak_password: str) -> None:
    """Keycloak's own role and database in the stack's PostgreSQL (created on the first start)."""
    if psql(state, password, "SELECT 1 FROM pg_roles WHERE rolname = 'keycloak'") != "1":
        # The password is generated (URL-safe characters), never user input.
        psql(state, password, f"CREATE ROLE keycloak LOGIN PASSWORD '{keycloak_password}'")
    if psql(state, password, "SELECT 1 FROM pg_database WHERE datname = 'keycloak'") != "1":
        psql(state, password, "CREATE DATABASE keycloak OWNER keycloak")


def start_keycloak(state: StackState, state_dir: Path, creds: dict[str, Any]) -> int:
    home = keycloak_home()
    keys = creds["keys"]
    return spawn(
        "keycloak",
        [
            str(home / "bin" / "kc.sh"),
            "start",
            "--optimized",
            "--http-enabled=true",
            "--http-host=127.0.0.1",
            f"--http-port={state.keycloak_port}",
            f"--http-management-port={state.keycloak_management_port}",
            # Local only: the issuer is whatever URL the request came to (127.0.0.1 here).
            "--hostname-strict=false",
        ],
        state_dir,
        # Secrets in the environment, not on the command line where every local user reads them.
        env={
            "JAVA_HOME": str(keycloak_java()),
            "JAVA_OPTS_KC_HEAP": "-Xms128m -Xmx768m",
            "KC_DB_URL": f"jdbc:postgresql://127.0.0.1:{state.postgres_port}/keycloak",
            "KC_DB_USERNAME": "keycloak",
            "KC_DB_PASSWORD": keys["keycloak_database_password"],
            "KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
            "KC_BOOTSTRAP_ADMIN_PASSWORD": keys["keycloak_admin_password"],
        },
    )


def keycloak_ready(state: StackState) -> bool:
    return http_ok(f"{state.keycloak_url}/realms/master/.well-known/openid-configuration")


def keycloak_request(
    state: StackState,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    form: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One call to Keycloak: a JSON `body` to its admin REST API, or a `form` to its token
    endpoint."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(  # noqa: S310 - the local Keycloak's own URL
        f"{state.keycloak_url}{path}", data=data, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def keycloak_admin_token(state: StackState, creds: dict[str, Any]) -> str:
    code, answer = keycloak_request(
        state,
        "POST",
        "/realms/master/protocol/openid-connect/token",
        form={
            "grant_type": "password",
            "client_id": "admin-cli",
            "username": "admin",
            "password": creds["keys"]["keycloak_admin_password"],
        },
    )
    if code != 200:
        fail(f"Keycloak refused the stack's admin sign-in ({code}): {answer}")
    return str(answer["access_token"])


def realm_document(creds: dict[str, Any]) -> dict[str, Any]:
    """The realm file with its placeholders filled from the credentials file; demo users lose
    their exemption from the second factor when CMHL_DEMO_USERS_MFA=required."""
    values: dict[str, str] = {"CMHL_DEMO_PASSWORD": creds["keys"]["demo_password"]}
    for client in [*creds["agency_clients"], *creds["facility_clients"]]:
        values[secret_variable(client["client_id"])] = client["client_secret"]

    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            fail(f"{REALM_FILE} names ${{{match.group(1)}}}, which the stack does not set")
        return values[match.group(1)]

    realm: dict[str, Any] = json.loads(re.sub(r"\$\{([A-Z0-9_]+)\}", fill, REALM_FILE.read_text()))
    if os.environ.get("CMHL_DEMO_USERS_MFA") == "required":
        for user in realm.get("users", []):
            user["realmRoles"] = [r for r in user["realmRoles"] if r != DEMO_MFA_EXEMPT_ROLE]
    return realm


def secret_variable(client_id: str) -> str:
    """The realm file's placeholder for a machine client's secret."""
    return "CMHL_CLIENT_SECRET_" + re.sub(r"[^A-Z0-9]", "_", client_id.upper())


def import_realm(state: StackState, state_dir: Path, creds: dict[str, Any]) -> None:
    """Creates the realm from the realm file, once per version of the file: a changed file
    replaces the realm (local demo data only; sessions end, users and clients come back)."""
    document = realm_document(creds)
    wanted = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    marker = state_dir / "keycloak-realm.sha256"
    token = keycloak_admin_token(state, creds)
    code, _ = keycloak_request(state, "GET", f"/admin/realms/{REALM}", token)
    if code == 200 and marker.exists() and marker.read_text() == wanted:
        return
    started = time.monotonic()
    if code == 200:
        say(f"the realm file changed: replacing Keycloak's realm {REALM!r}")
        keycloak_request(state, "DELETE", f"/admin/realms/{REALM}", token)
    code, answer = keycloak_request(state, "POST", "/admin/realms", token, document)
    if code != 201:
        fail(f"Keycloak refused {REALM_FILE.name} ({code}): {str(answer)[:500]}")
    marker.write_text(wanted)
    say(
        f"Keycloak realm {REALM!r} imported: {len(document.get('users', []))} demo users, "
        f"{len(document.get('clients', []))} clients ({time.monotonic() - started:.1f}s)"
    )


# ---------------------------------------------------------------- credentials and services


def credentials(state_dir: Path, issuer: str | None = None) -> dict[str, Any]:
    """The state folder's secrets and demo sign-ins (mode 0600), made on the first `up`; a
    folder from an earlier version gains what it lacks and keeps what it has. `up` names the
    issuer (its URL holds the port Keycloak got)."""
    path = state_dir / "credentials.json"
    stored: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"keys": {}}
    before = json.dumps(stored, sort_keys=True)
    keys = stored["keys"]
    keys.setdefault("pseudonym_key", secrets.token_urlsafe(32))  # the referral service's
    # A folder from when services shared one key: training keeps the key its officer ids used.
    keys.setdefault(
        "training_pseudonym_key",
        keys["pseudonym_key"] if path.exists() else secrets.token_urlsafe(32),
    )
    keys.setdefault("encryption_key", base64.b64encode(secrets.token_bytes(32)).decode())
    # Seals the users' tokens in the workspace's session store.
    keys.setdefault("workspace_session_key", base64.b64encode(secrets.token_bytes(32)).decode())
    keys.setdefault("database_password", secrets.token_urlsafe(24))
    keys.setdefault("keycloak_database_password", secrets.token_urlsafe(24))
    keys.setdefault("keycloak_admin_password", secrets.token_urlsafe(24))
    keys.setdefault("demo_password", secrets.token_urlsafe(18))
    keys.setdefault("kafka_admin_password", secrets.token_urlsafe(24))
    keys.setdefault("kafka_controller_password", secrets.token_urlsafe(24))
    from cmhl_servicekit.kafka_access import ADMIN, principals
    from cmhl_servicekit.passwords import new_passwords

    stored["database_users"] = new_passwords(
        [user.name for user in database_users()], stored.get("database_users", {})
    )
    known = stored.get("kafka_principals", {})
    stored["kafka_principals"] = new_passwords(principals(kafka_grants()), known) | {
        ADMIN: keys["kafka_admin_password"]
    }
    # From the shared-secret era: tokens minted by the stack and API keys are gone.
    for retired in ("auth_signing_key", "agency_api_keys", "facility_api_keys"):
        keys.pop(retired, None)
    for retired in ("tokens", "agency_api_key", "facility_api_keys"):
        stored.pop(retired, None)
    realm = json.loads(REALM_FILE.read_text())
    stored["users"] = [
        {"username": u["username"], "password": keys["demo_password"], "role": role, **extra}
        for u in realm.get("users", [])
        for role in [next(r for r in u["realmRoles"] if r != DEMO_MFA_EXEMPT_ROLE)]
        for extra in [{"cmhc": u["attributes"]["cmhc"][0]} if "cmhc" in u["attributes"] else {}]
    ]
    stored["test_client"] = {
        "client_id": TEST_CLIENT,
        "note": "public client allowed the password grant; the local stack's services only",
    }
    secrets_now = {
        c["client_id"]: c["client_secret"]
        for c in [*stored.get("agency_clients", []), *stored.get("facility_clients", [])]
    }
    for kind in ("agency", "facility"):
        stored[f"{kind}_clients"] = [
            {
                f"{kind}_id": bound,
                "client_id": client["clientId"],
                "client_secret": secrets_now.get(client["clientId"], secrets.token_urlsafe(32)),
            }
            for client in realm.get("clients", [])
            for mapper in client.get("protocolMappers", [])
            if mapper["config"].get("claim.name") == kind
            for bound in [mapper["config"]["claim.value"]]
        ]
    if issuer is not None:
        stored["issuer"] = issuer
    stored["note"] = "Demo credentials for the local stack only. Never use them elsewhere."
    if json.dumps(stored, sort_keys=True) != before:
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)
    return stored


def service_env(name: str, state: StackState, creds: dict[str, Any]) -> dict[str, str]:
    prefix = f"CMHL_{name.upper()}_"
    keys = creds["keys"]
    if name == "workspace":
        port = state.service_ports[name]
        values = {
            "MONGO_URI": state.mongo_uri(name, creds["database_users"][name]),
            "HTTP_PORT": str(port),
            "PUBLIC_URL": f"http://127.0.0.1:{port}",
            "AUTH_ISSUER": state.issuer,
            "SESSION_KEY": keys["workspace_session_key"],
            **{
                f"{service.upper()}_URL": f"http://127.0.0.1:{state.service_ports[service]}"
                for service in ("referral", "followup", "training", "placement", "notifications")
            },
        }
        return {prefix + key: value for key, value in values.items()}
    values = {
        "KAFKA_BOOTSTRAP": state.kafka_bootstrap,
        # Each service its own Kafka principal, granted what deploy/kafka-access.toml says.
        "KAFKA_USERNAME": name,
        "KAFKA_PASSWORD": creds["kafka_principals"][name],
        "KAFKA_SECURITY_PROTOCOL": KAFKA_PROTOCOL,
        # Each service its own database user, granted what deploy/database-access.toml says.
        "MONGO_URI": state.mongo_uri(name, creds["database_users"][name]),
        "HTTP_PORT": str(state.service_ports[name]),
        "AUTH_ISSUER": state.issuer,
        # The local stack alone accepts the password-grant test client's tokens.
        "AUTH_REFUSED_CLIENTS": "[]",
        # Each service its own pseudonym key: one leaked key links only that service's ids.
        "PSEUDONYM_KEY": keys["training_pseudonym_key" if name == "training" else "pseudonym_key"],
        "ENCRYPTION_KEY": keys["encryption_key"],
    }
    if name == "referral":
        values["KAFKA_FEEDBACK_AGENCIES"] = json.dumps(kafka_feedback_agencies())
    if name == "placement":
        values["REFERRAL_URL"] = f"http://127.0.0.1:{state.service_ports['referral']}"
    if name == "notifications":
        values["SMTP_PORT"] = str(state.smtp_port)
        workspace = state.service_ports.get("workspace", SERVICES["workspace"])
        values["LINK_BASE_URL"] = f"http://127.0.0.1:{workspace}"
    return {prefix + key: value for key, value in values.items()}


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def http_ok(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
        return bool(response.status == 200)
    return False


def spawn_services(state: StackState, state_dir: Path) -> None:
    """Starts each service that is not running; `wait_for_services` waits for them. They need
    Kafka's topics and grants and their databases, not Keycloak: each fetches the issuer's keys
    at its first signed request, so they start while Keycloak boots (both take seconds of CPU)."""
    creds = credentials(state_dir)
    for name, port in SERVICES.items():
        state.service_ports.setdefault(name, port)
        if alive(state.pids.get(name)):
            say(f"{name} already running on :{state.service_ports[name]}")
            continue
        say(f"starting the {name} service on :{state.service_ports[name]}")
        state.pids[name] = spawn(
            name,
            [sys.executable, "-m", f"cmhl_{name}"],
            state_dir,
            env=service_env(name, state, creds),
            cwd=REPO,
        )
        save_state(state_dir, state)


def no_service_died(state: StackState, state_dir: Path) -> bool:
    """Stops `up` at once, with the log's last lines, when a service started early has exited:
    the waits for Keycloak and Prometheus in between would otherwise hide it."""
    for name in SERVICES:
        if name in state.pids and not alive(state.pids[name]):
            fail(
                f"{name} service exited during start-up. Last log lines:\n{log_tail(state_dir, name)}"
            )
    return True


def wait_for_services(state: StackState, state_dir: Path) -> None:
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
    # Nobody else lists the state folder; the postgres OS user may pass through it to its data
    # (which initdb keeps 0700). Kafka's data and the kept mail are the owner's only.
    state_dir.chmod(0o711)
    for private in ("kafka", "mail"):
        (state_dir / private).mkdir(mode=0o700, exist_ok=True)
        (state_dir / private).chmod(0o700)
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
    if not state.keycloak_port:  # a state folder from before the identity provider
        state.keycloak_port = free_port() if free_ports else 8180
        state.keycloak_management_port = free_port() if free_ports else 8181
    if not state.smtp_port:  # a state folder from before the mail sink
        state.smtp_port = free_port() if free_ports else 1025
    if not state.prometheus_port:  # a state folder from before the metrics server
        state.prometheus_port = free_port() if free_ports else 9090
    creds = credentials(state_dir, issuer=state.issuer)
    password = creds["keys"]["database_password"]
    # Everything installed before anything starts. Starting Kafka and Keycloak while FerretDB
    # built was tried: the build, the longest step, took 168 s instead of 99 s, and the fresh
    # machine's `make up` 251 s instead of 204 s (one run each).
    install(for_tests=False)
    ensure_started(
        state,
        state_dir,
        "mailsink",
        f"SMTP sink on 127.0.0.1:{state.smtp_port} (mail kept in {state_dir / 'mail'})",
        lambda: spawn(
            "mailsink",
            [
                sys.executable,
                str(REPO / "deploy" / "local" / "mailsink.py"),
                "--port",
                str(state.smtp_port),
                "--folder",
                str(state_dir / "mail"),
            ],
            state_dir,
        ),
    )
    ensure_started(
        state,
        state_dir,
        "kafka",
        f"Apache Kafka on {state.kafka_bootstrap} (KRaft, heap {KAFKA_HEAP})",
        lambda: start_kafka(state, state_dir, creds["keys"]),
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
    ensure_keycloak_database(state, password, creds["keys"]["keycloak_database_password"])
    # Keycloak takes longest to start: it starts now and is waited for last.
    ensure_started(
        state,
        state_dir,
        "keycloak",
        f"Keycloak {KEYCLOAK_VERSION} on {state.keycloak_url} (OpenID Connect provider)",
        lambda: start_keycloak(state, state_dir, creds),
    )
    ensure_started(
        state,
        state_dir,
        "ferretdb",
        f"FerretDB on {state.mongo_address} (PostgreSQL backend)",
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
    grant_database_access(state, password, creds["database_users"])
    wait_until(
        lambda: kafka_ready(admin_access(state, creds["keys"])),
        "Kafka",
        180,
        state.pids["kafka"],
        state_dir,
        "kafka",
    )
    create_topics(admin_access(state, creds["keys"]))
    grant_kafka_access(admin_access(state, creds["keys"]), creds["kafka_principals"])
    if free_ports:
        for name in SERVICES:
            state.service_ports.setdefault(name, free_port())
    if with_services:
        spawn_services(state, state_dir)
    wait_until(
        lambda: (not with_services or no_service_died(state, state_dir)) and keycloak_ready(state),
        "Keycloak",
        240,
        state.pids["keycloak"],
        state_dir,
        "keycloak",
    )
    import_realm(state, state_dir, creds)
    wait_until(
        lambda: port_open(state.smtp_port),
        "the SMTP sink",
        30,
        state.pids["mailsink"],
        state_dir,
        "mailsink",
    )
    if alive(state.pids.get("prometheus")):
        write_prometheus_config(state, state_dir)  # the services' ports may have changed
        os.kill(state.pids["prometheus"], signal.SIGHUP)  # Prometheus re-reads it
    ensure_started(
        state,
        state_dir,
        "prometheus",
        f"Prometheus on http://127.0.0.1:{state.prometheus_port} (scrapes every service)",
        lambda: start_prometheus(state, state_dir),
    )
    wait_until(
        lambda: prometheus_ready(state),
        "Prometheus",
        60,
        state.pids["prometheus"],
        state_dir,
        "prometheus",
    )
    if with_services:
        wait_for_services(state, state_dir)
    save_state(state_dir, state)
    test_env = state_dir / "test.env"
    test_env.write_text(
        f"CMHL_TEST_KAFKA_BOOTSTRAP={state.kafka_bootstrap}\n"
        # Tests act as the admin; the security tests sign in as each principal from the file.
        f"CMHL_TEST_KAFKA_SECURITY_PROTOCOL={KAFKA_PROTOCOL}\n"
        "CMHL_TEST_KAFKA_USERNAME=admin\n"
        f"CMHL_TEST_KAFKA_PASSWORD={creds['keys']['kafka_admin_password']}\n"
        f"CMHL_TEST_KAFKA_PRINCIPALS={(state_dir / 'credentials.json').resolve()}\n"
        f"CMHL_TEST_MONGO_URI={admin_mongo_uri(state, password)}\n"
        f"CMHL_TEST_DATABASE_USERS={(state_dir / 'credentials.json').resolve()}\n"
        f"CMHL_TEST_OIDC_ISSUER={state.issuer}\n"
        f"CMHL_TEST_OIDC_CLIENT={TEST_CLIENT}\n"
        "CMHL_TEST_OIDC_ADMIN=admin\n"
        f"CMHL_TEST_OIDC_ADMIN_PASSWORD={creds['keys']['keycloak_admin_password']}\n"
        f"CMHL_TEST_SMTP=127.0.0.1:{state.smtp_port}\n"
        f"CMHL_TEST_MAIL_DIR={state_dir.resolve() / 'mail'}\n"
        f"CMHL_TEST_PROMETHEUS=http://127.0.0.1:{state.prometheus_port}\n"
    )
    test_env.chmod(0o600)  # it names Keycloak's, Kafka's and the database's admin passwords
    return state


def down(state_dir: Path) -> None:
    state = load_state(state_dir)
    if state is None:
        say("nothing to stop")
        return
    # Services first, so they do not log connection errors for the broker going away.
    for name in [
        *SERVICES,
        "prometheus",
        "keycloak",
        "ferretdb",
        "postgresql",
        "kafka",
        "mailsink",
    ]:
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
    parser.add_argument(
        "--for-tests",
        action="store_true",
        help="install: also the browser and PDF tools that only the tests use",
    )
    args = parser.parse_args()
    state_dir = args.state_dir.resolve()
    if args.command == "install":
        install(args.for_tests)
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
