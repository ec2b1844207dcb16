"""Domain exceptions. api/ maps them to HTTP status codes and WebSocket close codes in one place."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""


class InvalidAppend(DomainError, ValueError):
    """An append that can never succeed as asked: empty batch, negative expected version, ..."""


class ConcurrencyConflict(DomainError):
    """Another writer appended to the stream first; re-read the stream and decide again."""

    def __init__(self, stream_id: str, expected_version: int, actual_version: int | None) -> None:
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        actual = "does not exist" if actual_version is None else f"is at version {actual_version}"
        super().__init__(
            f"stream {stream_id!r}: expected version {expected_version}, but the stream {actual}"
        )


class DuplicateEventId(DomainError):
    """A batch mixes events already stored with new ones; it is neither a retry nor a new append."""

    def __init__(self, stream_id: str, event_ids: list[str]) -> None:
        self.stream_id = stream_id
        self.event_ids = event_ids
        super().__init__(
            f"stream {stream_id!r}: event ids already stored elsewhere or in part: "
            + ", ".join(event_ids)
        )


class UnknownEventType(DomainError):
    """The log holds an event type this code does not know (a newer writer, or a renamed class)."""

    def __init__(self, type_name: str, *, stream_id: str | None = None, version: int | None = None):
        self.type_name = type_name
        where = f" at {stream_id!r} version {version}" if stream_id is not None else ""
        super().__init__(
            f"unknown event type {type_name!r}{where}; known types are listed in domain.events"
        )


class TaskNotFound(DomainError):
    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"task {task_id!r} not found")
