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


class TaskAlreadyFinished(DomainError):
    """The command needs a running task (cancel) or a finished one (review), and it is not."""

    def __init__(self, task_id: str, status: str, action: str) -> None:
        self.task_id = task_id
        self.status = status
        super().__init__(f"cannot {action} task {task_id!r}: it is already {status}")


class IdempotencyKeyReused(DomainError):
    """The same Idempotency-Key came with a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used for a different submission; "
            "use a new key for new content"
        )


class TaskNotReviewable(DomainError):
    """Only a completed task, with a verdict, can be reviewed."""

    def __init__(self, task_id: str, status: str) -> None:
        self.task_id = task_id
        super().__init__(
            f"task {task_id!r} is {status}: only a completed task with a verdict can be reviewed"
        )


class InvalidReview(DomainError, ValueError):
    """A review that contradicts itself (confirm with another verdict, override with the same)."""
