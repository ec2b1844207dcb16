"""The `store` of the contract suite: every test runs against the in-memory store (a unit test,
no services) and against PostgreSQL (an integration test, the database emptied first)."""

from __future__ import annotations

import pytest

from infrastructure.event_log import EventLog
from infrastructure.event_store import EventStore
from infrastructure.memory_store import InMemoryEventStore


@pytest.fixture(
    params=[
        pytest.param("memory", marks=pytest.mark.unit),
        pytest.param("postgresql", marks=pytest.mark.integration),
    ]
)
def store(request: pytest.FixtureRequest) -> EventLog:
    if request.param == "memory":
        return InMemoryEventStore()
    return EventStore(request.getfixturevalue("clean_database"))
