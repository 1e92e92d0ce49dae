"""Fixtures of the real-client suite: the real `tenantmq` binary on an ephemeral port.

`TENANTMQ_BIN` names the binary (default: `target/debug/tenantmq` under the repository root).
Each broker gets its own data directory; its address comes from `<data-dir>/endpoints.json`.
A broker that exits on its own, or logs a panic, fails the test that was running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from mqtt_client import V5, V311, Clients

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def broker_binary() -> Path:
    path = Path(os.environ.get("TENANTMQ_BIN", REPO_ROOT / "target" / "debug" / "tenantmq"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not path.is_file():
        pytest.exit(f"broker binary not found at {path}: build it or set TENANTMQ_BIN", 2)
    return path


@dataclass
class Broker:
    """A running `tenantmq standalone --dev-plain`."""

    proc: subprocess.Popen
    host: str
    port: int
    data_dir: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        """Fails when the broker died or a task of it panicked (a panicking tokio task does
        not end the process, so the log is read too)."""
        if self.proc.poll() is not None:
            pytest.fail(f"broker exited unexpectedly (code {self.proc.returncode}):\n{self.log()}")
        if "panicked" in self.log():
            pytest.fail(f"broker panicked:\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a timeout. A clean shutdown exits 0."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
                pytest.fail(f"broker ignored SIGTERM for {STOP_TIMEOUT}s:\n{self.log()}")
        if self.proc.returncode != 0:
            pytest.fail(f"broker exited with {self.proc.returncode} on SIGTERM:\n{self.log()}")


def start_broker(data_dir: Path) -> Broker:
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "broker.log"
    endpoints = data_dir / "endpoints.json"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            # Every listener on port 0: standalone also serves mqtts, wss and the control API,
            # and a test may run a second broker beside its module's.
            [str(broker_binary()), "standalone", "--dev-plain",
             "--mqtt-listen", "127.0.0.1:0", "--ws-listen", "127.0.0.1:0",
             "--mqtts-listen", "127.0.0.1:0", "--wss-listen", "127.0.0.1:0",
             "--api-listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0",
             "--data-dir", str(data_dir)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited during startup:\n{log_path.read_text()}")
        try:
            # The broker renames the file into place, so it is never read half-written.
            address = json.loads(endpoints.read_text())["mqtt"]
            break
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"no endpoints.json after {STARTUP_TIMEOUT}s:\n{log_path.read_text()}")
        time.sleep(0.01)
    host, port = address.rsplit(":", 1)
    return Broker(proc, host, int(port), data_dir, log_path)


@pytest.fixture(scope="module")
def _module_broker(tmp_path_factory):
    b = start_broker(tmp_path_factory.mktemp("broker"))
    yield b
    b.stop()


@pytest.fixture
def broker(_module_broker):
    """The module's broker, shared by its tests (they use unique topics and client ids)."""
    yield _module_broker
    _module_broker.check_alive()


@pytest.fixture
def fresh_broker(tmp_path):
    """A broker of this test alone, for tests that see every topic (`#`) or need isolation."""
    b = start_broker(tmp_path / "broker")
    yield b
    b.check_alive()
    b.stop()


@pytest.fixture
def clients(broker):
    c = Clients(broker)
    yield c
    c.close_all()


@pytest.fixture
def fresh_clients(fresh_broker):
    c = Clients(fresh_broker)
    yield c
    c.close_all()


@pytest.fixture(params=[V311, V5], ids=["v311", "v5"])
def version(request):
    """Both protocol versions."""
    return request.param


# ---- the full standalone (mqtts, wss, control API) of the test_tenants_* modules ----------

@pytest.fixture(scope="module")
def _module_standalone(tmp_path_factory):
    from tenants import start_standalone

    s = start_standalone(tmp_path_factory.mktemp("standalone"))
    yield s
    s.stop()


@pytest.fixture
def server(_module_standalone):
    """The module's full standalone (authenticated mqtts and wss, control API), shared by its
    tests: each test signs up tenants of its own."""
    yield _module_standalone
    _module_standalone.check_alive()


@pytest.fixture
def devices(server):
    from tenants import Devices

    d = Devices(server)
    yield d
    d.close_all()
