"""The command line's HTTP side: one small client for a running scamtrail api, and the mapping of
every way a request can go wrong to a one-line message and an exit code."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from api.errors import EXIT_BAD_INPUT, EXIT_UNREACHABLE, exit_code_for_status

# Exit codes of the client commands besides the refusals' (api/errors.py); scripts rely on them.
EXIT_DONE = 0
EXIT_TASK_FAILED = 4

HTTP_TIMEOUT_S = 15.0


class ClientError(Exception):
    """Ends a command with `message` on one line and exit `code`; never a traceback."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Connection:
    """How the client commands reach the api, given as the command line's context object
    (`app(obj=Connection(...))`): `transport` answers HTTP without a server (an
    httpx.MockTransport in tests); None is the network."""

    transport: httpx.AsyncBaseTransport | None = None


def default_url() -> str:
    """SCAMTRAIL_PORT on this machine if set, else the api of the `scamtrail up` running in
    this directory (api/cli/stack.py), else port 8000."""
    if port := os.environ.get("SCAMTRAIL_PORT"):
        return f"http://127.0.0.1:{port}"
    from api.cli.stack import running

    stack = running()
    return stack.api_url if stack else "http://127.0.0.1:8000"


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ClientError(f"--url must be like http://127.0.0.1:8000, not {url!r}", EXIT_BAD_INPUT)
    return url.rstrip("/")


class ApiClient:
    """Async HTTP to the api. `transport` lets unit tests answer without a server."""

    def __init__(
        self, url: str, token: str | None, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.url = check_url(url)
        self.token = token or None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=HTTP_TIMEOUT_S, transport=transport
        )

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._http.aclose()

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise ClientError(
                f"cannot reach the scamtrail api at {self.url} ({type(error).__name__}:"
                f" {error or 'no answer'}); is `scamtrail up` running?",
                EXIT_UNREACHABLE,
            ) from None
        if response.is_success:
            try:
                return response.json()
            except ValueError:
                raise ClientError(
                    f"{self.url}{path} did not answer JSON: is it a scamtrail api?",
                    EXIT_UNREACHABLE,
                ) from None
        raise refusal(response, self.token is not None)

    def websocket_url(self, task_id: str, after: int) -> str:
        """The one-task progress socket; the token goes in the query string (browsers cannot set
        headers on a WebSocket, so the server reads `?token=`)."""
        base = "ws" + self.url[len("http") :]
        url = f"{base}/ws/agent-progress/{quote(task_id, safe='')}?after={after}"
        return f"{url}&token={quote(self.token, safe='')}" if self.token else url

    def tenant_socket_url(self, named: Sequence[str] = ()) -> str:
        """The socket on every task of the token's tenant (analysts only), and the history of
        the `named` tasks."""
        url = "ws" + self.url[len("http") :] + "/ws/tasks?tenant="
        if named:
            url += "&ids=" + quote(",".join(named), safe=",")
        return f"{url}&token={quote(self.token, safe='')}" if self.token else url


def refusal(response: httpx.Response, sent_token: bool) -> ClientError:
    """A non-2xx answer as a one-line error with its exit code (api/errors.py)."""
    status, detail = response.status_code, _detail(response)
    code = exit_code_for_status(status)
    if status == 401:
        hint = "the token was refused" if sent_token else "pass --token or set SCAMTRAIL_TOKEN"
        return ClientError(f"not authenticated ({detail}): {hint}", code)
    if code == EXIT_UNREACHABLE:
        return ClientError(f"the api could not serve this ({status}): {detail}", code)
    return ClientError(f"refused ({status}): {detail}", code)


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.reason_phrase or "no detail"
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]  # FastAPI's validation errors: name the field of the first one
        where = ".".join(str(p) for p in first.get("loc", ())[1:])
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return str(detail) if detail else response.reason_phrase or "no detail"
