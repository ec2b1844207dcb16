"""Start and stop real `scamtrail worker` processes for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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
        if value is not None:
            env[f"SCAMTRAIL_{name.upper()}"] = str(value)
    return env


class WorkerProcess:
    def __init__(self, settings: Settings, log_path: Path, **overrides: object) -> None:
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "worker"],
            cwd=ROOT,
            env=settings_env(settings, **overrides),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

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
