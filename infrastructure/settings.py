"""The one settings object (prefix `SCAMTRAIL_`), built by `load_settings()` and passed down."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from domain.tools import TOOL_STEPS, RemoteTool
from infrastructure.relay_partitions import MAX_PARTITIONS

# The label `pubsub_key` is derived from `jwt_secret` with: fixed, or an api and a relay of one
# deployment would disagree on the key.
PUBSUB_KEY_LABEL = b"scamtrail pubsub message key v1"


MAX_MCP_TOOLS = 8


class McpToolConfig(RemoteTool):
    """One entry of SCAMTRAIL_MCP_TOOLS: the agent tool `name`, called for each entity of the
    kinds in `entities`, is the tool `tool` of the MCP server at `url` (streamable HTTP), asked
    with `headers` (an API key, say; kept out of reprs)."""

    url: str = Field(min_length=8, max_length=2048)
    tool: str = Field(min_length=1, max_length=128)
    headers: dict[str, SecretStr] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be an http:// or https:// URL, not {url!r}")
        return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCAMTRAIL_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/scamtrail"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Where live progress goes between the relay and the api processes, when not the Redis
    # above: a server, or any node of a Redis Cluster (then sharded channels, one subscription
    # per shard per api process; infrastructure/progress_bus.py). The queue stays on redis_url.
    pubsub_url: str | None = None
    # Connections each process keeps; PostgreSQL allows 100 by default across every process.
    database_pool_size: int = Field(default=10, ge=1, le=200)
    # No statement waits longer than this for PostgreSQL: a half-open connection (a NAT that
    # dropped it, a failover black hole) fails instead of hanging its caller for hours.
    database_statement_timeout_s: float = Field(default=60.0, gt=0)
    port: int = Field(default=8000, ge=1, le=65535)
    # The arq queue analyses go to; tests give each run its own.
    queue: str = "scamtrail:analyses"
    log_level: str = "INFO"

    # Live progress (WebSocket / SSE). What the first mobile and web clients expect: a heartbeat
    # every 15 s, close after 60 s without an event. Tests set them to fractions of a second.
    ws_heartbeat_s: float = Field(default=15.0, gt=0)
    ws_idle_timeout_s: float = Field(default=60.0, gt=0)
    # Messages a socket may have waiting before it is switched to reading PostgreSQL instead:
    # bounds memory per socket whatever a slow client does.
    ws_queue_size: int = Field(default=256, ge=1)
    # How often each api process reads the log while Redis is unreachable (degraded mode).
    ws_poll_s: float = Field(default=0.25, gt=0)
    # permessage-deflate costs ~300 KB of zlib state per socket; progress messages are small.
    ws_per_message_deflate: bool = False
    ws_max_tasks: int = Field(default=100, ge=1)  # task ids one multi-task socket may follow
    # A send that waits longer than this means the client stopped reading (its TCP window is
    # shut): the socket is given up, and what it held (queue, subscription, the user's socket
    # slot) is freed.
    ws_send_timeout_s: float = Field(default=30.0, gt=0)
    # Sockets whose tasks have ended are closed at most this many a second per api process
    # (0: each at once). A close costs the api more than a message does; when many tasks end
    # together, their sockets' closes would otherwise all land in the same moment, ahead of
    # the live messages of every other socket. A lone close is never held back.
    ws_close_rate: float = Field(default=2000.0, ge=0)

    # The relay (PostgreSQL -> Redis Pub/Sub). See infrastructure/relay.py for the poll interval.
    relay_name: str = "relay"
    relay_poll_s: float = Field(default=0.005, gt=0)
    # Quiet when idle (infrastructure/doorbell.py): `relay_warm_s` after the last event or ring
    # the relay goes back to waiting for the doorbell, probing only every `relay_idle_probe_s`.
    relay_warm_s: float = Field(default=1.0, gt=0.1)  # > the doorbell's ring interval
    relay_idle_probe_s: float = Field(default=0.25, gt=0, le=60)
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_checkpoint_s: float = Field(default=0.2, ge=0)
    relay_lock_retry_s: float = Field(default=0.5, gt=0)
    # The log split by stream hash (infrastructure/relay_partitions.py), each partition with its
    # own lock and checkpoint, shared among the relay processes. The same on every relay and api.
    relay_partitions: int = Field(default=1, ge=1, le=MAX_PARTITIONS)
    relay_backoff_max_s: float = Field(default=2.0, gt=0)
    # Each statement on the relay's lock connection is short: past this, the connection is
    # taken for dead (half-open) and the relay rejoins instead of hanging while "active".
    relay_statement_timeout_s: float = Field(default=5.0, gt=0)
    # The idle probe takes microseconds; the server cancels one that runs past this, and the
    # relay takes a cancelled probe as "nothing new yet" and probes again.
    relay_probe_timeout_s: float = Field(default=0.25, gt=0, le=60)
    # The key the relay signs every Pub/Sub message with and every api's hub checks (HMAC-SHA256,
    # see infrastructure/hub.py): a message that fails is dropped, so a client that can only
    # PUBLISH on the Redis server cannot put words in a progress socket. Unset, it is derived
    # from `jwt_secret` (an HMAC with a fixed label, so the JWT secret itself never goes near
    # Redis): deployments whose api and relay already share SCAMTRAIL_JWT_SECRET need no new
    # setting. Without either (public-key auth, developer mode) the key is one anyone can
    # derive, and the hub and relay log a warning at start: set SCAMTRAIL_PUBSUB_KEY on every
    # api and relay of the deployment.
    pubsub_key: SecretStr | None = None
    # Put before every Pub/Sub channel name: two deployments sharing one Redis server (Pub/Sub
    # ignores database numbers) each hear only their own. Empty keeps the channel names
    # `agent_progress:{task_id}` and `tenant_progress:{tenant}`.
    channel_prefix: str = ""
    # /metrics: open unless this is set, then it wants `Authorization: Bearer <metrics_token>`
    # (a secret of the scrapers', not a user's JWT). The relay's lag is read from PostgreSQL at
    # most once per `metrics_refresh_s`, however often it is scraped.
    metrics_token: SecretStr | None = None
    metrics_refresh_s: float = Field(default=5.0, ge=0, le=300)
    # Submissions: content above this is refused with 413.
    max_content_bytes: int = Field(default=64 * 1024, ge=1, le=10 * 1024 * 1024)
    # A submission's client metadata, serialised as JSON: above this, 413.
    max_metadata_bytes: int = Field(default=8 * 1024, ge=2, le=1024 * 1024)
    # The agent. Region for phone numbers written without a country code.
    default_region: str = Field(default="US", min_length=2, max_length=2)
    # One tool call may take this long before it counts as timed out; then it is retried with
    # exponential backoff, up to tool_max_attempts attempts in all.
    tool_timeout_s: float = Field(default=8.0, gt=0, le=120)
    tool_max_attempts: int = Field(default=3, ge=1, le=10)
    # Tool calls of one task in flight at once (spares external APIs a burst per task).
    tool_concurrency: int = Field(default=8, ge=1, le=64)
    tool_retry_backoff_s: float = Field(default=0.25, ge=0, le=30)
    # A whole analysis job; a worker killed mid-job is replaced after this plus 10 s (arq). A run
    # stops itself a little earlier (`analysis_run_s`), so that its outcome is recorded.
    analysis_timeout_s: float = Field(default=120.0, gt=0, le=3600)
    # Runs of one task's analysis in all, across crashes, timeouts, retries and sweeps (counted
    # in the log); then the task fails.
    analysis_max_tries: int = Field(default=5, ge=1, le=50)
    # Analyses one worker process runs at once (they mostly wait on tools and the database).
    worker_concurrency: int = Field(default=10, ge=1, le=200)
    # How often an idle worker looks at the queue. arq's default (0.5 s) would be most of the time
    # from submit to verdict (benchmarks/pipeline.py measures it); a poll is one cheap ZRANGE.
    worker_poll_s: float = Field(default=0.02, gt=0, le=5)
    # The sweep re-enqueues unfinished tasks that have been quiet this long (a lost job).
    sweep_interval_s: int = Field(default=15, ge=1, le=3600)
    stale_task_s: float = Field(default=30.0, gt=0)
    # Optional LLM reasoner: any OpenAI-compatible chat-completions endpoint. Off unless
    # llm_base_url is set; any failure falls back to the rule-based reasoner.
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_s: float = Field(default=20.0, gt=0, le=300)
    # The function that builds a worker's tools, as `package.module:function` with the
    # signature of workers.toolbox.build_toolbox; unset, the built-in tools (workers/toolbox.py).
    toolbox: str | None = None
    # Remote MCP tools the agent calls besides the built-in ones, as a JSON list of
    # {"name", "url", "tool", "entities", "headers"} (McpToolConfig; README, Settings). Every
    # worker of a deployment must have the same list: it is part of each task's plan.
    mcp_tools: Annotated[list[McpToolConfig], NoDecode] = Field(
        default_factory=list, max_length=MAX_MCP_TOOLS
    )
    # Web search: Exa when a key is set, else full-text search over the local scam reports.
    exa_api_key: str | None = None
    exa_base_url: str = "https://api.exa.ai"
    # An analysis waits on this; Exa usually answers in 1-3 s, so 10 s leaves room for a slow one.
    exa_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    web_search_results: int = Field(default=5, ge=1, le=25)

    # Auth (api/auth.py). Tokens are JWTs: HS256 with `jwt_secret`, or RS256/ES256 with a PEM
    # public key (the text, or a path to it) or a JWKS file. With none of the three, the api and
    # `scamtrail token` share a developer secret in ./.scamtrail/dev-jwt-secret (api/dev_auth.py).
    # `auth_disabled` turns every check off; the api then logs a warning at every start.
    auth_disabled: bool = False
    jwt_secret: SecretStr | None = None
    jwt_public_key: str | None = None
    jwt_jwks_file: str | None = None
    # Empty: HS256 with a secret, RS256 and ES256 with a public key or JWKS. Never "none".
    jwt_algorithms: list[str] = Field(default_factory=list)
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway_s: float = Field(default=0.0, ge=0, le=300)
    # Longest life a token may claim (exp - iat, or exp - now without iat): refused (401) past it.
    max_token_lifetime_s: float = Field(default=24 * 3600.0, gt=0)
    dev_jwt_secret_file: str = ".scamtrail/dev-jwt-secret"
    # Whole request bodies. JSON escaping can grow 64 KB of content to ~384 KB (\uXXXX per
    # character), so this sits well above max_content_bytes while still bounding memory.
    max_request_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Analyst reviews one task may hold; past it a review is refused (409).
    max_reviews_per_task: int = Field(default=50, ge=1, le=10_000)
    # Submissions per tenant per minute (a Redis counter; 429 with Retry-After beyond it).
    submissions_per_minute: int = Field(default=600, ge=1)
    # Known scam indicators (api/routes/indicators.py). Assertions and retractions per tenant
    # per minute, admins' global ones included (a Redis counter; 429 with Retry-After beyond
    # it): an analyst's hand-made indicators come a few a minute, never thousands.
    indicator_writes_per_minute: int = Field(default=60, ge=1)
    # Progress sockets (WebSocket and SSE) one user may hold open on one api process.
    max_sockets_per_user: int = Field(default=100, ge=1)
    # Inbound WebSocket frames are ignored; uvicorn closes the socket (1009) above this size.
    ws_max_message_bytes: int = Field(default=4096, ge=128)

    # What a client may hold of the api's HTTP server before it has sent a request
    # (api/http_guard.py). A request head (request line and headers) must be complete this
    # long after its first byte, or after the connection opened; else the connection is closed.
    header_timeout_s: float = Field(default=10.0, gt=0, le=300)
    # A request head larger than this is answered 431 and its connection closed.
    max_header_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    # Open connections (HTTP and WebSocket) of one api process. Beyond it, a new connection
    # evicts the oldest one still sending its head, or else is answered 503 at once. 0: the
    # open-file limit (raised to its hard limit at start) less room for PostgreSQL, Redis, files.
    max_connections: int = Field(default=0, ge=0)
    # Repeats of one warning or error (same logger, message and exception type) are counted, and
    # written once per this interval with their count (api/log_flood.py).
    log_repeat_interval_s: float = Field(default=10.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _use_asyncpg(cls, url: str) -> str:
        return async_database_url(url)

    @field_validator("mcp_tools", mode="before")
    @classmethod
    def _mcp_tools_json(cls, value: Any) -> Any:
        """The variable holds JSON; an empty one means no remote tool."""
        if not isinstance(value, str):
            return value
        if not value.strip():
            return []
        try:
            return json.loads(value)
        except ValueError as error:
            raise ValueError(f"not JSON ({error}); expected a list of tools") from None

    @field_validator("mcp_tools")
    @classmethod
    def _mcp_tool_names(cls, tools: list[McpToolConfig]) -> list[McpToolConfig]:
        names = [tool.name for tool in tools]
        for name in names:
            if name in TOOL_STEPS:
                raise ValueError(f"tool name {name!r} is a built-in tool's; choose another")
            if names.count(name) > 1:
                raise ValueError(f"tool name {name!r} is given twice")
        return tools

    def pubsub_signing_key(self) -> bytes | None:
        """The key of the Pub/Sub MAC: `pubsub_key`, else derived from `jwt_secret`; None when
        neither is set (the caller then uses a public key and warns)."""
        if self.pubsub_key is not None:
            return self.pubsub_key.get_secret_value().encode()
        if self.jwt_secret is not None:
            secret = self.jwt_secret.get_secret_value().encode()
            return hmac.new(secret, PUBSUB_KEY_LABEL, hashlib.sha256).digest()
        return None

    @property
    def analysis_run_s(self) -> float:
        """How long one run of an analysis may take: arq's job timeout less a margin (a tenth,
        at most 5 s) in which the run records its outcome — a retry, or TaskFailed — before arq
        cancels the job and drops it without a trace."""
        return self.analysis_timeout_s - min(5.0, self.analysis_timeout_s / 10)

    @model_validator(mode="after")
    def _a_run_has_room(self) -> Self:
        # One tool attempt and the reasoning must fit in a run, or no run could ever finish.
        # Retries need not fit: a run that times out is resumed where it stopped.
        needed = self.tool_timeout_s + (self.llm_timeout_s if self.llm_base_url else 0.0)
        if needed >= self.analysis_run_s:
            llm = f" + llm_timeout_s ({self.llm_timeout_s:g} s)" if self.llm_base_url else ""
            lower = "SCAMTRAIL_TOOL_TIMEOUT_S" + (
                " or SCAMTRAIL_LLM_TIMEOUT_S" if self.llm_base_url else ""
            )
            raise ValueError(
                f"analysis_timeout_s ({self.analysis_timeout_s:g} s) leaves no room for "
                f"tool_timeout_s ({self.tool_timeout_s:g} s){llm}: one run of an analysis gets "
                f"{self.analysis_run_s:g} s, and one tool call and the reasoning must fit in it. "
                f"Raise SCAMTRAIL_ANALYSIS_TIMEOUT_S or lower {lower}."
            )
        return self


def async_database_url(url: str) -> str:
    """Accept the usual `postgresql://` / `postgres://` forms and use the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('@')[-1]!r}")


def settings_problems(error: ValidationError) -> str:
    """What is wrong with the settings, on one line, naming each variable and never echoing
    its value (SCAMTRAIL_MCP_TOOLS may hold API keys in its headers)."""
    problems = []
    for problem in error.errors(include_input=False, include_url=False):
        field, *path = problem["loc"] or ("settings",)
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        message = str(problem["msg"]).removeprefix("Value error, ")
        problems.append(f"SCAMTRAIL_{str(field).upper()}{where}: {message}")
    return "invalid settings: " + "; ".join(problems)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (tests, CLI flags) on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
