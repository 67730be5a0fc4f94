"""A 3-master Redis Cluster on loopback, for tests and CI.

Three ``redis-server --cluster-enabled yes`` daemons on free 127.0.0.1 ports (Debian's
``redis-server``, which ``scripts/setup`` installs, or ``valkey-server``; override with
``AIFLOW_CLUSTER_SERVER``), the 16384 slots split in three with ``CLUSTER ADDSLOTSRANGE``
and joined with ``CLUSTER MEET``, done from Python (no ``redis-cli --cluster``). No
replicas: a node killed is its slots down (``CLUSTERDOWN``), which is what an outage test
wants. ``scripts/cluster start|stop|url DIR`` drives it from a shell::

    cluster = LoopbackCluster(tmp_path)
    url = cluster.start()       # redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3
    ...
    cluster.stop()
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

SLOTS = 16384
MASTERS = 3


def client_list(r: redis.Redis) -> list[dict[str, object]]:
    """``CLIENT LIST`` of the Redis in force: of every node on a cluster (where redis-py
    asks one node only unless told)."""
    from aiflow_nb.store import is_cluster

    if not is_cluster():
        return list(r.client_list())
    by_node = r.client_list(target_nodes=redis.RedisCluster.ALL_NODES)  # type: ignore[call-arg]
    return [client for clients in by_node.values() for client in clients]


def server_binary() -> str:
    """The cluster's server: ``AIFLOW_CLUSTER_SERVER``, else ``redis-server`` (>= 7.0, for
    sharded pub/sub) or ``valkey-server`` on PATH."""
    for candidate in (os.environ.get("AIFLOW_CLUSTER_SERVER"), "redis-server", "valkey-server"):
        path = candidate and shutil.which(candidate)
        if path:
            return path
    raise RuntimeError(
        "no redis-server (>= 7.0) for the loopback cluster: apt-get install redis-server "
        "(scripts/setup does), or set AIFLOW_CLUSTER_SERVER to a valkey-server"
    )


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """``count`` ports whose cluster bus port (+10000) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 < 65536 and port not in ports and _free(port + 10000):
            ports.append(port)
    return ports


@dataclass
class LoopbackCluster:
    """Three cluster masters with their files under ``directory`` (see the module doc)."""

    directory: Path
    ports: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def node_dir(self, port: int) -> Path:
        return self.directory / str(port)

    def start(self, timeout: float = 30.0) -> str:
        """Start the nodes, assign the slots, join them; the URL once the cluster is ok."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ports = self.ports or free_ports(MASTERS)
        for port in self.ports:
            self.start_node(port)
        clients = [self.node(port) for port in self.ports]
        share = SLOTS // MASTERS
        for i, client in enumerate(clients):
            last = SLOTS - 1 if i == MASTERS - 1 else (i + 1) * share - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * share, last)
        for client in clients[1:]:
            client.execute_command("CLUSTER", "MEET", "127.0.0.1", self.ports[0])
        self.wait_ok(timeout)
        (self.directory / "url").write_text(self.url)
        return self.url

    def start_node(self, port: int, timeout: float = 10.0) -> None:
        """Start (or restart, from its nodes.conf) the daemon on ``port``."""
        d = self.node_dir(port)
        d.mkdir(parents=True, exist_ok=True)
        args = [
            server_binary(),
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(d)),
            *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
            *("--cluster-node-timeout", "2000", "--appendonly", "yes", "--save", ""),
            *("--daemonize", "yes", "--pidfile", str(d / "redis.pid")),
            *("--logfile", str(d / "redis.log")),
        ]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.node(port).ping()
                return
            except (redis.ConnectionError, redis.BusyLoadingError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"cluster node {port} did not start: {self.log(port)}"
                    ) from None
                time.sleep(0.05)

    def node(self, port: int) -> redis.Redis:
        """A plain (non-cluster) client of one node."""
        return redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)

    def log(self, port: int) -> str:
        path = self.node_dir(port) / "redis.log"
        return path.read_text()[-2000:] if path.exists() else ""

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every node says ``cluster_state:ok`` and knows every other."""
        deadline = time.monotonic() + timeout
        while not all(self._ok(port) for port in self.ports):
            if time.monotonic() > deadline:
                raise RuntimeError(f"loopback cluster not ok after {timeout}s")
            time.sleep(0.1)

    def _ok(self, port: int) -> bool:
        try:
            info = self.node(port).execute_command("CLUSTER", "INFO")
        except redis.RedisError:
            return False
        text = info.decode() if isinstance(info, bytes) else str(info)
        return "cluster_state:ok" in text and f"cluster_known_nodes:{MASTERS}" in text

    def pid(self, port: int) -> int | None:
        try:
            pid = int((self.node_dir(port) / "redis.pid").read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def kill_node(self, port: int, sig: int = signal.SIGKILL) -> None:
        """Signal one node's daemon and wait for it to be gone (its slots go down)."""
        pid = self.pid(port)
        if pid is None:
            return
        os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while self.pid(port) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        (self.node_dir(port) / "redis.pid").unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop every node (their files stay, so ``start_node`` brings one back)."""
        ports = self.ports or [int(p.name) for p in self.directory.iterdir() if p.is_dir()]
        for port in ports:
            self.kill_node(port, signal.SIGTERM)


READY_HEADER = """\
# The Redis-touching tests that pass on a 3-master Redis Cluster today (scripts/test-cluster
# runs them; the others are skipped, saying why). One pytest node id, or a prefix of one
# (a module: tests/test_x.py), per line. Written by scripts/cluster-ready (which runs them
# all on a cluster); the tests left out expect a single node (see docs/cluster.md).
"""


def passed(junit: Path) -> list[str]:
    """Node ids of the tests a JUnit XML report (pytest --junitxml, xunit1) says passed."""
    import xml.etree.ElementTree as ET

    ids = []
    for case in ET.parse(junit).iter("testcase"):
        if any(child.tag in ("failure", "error", "skipped") for child in case):
            continue
        file, classname = case.get("file", ""), case.get("classname", "")
        module = file.removesuffix(".py").replace("/", ".")
        inner = classname.removeprefix(module).strip(".")
        ids.append("::".join(p for p in (file, inner, case.get("name", "")) if p))
    return sorted(ids)


def main(argv: list[str]) -> int:
    """``start DIR`` (prints the URL), ``stop DIR``, ``url DIR``; ``ready JUNIT`` prints
    ``tests/cluster_ready.txt`` for a run's report."""
    if len(argv) == 2 and argv[0] == "ready":
        print(READY_HEADER + "\n".join(passed(Path(argv[1]))))
        return 0
    if len(argv) != 2 or argv[0] not in ("start", "stop", "url"):
        print("usage: scripts/cluster start|stop|url DIR | ready JUNIT", file=sys.stderr)
        return 2
    command, directory = argv[0], Path(argv[1])
    cluster = LoopbackCluster(directory)
    if command == "start":
        print(cluster.start())
    elif command == "stop":
        cluster.stop()
    else:
        url = directory / "url"
        if not url.exists():
            print(f"no cluster started in {directory}", file=sys.stderr)
            return 1
        print(url.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
