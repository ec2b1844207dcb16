"""What every benchmark shares: where its database and Redis are, and how it authenticates.

Run from the project root with PYTHONPATH=. (as `make bench` does)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from api.dev_auth import dev_token
from infrastructure.settings import Settings, async_database_url, load_settings

# Long enough for HS256 (PyJWT warns below 32 bytes); never used outside benchmarks.
BENCH_SECRET = "benchmark-only-secret-long-enough-for-hs256"


def bench_database(name: str = "scamtrail_bench") -> URL:
    """SCAMTRAIL_TEST_DATABASE_URL (else SCAMTRAIL_DATABASE_URL) with the database `name`."""
    base = os.environ.get("SCAMTRAIL_TEST_DATABASE_URL") or load_settings().database_url
    return make_url(async_database_url(base)).set(database=name)


def as_text(url: URL, *, driver: str | None = None) -> str:
    """The URL as a string, password included; `driver="postgresql"` for plain asyncpg."""
    return (url.set(drivername=driver) if driver else url).render_as_string(hide_password=False)


def bench_redis_url() -> str:
    return os.environ.get("SCAMTRAIL_TEST_REDIS_URL") or load_settings().redis_url


def bench_token(settings: Settings, roles: str | list[str], tenant: str) -> str:
    return dev_token(settings, roles, tenant=tenant, sub="bench")


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
