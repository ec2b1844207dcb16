"""Prometheus metrics at /metrics, one registry per app (tests build many apps in a process).

Socket metrics are counted where they happen. The relay's numbers are read from its checkpoint
row at scrape time, so any api replica reports them whether the relay runs in this process or not:
lag in events (committed past the checkpoint) and in seconds (age of the oldest of those).

A scrape costs one query at most every `metrics_refresh_s`: scrapes in between (several
Prometheus servers, or anyone hammering an open /metrics) reuse the last reading. With
`SCAMTRAIL_METRICS_TOKEN` set, /metrics wants `Authorization: Bearer <that token>`; it is a
separate secret from the users' JWTs because scrapers hold it in their configuration.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.security.utils import get_authorization_scheme_param
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import DBAPIError

from api.application.caller import NotAuthenticated
from infrastructure.settings import Settings

if TYPE_CHECKING:
    from api.services import Services

log = logging.getLogger(__name__)

# Counting beyond this many unpublished events would make a scrape slow; "at least" is enough.
LAG_COUNT_LIMIT = 100_000


class _RelayCollector(Collector):
    def __init__(self) -> None:
        self.published, self.lag_events, self.lag_seconds = 0, 0, 0.0

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "scamtrail_relay_published",
            "Events the relay published (checkpointed)",
            value=self.published,
        )
        yield GaugeMetricFamily(
            "scamtrail_relay_lag_events",
            "Committed events past the relay's checkpoint",
            value=self.lag_events,
        )
        yield GaugeMetricFamily(
            "scamtrail_relay_lag_seconds",
            "Age of the oldest event past the relay's checkpoint",
            value=self.lag_seconds,
        )


class _HubCollector(Collector):
    """The hub counts its own reads of the log and the Pub/Sub messages it refused; a scrape
    copies the counts here."""

    def __init__(self) -> None:
        self.log_reads = 0
        self.pubsub_rejected = 0

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "scamtrail_progress_hub_log_reads",
            "Reads of the log by this process's hub while Redis was unreachable: one per"
            " SCAMTRAIL_WS_POLL_S for all of the process's sockets",
            value=self.log_reads,
        )
        yield CounterMetricFamily(
            "scamtrail_pubsub_rejected",
            "Pub/Sub messages this process's hub dropped for a missing or wrong MAC: not"
            " published by a relay of this deployment (a forgery, or a relay with another key)",
            value=self.pubsub_rejected,
        )


class StreamMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.open_sockets = Gauge(
            "scamtrail_progress_sockets_open", "Open progress sockets", ["transport"], registry=r
        )
        self.messages_sent = Counter(
            "scamtrail_progress_messages_sent",
            "Messages sent to progress clients",
            ["transport"],
            registry=r,
        )
        self.socket_seconds = Histogram(
            "scamtrail_progress_socket_duration_seconds",
            "How long progress sockets and streams stayed open",
            ["transport"],
            buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600),
            registry=r,
        )
        self.degraded_sockets = Gauge(
            "scamtrail_progress_sockets_degraded",
            "Sockets served from PostgreSQL because Redis is unreachable",
            registry=r,
        )

        self.overflows = Counter(
            "scamtrail_progress_queue_overflows",
            "Times a client's queue overflowed and it caught up from PostgreSQL",
            registry=r,
        )
        self.connection_errors = Counter(
            "scamtrail_progress_connection_errors",
            "Progress sockets ended by an error",
            ["reason"],
            registry=r,
        )
        # What a closed socket must give back; the cleanup test compares them before and after.
        self.hub_subscribers = Gauge(
            "scamtrail_progress_hub_subscribers",
            "Subscriptions held by this process's hub",
            registry=r,
        )
        self.hub_channels = Gauge(
            "scamtrail_progress_hub_channels",
            "Redis channels this process subscribes to",
            registry=r,
        )
        self.asyncio_tasks = Gauge(
            "scamtrail_asyncio_tasks", "asyncio tasks alive in this process", registry=r
        )
        self.relay = _RelayCollector()
        r.register(self.relay)
        self.hub = _HubCollector()
        r.register(self.hub)


class _RelayReading:
    """The relay's checkpoint row, read at most once per `metrics_refresh_s` (one query for
    however many scrapes arrive meanwhile)."""

    def __init__(self, target: _RelayCollector) -> None:
        self._target = target
        self._read_at = -float("inf")
        self._lock = asyncio.Lock()

    async def refresh(self, services: Services) -> None:
        settings: Settings = services.settings
        if time.monotonic() - self._read_at < settings.metrics_refresh_s:
            return
        async with self._lock:
            if time.monotonic() - self._read_at < settings.metrics_refresh_s:
                return  # another scrape read it while this one waited
            try:
                status = await services.relay_status.read(
                    settings.relay_name,
                    count_limit=LAG_COUNT_LIMIT,
                    partitions=settings.relay_partitions,
                )
            except DBAPIError as error:
                log.warning("metrics: reading the relay checkpoint failed: %r", error)
                return  # the next scrape tries again
            self._read_at = time.monotonic()
            if status is not None:
                self._target.published = status.published
                self._target.lag_events = status.lag_events
                self._target.lag_seconds = status.lag_seconds


def _check_scraper(request: Request, settings: Settings) -> None:
    if settings.metrics_token is None:
        return
    scheme, presented = get_authorization_scheme_param(request.headers.get("authorization"))
    expected = settings.metrics_token.get_secret_value()
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented, expected):
        raise NotAuthenticated(
            "/metrics needs Authorization: Bearer <the token set in SCAMTRAIL_METRICS_TOKEN>"
        )


def install(app: FastAPI) -> StreamMetrics:
    metrics = StreamMetrics()
    app.state.stream_metrics = metrics
    reading = _RelayReading(metrics.relay)
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def scrape(request: Request) -> Response:
        services = request.app.state.services
        _check_scraper(request, services.settings)
        await reading.refresh(services)
        metrics.hub_subscribers.set(services.hub.subscriber_count)
        metrics.hub_channels.set(services.hub.channel_count)
        metrics.hub.log_reads = services.hub.polls
        metrics.hub.pubsub_rejected = services.hub.rejected
        metrics.asyncio_tasks.set(len(asyncio.all_tasks()))
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(router)
    return metrics
