"""A real local Ray cluster for the tests (head + one worker node, one CPU each) and `edge serve --ray` on it.

Every process is started in a session of its own (`start_new_session`): Ray's daemons and
workers stay in that session (they change their process group, not their session), so `stop()`
finds each one by its session id and ends it by PID; nothing is ended by name (`ray stop` would
end every Ray process on the machine).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import requests

BIN = Path(sys.executable).parent
# no token set-up in $HOME, no usage report (no network in tests); Serve's controller gives its HTTP proxy
# 5 s to start and 10 s per health check by default, less than a loaded 2-core machine needs (it kills it)
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "NO_PROXY": "127.0.0.1,localhost",
           "no_proxy": "127.0.0.1,localhost", "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60",
           "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "60"}
START_TIMEOUT_S = 240  # Ray on 2 shared cores is slow; generous but bounded


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def session_pids(session: int) -> List[int]:
    """PIDs whose session id is `session` (from /proc/<pid>/stat, field 6)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(entry))
    return found


def stop_session(leader: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM the leader, wait, then SIGKILL whatever is left of its session, by PID."""
    if leader.poll() is None:
        leader.send_signal(signal.SIGTERM)
        try:
            leader.wait(grace_s)
        except subprocess.TimeoutExpired:
            leader.kill()
            leader.wait(10)
    deadline = time.monotonic() + 10
    while True:
        left = session_pids(leader.pid)
        if not left:
            return
        if time.monotonic() > deadline:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
            assert not session_pids(leader.pid), f"processes left in session {leader.pid}: {session_pids(leader.pid)}"
            return
        time.sleep(0.3)


class RayCluster:
    """`ray start --block` for a head and one worker node on this machine, `--num-cpus 1` each.

    Ray gives its nodes the machine's own address even when told 127.0.0.1 (by design, so that
    other machines could join); nothing leaves the machine. The HTTP proxy listens on 127.0.0.1.
    """

    def __init__(self) -> None:
        self.temp_dir = tempfile.mkdtemp(prefix="edge-ray-", dir="/tmp")  # short: Ray's socket paths
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: List[subprocess.Popen] = []
        self.env: Dict[str, str] = {**os.environ, **RAY_ENV}

    def _start_node(self, *args: str) -> None:
        log = open(Path(self.temp_dir) / f"node{len(self.nodes)}.log", "wb")
        self.nodes.append(subprocess.Popen(
            [str(BIN / "ray"), "start", "--block", "--num-cpus", "1", "--disable-usage-stats",
             "--dashboard-agent-listen-port", str(free_port()), *args],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True))

    def start(self) -> "RayCluster":
        self._start_node("--head", "--port", str(self.port), "--include-dashboard", "false",
                         "--ray-client-server-port", str(free_port()), "--temp-dir", self.temp_dir)
        self._wait_until_started(0)
        self._start_node("--address", self.address)
        self._wait_until_started(1)
        return self

    def _wait_until_started(self, node: int) -> None:
        """Until `ray start` says the node runs (an open GCS port alone is too early for a driver)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Ray runtime started" not in self.log(node):
            if self.nodes[node].poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Ray node {node} did not start: {self.log(node)}")
            time.sleep(0.3)

    def log(self, node: int) -> str:
        return (Path(self.temp_dir) / f"node{node}.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for node in reversed(self.nodes):  # the worker node first, then the head
            stop_session(node)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


class RayServer:
    """`edge serve --ray` (the CLI, a process of its own) on a cluster; `url` like BackgroundServer's."""

    def __init__(self, cluster: RayCluster, model_dir: Path, *options: str):
        self.cluster = cluster
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(cluster.temp_dir) / f"edge-serve-{self.port}.log"
        self.command = [str(BIN / "edge"), "serve", "--ray", "--ray-address", cluster.address,
                        "--model-dir", str(model_dir), "--host", "127.0.0.1", "--port", str(self.port), *options]
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> "RayServer":
        self.process = subprocess.Popen(self.command, stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT,
                                        env=self.cluster.env, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while "edge serve --ray: http://" not in self.log():  # printed once every deployment is running
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`edge serve --ray` did not start: {self.log()}")
            time.sleep(0.5)
        assert requests.get(self.url + "/health", timeout=30).status_code == 200
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def replica_pids(self) -> List[int]:
        """PIDs of the model replicas (Ray worker processes in the cluster's sessions)."""
        pids = []
        for node in self.cluster.nodes:
            for pid in session_pids(node.pid):
                try:
                    title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
                except OSError:
                    continue
                if title.startswith(b"ray::ServeReplica:edge:EdgeModel"):
                    pids.append(pid)
        return pids

    def stop(self) -> Optional[int]:
        """SIGTERM (graceful: the app is deleted, requests in flight finish); the exit status."""
        if self.process is None:
            return None
        stop_session(self.process, grace_s=60)
        return self.process.returncode
