"""Where the tests find PostgreSQL and Redis.

1. `SCAMTRAIL_TEST_DATABASE_URL` / `SCAMTRAIL_TEST_REDIS_URL` when set (CI, this machine: the
   Makefile sets them when local servers answer);
2. otherwise containers started with testcontainers when a Docker engine is reachable;
3. otherwise the tests that need the service fail with one sentence saying what to set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

NO_SERVICE = (
    "{what} is not available: set {env} (e.g. {example}) or start a Docker engine "
    "so testcontainers can run one."
)


def _docker_reachable() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # any failure means "no usable engine"; the caller says what to do
        return False


@contextmanager
def _service(
    env: str, what: str, example: str, start: Callable[[], Any], url_of: Callable[[Any], str]
) -> Iterator[str]:
    url = os.environ.get(env)
    if url:
        yield url
        return
    if not _docker_reachable():
        raise RuntimeError(NO_SERVICE.format(what=what, env=env, example=example))
    container = start()
    try:
        yield url_of(container)
    finally:
        container.stop()


@contextmanager
def postgres_url() -> Iterator[str]:
    def start() -> Any:
        from testcontainers.postgres import PostgresContainer

        return PostgresContainer("postgres:16-alpine", driver="asyncpg").start()

    with _service(
        "SCAMTRAIL_TEST_DATABASE_URL",
        "PostgreSQL",
        "postgresql://postgres@127.0.0.1:5432/scamtrail_test",
        start,
        lambda c: c.get_connection_url(),
    ) as url:
        yield url


@contextmanager
def redis_url() -> Iterator[str]:
    def start() -> Any:
        from testcontainers.redis import RedisContainer

        return RedisContainer("redis:7-alpine").start()

    def url_of(c: Any) -> str:
        return f"redis://{c.get_container_host_ip()}:{c.get_exposed_port(6379)}/0"

    with _service(
        "SCAMTRAIL_TEST_REDIS_URL",
        "Redis",
        "redis://127.0.0.1:6379/15",
        start,
        url_of,
    ) as url:
        yield url
