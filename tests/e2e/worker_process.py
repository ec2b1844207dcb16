"""Start and stop real `scamtrail worker` processes for tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pydantic import SecretStr

from infrastructure.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def settings_env(settings: Settings, **extra: object) -> dict[str, str]:
    """The environment that makes a child process load these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCAMTRAIL_")}
    for name, value in {**settings.model_dump(), **extra}.items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()  # str() would give the mask, not the secret
        if isinstance(value, list | dict):
            value = json.dumps(value, default=_plain)  # as an operator writes a structured one
        if value is not None:
            env[f"SCAMTRAIL_{name.upper()}"] = str(value)
    return env


def _plain(value: object) -> object:
    """A secret or a model inside a structured setting, as the environment spells it."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    dump = getattr(value, "model_dump", None)
    return dump() if callable(dump) else str(value)


class WorkerProcess:
    def __init__(self, settings: Settings, log_path: Path, **overrides: object) -> None:
        self._log = log_path.open("ab")
        start = self._log.tell()  # a log shared with an earlier worker: only what this one says
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "worker"],
            cwd=ROOT,
            env=settings_env(settings, **overrides),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready(log_path, start, within=60)

    def _wait_ready(self, log_path: Path, start: int, within: float) -> None:
        """Until the worker says it is ready (its startup done, its first poll next): on a
        loaded machine its imports alone take seconds, and a test's first analysis would
        wait on them inside the test's own time limits."""
        deadline = time.monotonic() + within
        while b"worker ready" not in log_path.read_bytes()[start:]:
            if self.process.poll() is not None:
                raise AssertionError(f"the worker exited:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker was not ready within {within} s")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye — a crashed machine."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()
