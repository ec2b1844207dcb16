"""Where the known scam indicators live in the log: one stream per tenant plus a global one.

A tenant's analysts assert and retract indicators in their tenant's stream; only admins, threat
feed imports and the seed write the global stream. A lookup made for a tenant sees the global
indicators and that tenant's own, never another tenant's. The projection of these streams is the
table `scam_indicators` (infrastructure/indicator_projection.py); each row names the stream it
belongs to, so the stream is the row's scope.

These streams are not tasks: they are never folded by domain.task, and their events never reach
a progress socket (`is_task_stream`).
"""

from __future__ import annotations

import hashlib
from typing import Literal

from domain.log import EventMetadata

Scope = Literal["global", "tenant"]

STREAM_PREFIX = "indicators:"
GLOBAL_STREAM = "indicators:global"
_TENANT_PREFIX = "indicators:tenant:"
_MAX_STREAM_ID = 200  # events.stream_id's CHECK

# Global writes that no api caller makes (the seed, a feed import, the migration that turned
# the rows into events) are recorded under this tenant. No progress socket hears an indicator
# event, whatever its tenant, so a tenant of that name gains nothing from it.
SYSTEM_TENANT = "system"


def tenant_stream(tenant: str) -> str:
    """The stream of `tenant`'s own indicators. A tenant name too long for a stream id (tenants
    may have 200 characters) is replaced by its SHA-256, which no readable name can equal."""
    stream = _TENANT_PREFIX + tenant
    if len(stream) <= _MAX_STREAM_ID:
        return stream
    return f"{_TENANT_PREFIX}sha256:{hashlib.sha256(tenant.encode()).hexdigest()}"


def stream_of(scope: Scope, tenant: str) -> str:
    return GLOBAL_STREAM if scope == "global" else tenant_stream(tenant)


def visible_streams(tenant: str | None) -> list[str]:
    """The streams a lookup made for `tenant` reads: the global one, and the tenant's own. None
    (no tenant known, e.g. a task analysed before tenants had indicators): the global one."""
    return [GLOBAL_STREAM] if tenant is None else [GLOBAL_STREAM, tenant_stream(tenant)]


def scope_of(stream_id: str) -> Scope:
    return "global" if stream_id == GLOBAL_STREAM else "tenant"


def is_task_stream(stream_id: str) -> bool:
    """Whether a stream is a task's (task ids are UUIDs; indicator streams have the prefix)."""
    return not stream_id.startswith(STREAM_PREFIX)


def system_metadata(actor: str) -> EventMetadata:
    """The envelope of a global write made by the system itself (seed, feed import)."""
    return EventMetadata(tenant=SYSTEM_TENANT, actor=actor)
