"""A three-broker Apache Kafka cluster (KRaft, every node a broker and a controller) for the
fault suite, built from the same cached jars as the local stack (deploy/local/stack.py)."""

import asyncio
import importlib.util
import secrets
import signal
import subprocess
import time
from pathlib import Path
from types import ModuleType

from aiokafka.admin import AIOKafkaAdminClient

from cmhl_servicekit.testing import free_port, kafka_test_access


def _stack() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "deploy" / "local" / "stack.py"
    spec = importlib.util.spec_from_file_location("cmhl_local_stack", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class KafkaCluster:
    """Replication 3 and min.insync.replicas 2: one node lost keeps acks=all writes going."""

    def __init__(self, root: Path, nodes: int = 3) -> None:
        self.root = root
        self.ports = [(free_port(), free_port()) for _ in range(nodes)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self._stack = _stack()
        # The tests' admin principal (test.env) is the cluster's admin too.
        self.admin_password = kafka_test_access("").password
        self.controller_password = secrets.token_urlsafe(18)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{broker}" for broker, _ in self.ports)

    def _properties(self, node: int, data: Path) -> str:
        broker, controller = self.ports[node - 1]
        stack = self._stack
        voters = ",".join(f"{n}@127.0.0.1:{c}" for n, (_, c) in enumerate(self.ports, start=1))
        replicated = [
            "offsets.topic",
            "transaction.state.log",
            "share.coordinator.state.topic",
        ]
        return "\n".join(
            [
                "process.roles=broker,controller",
                f"node.id={node}",
                f"controller.quorum.voters={voters}",
                # Secured as the local stack's broker is (ADR 0010): SCRAM for clients and
                # between brokers, SASL/PLAIN between controllers, the StandardAuthorizer.
                f"listeners=CLIENT://127.0.0.1:{broker},CONTROLLER://127.0.0.1:{controller}",
                f"advertised.listeners=CLIENT://127.0.0.1:{broker}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=CLIENT",
                "listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
                "listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512",
                "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
                "listener.name.client.scram-sha-512.sasl.jaas.config="
                f'{stack.SCRAM_LOGIN} required username="admin" password="{self.admin_password}";',
                "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
                "sasl.mechanism.controller.protocol=PLAIN",
                "listener.name.controller.plain.sasl.jaas.config="
                f'{stack.PLAIN_LOGIN} required username="controller" '
                f'password="{self.controller_password}" '
                f'user_controller="{self.controller_password}";',
                "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users=User:admin;User:controller",
                "allow.everyone.if.no.acl.found=false",
                f"log.dirs={data}",
                "auto.create.topics.enable=false",
                "default.replication.factor=3",
                "min.insync.replicas=2",
                "offsets.topic.num.partitions=1",
                "group.initial.rebalance.delay.ms=0",
                *[f"{name}.replication.factor=3" for name in replicated],
                *[f"{name}.min.isr=2" for name in replicated if name != "offsets.topic"],
                "",
            ]
        )

    def start(self) -> None:
        stack = self._stack
        lib = stack.kafka_lib()
        java = stack.require_tool("java", "Install a Java 17+ runtime.")
        cluster_id = stack.cluster_id()
        log4j = Path(stack.HERE) / "kafka" / "log4j2.properties"
        for node in range(1, len(self.ports) + 1):
            home = self.root / f"node-{node}"
            (home / "data").mkdir(parents=True, exist_ok=True)
            properties = home / "server.properties"
            properties.write_text(self._properties(node, home / "data"))
            subprocess.run(
                [
                    *(java, "-cp", f"{lib}/*", "kafka.tools.StorageTool", "format", "-g"),
                    *("-t", cluster_id, "-c", str(properties)),
                    *("--add-scram", f"SCRAM-SHA-512=[name=admin,password={self.admin_password}]"),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            with (home / "kafka.log").open("ab") as log:
                self.processes[node] = subprocess.Popen(
                    [
                        java,
                        "-Xmx384m",
                        "-Xms384m",
                        f"-Dkafka.logs.dir={home}",
                        f"-Dlog4j2.configurationFile={log4j}",
                        "-cp",
                        f"{lib}/*",
                        "kafka.Kafka",
                        str(properties),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )

    async def wait_ready(self, brokers: int, timeout: float = 240.0) -> float:
        """Until `brokers` nodes are registered; returns the seconds it took."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            admin = AIOKafkaAdminClient(
                **kafka_test_access(self.bootstrap).client_options(), request_timeout_ms=5000
            )
            try:
                await admin.start()
                cluster = await admin.describe_cluster()
                if len(cluster["brokers"]) >= brokers:
                    return time.monotonic() - began
            except Exception:  # noqa: S110 (still starting: keep polling)
                pass
            finally:
                await admin.close()
            await asyncio.sleep(2)
        raise AssertionError(f"the cluster had not {brokers} brokers after {timeout}s")

    def kill(self, node: int) -> None:
        """SIGKILL: the broker gets no chance to hand its partitions over."""
        self.processes[node].send_signal(signal.SIGKILL)
        self.processes[node].wait(30)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
