"""The `scamtrail up` running in this directory, as the other commands find it.

While its embedded services run, `up` records where they and the api answer in
`./.scamtrail/up.json`, and removes the file when they stop. The commands of a second terminal
(`migrate`, `worker`, `projections rebuild`, `analyze`, ...) read it, so that with no
`SCAMTRAIL_*` variable set they reach that stack, never a default 127.0.0.1:5432 / :6379 that
may be another server. The file counts only while `up` holds the directory's lock
(infrastructure/embedded.py): one left by a crashed `up` is ignored. A variable that is set
always wins over the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from api.errors import EXIT_BAD_INPUT, EXIT_UNREACHABLE
from infrastructure.embedded import DATABASE_ENV, LOCK_FILE, REDIS_ENV
from infrastructure.settings import Settings, load_settings, settings_problems

ROOT = Path(".scamtrail")  # relative: `up` and the commands beside it share a directory
STATE_FILE = "up.json"
ENV = {"database_url": DATABASE_ENV, "redis_url": REDIS_ENV}
console = Console(stderr=True)


@dataclass(frozen=True)
class Stack:
    """A running `up`: its pid, the api's URL and the embedded services' settings overrides
    (`database_url`, `redis_url`; a service given by a variable is not recorded)."""

    pid: int
    api_url: str
    urls: dict[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def recorded(root: Path, stack: Stack) -> Iterator[None]:
    """Write `root/up.json` for the commands beside `up` (owner-only: it names sockets and
    ports), and remove it on the way out."""
    path = root / STATE_FILE
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"pid": stack.pid, "api_url": stack.api_url, "urls": stack.urls}, out)
    temporary.replace(path)  # a reader never sees half a file
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def running(root: Path = ROOT) -> Stack | None:
    """The `up` running in `root`'s directory, or None (none, or a file a crash left)."""
    try:
        state = json.loads((root / STATE_FILE).read_text())
        stack = Stack(int(state["pid"]), str(state["api_url"]), dict(state["urls"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return stack if _locked(root / LOCK_FILE) else None


def _locked(path: Path) -> bool:
    """Whether a process holds the lock `up` takes on its directory."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the shared lock, if it was taken
    return False


def stack_settings(*needs: str, **overrides: object) -> Settings:
    """Settings for a command that uses the services in `needs` (`database_url`,
    `redis_url`): each from its variable if set, else from the `up` running here. With neither,
    one line says how to start `up` or which variable to set, and the command exits 3."""
    missing = [name for name in needs if not os.environ.get(ENV[name])]
    if missing:
        stack = running()
        found = {name: stack.urls[name] for name in missing if stack and name in stack.urls}
        unset = [ENV[name] for name in missing if name not in found]
        if unset:
            console.print(f"[red]{escape(no_stack_hint(unset))}[/]", soft_wrap=True)
            raise typer.Exit(EXIT_UNREACHABLE)
        overrides = {**found, **overrides}
    try:
        return load_settings(**overrides)
    except ValidationError as error:  # one line, never the values (they may hold secrets)
        console.print(f"[red]{escape(settings_problems(error))}[/]", soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def no_stack_hint(unset: list[str]) -> str:
    return (
        f"no `scamtrail up` is running in {Path.cwd()} and {' / '.join(unset)}"
        f" {'is' if len(unset) == 1 else 'are'} not set: start `scamtrail up` (or `make up`)"
        f" here and run this beside it, or set {' and '.join(unset)}"
    )


def hide_password(url: str) -> str:
    """The URL with its password, if any, replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def client_url(host: str, port: int) -> str:
    """The api's URL for a client on this machine (an api on every interface answers locally)."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"
