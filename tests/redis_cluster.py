"""A real Redis Cluster on this machine for the tests and benchmarks: three masters, each with a
replica, started from the `redis-server` binary (7.0 or later: sharded Pub/Sub) on free ports.

Nodes time out after `NODE_TIMEOUT_MS`, so a killed master's replica takes over within a few
seconds. Everything lives in one temporary directory and every process is stopped by `stop()`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

NODE_TIMEOUT_MS = 1000
SHARDED_PUBSUB_SINCE = (7, 0)


def redis_server_binary() -> str | None:
    """`redis-server` on PATH when it supports sharded Pub/Sub, else None."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"v=(\d+)\.(\d+)", out.stdout)
    if found is None or (int(found[1]), int(found[2])) < SHARDED_PUBSUB_SINCE:
        return None
    return binary


def need_redis_server() -> None:
    """Skip the calling test where no `redis-server` 7.0+ is installed (a laptop); fail it in
    CI, which installs one, so that the cluster tests can never silently stop running there."""
    if redis_server_binary() is not None:
        return
    if os.environ.get("CI"):
        pytest.fail("CI needs redis-server 7.0 or later on PATH for the cluster tests")
    pytest.skip("redis-server 7.0 or later (sharded Pub/Sub) is not on PATH")


def _free_ports(count: int) -> list[int]:
    """Ports free now, whose cluster bus ports (+10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


@dataclass
class Node:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class LocalCluster:
    def __init__(self, root: Path, masters: int = 3, replicas: int = 1) -> None:
        self.root, self.masters, self.replicas = root, masters, replicas
        self.nodes: list[Node] = []

    @property
    def url(self) -> str:
        """A URL naming the cluster: any one node's (clients discover the others)."""
        return self.nodes[0].url

    def start(self) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("redis-server 7.0 or later is not on PATH")
        for port in _free_ports(self.masters * (1 + self.replicas)):
            folder = self.root / str(port)
            folder.mkdir(parents=True)
            args = [
                binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder),
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--save", "",
                "--appendonly", "no", "--logfile", "redis.log", "--daemonize", "no",
                # A replica that never synced cannot take over: sync at once, not after 5 s.
                "--repl-diskless-sync-delay", "0",
            ]  # fmt: skip
            self.nodes.append(Node(port, subprocess.Popen(args, stdout=subprocess.DEVNULL)))
        for node in self.nodes:
            self._wait_answers(node)
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        create = ["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"]
        subprocess.run(
            [*create, "--cluster-replicas", str(self.replicas)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_healthy()

    def stop(self) -> None:
        for node in self.nodes:
            if node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            try:
                node.process.wait(10)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(5)

    def cli(self, port: int, *args: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=10
        )
        return done.stdout

    def master_ports(self) -> list[int]:
        """The ports of the masters that serve slots now, as live nodes see it."""
        for node in self.live():
            masters = []
            for line in self.cli(node.port, "cluster", "nodes").splitlines():
                fields = line.split()
                if len(fields) > 8 and "master" in fields[2] and "fail" not in fields[2]:
                    masters.append(int(fields[1].split("@")[0].rsplit(":", 1)[1]))
            if masters:
                return sorted(masters)
        return []

    def live(self) -> list[Node]:
        return [node for node in self.nodes if node.process.poll() is None]

    def node(self, port: int) -> Node:
        return next(node for node in self.nodes if node.port == port)

    def kill(self, port: int) -> None:
        """SIGKILL one node, as a crash would."""
        node = self.node(port)
        os.kill(node.process.pid, signal.SIGKILL)
        node.process.wait(5)

    def wait_healthy(self, within: float = 30.0) -> None:
        """Until every live node says the cluster is ok, every slot has a live master and every
        replica whose master lives has synced (so that it can take over)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            live = self.live()
            states = [self.cli(node.port, "cluster", "info") for node in live]
            healthy = live and all("cluster_state:ok" in state for state in states)
            if healthy and len(self.master_ports()) == self.masters and self._replicas_synced():
                return
            time.sleep(0.1)
        raise RuntimeError(f"the Redis cluster in {self.root} did not become healthy")

    def _replicas_synced(self) -> bool:
        masters = set(self.master_ports())
        for node in self.live():
            info = self.cli(node.port, "info", "replication")
            if "role:slave" not in info:
                continue
            master = re.search(r"master_port:(\d+)", info)
            if master and int(master[1]) in masters and "master_link_status:up" not in info:
                return False
        return True

    def _wait_answers(self, node: Node) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", node.port), timeout=1),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {node.port} did not start")


@contextlib.contextmanager
def local_cluster(root: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
