"""Keeps bearer tokens out of the logs. uvicorn logs every request line with its query string
(`?token=` on browser WebSockets), and at DEBUG the websockets library logs handshake headers
(Authorization, Sec-WebSocket-Protocol); this filter rewrites such records before any handler
formats them.

Query parameters are matched on their decoded form: the api reads `?t%6Fken=` as `token`, and
`%65yJ…` as a JWT, so the log must recognise them the same way."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

# A JWT (three base64url parts, the first one a JSON header: "eyJ"), a `token=` query value, and
# whatever follows "Bearer".
_SECRETS = re.compile(
    r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"
    r"|(?<=token=)[^&\s\"']+"
    r"|(?<=[Bb]earer )[^\s,\"']+"
    r"|(?<=[Bb]earer, )[^\s,\"']+"
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
# One `name=value` of a query string (as uvicorn logs it: still percent-encoded).
_PARAM = re.compile(r"(?<=[?&;])([^=&;\s\"'#?]+)=([^&;\s\"'#]+)")
_DECODE_ROUNDS = 3  # a name encoded twice over is decoded too: redacting more is harmless
REDACTED = "[redacted]"
# uvicorn's loggers, and the websockets library's in case it logs on its own.
LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "websockets", "websockets.server")


def redact(text: str) -> str:
    return _SECRETS.sub(REDACTED, _PARAM.sub(_redact_param, text))


def _redact_param(match: re.Match[str]) -> str:
    """A query parameter whose decoded name holds "token", or whose decoded value holds a JWT,
    keeps its name and loses its value."""
    name, value = match.group(1), match.group(2)
    if "token" in _decoded(name).lower() or _JWT.search(_decoded(value)):
        return f"{name}={REDACTED}"
    return match.group(0)


def _decoded(text: str) -> str:
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote_plus(text)
        if decoded == text:
            break
        text = decoded
    return text


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if redact(message) == message:
            return True
        if isinstance(record.args, tuple) and record.args:
            # uvicorn's access formatter unpacks `args` (client, method, path, version, status):
            # replaced by None, the line was lost to a "Logging error" traceback (every SSE
            # request with `?token=`). So redact each argument and keep the tuple.
            record.msg = redact(str(record.msg))
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
            message = record.getMessage()
            if redact(message) == message:
                return True
        record.msg, record.args = redact(message), None  # a secret split across arguments
        return True


def install_redaction() -> None:
    """Idempotent: on the loggers that may see tokens, and on every handler they write to (a
    logger's filter does not apply to records propagated from its children)."""
    redaction = RedactTokens()
    loggers = [logging.getLogger(name) for name in LOGGERS] + [logging.getLogger()]
    for logger in loggers:
        for target in [logger, *logger.handlers]:
            if not any(isinstance(f, RedactTokens) for f in target.filters):
                target.addFilter(redaction)
