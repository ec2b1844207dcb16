"""Refusals the use cases make beyond the domain's own errors (domain/errors.py). Every one has
its HTTP status, WebSocket close code and command-line exit code in `api/errors.py`."""

from __future__ import annotations

from domain.errors import DomainError, TaskNotReviewable


class InvalidRequest(ValueError):
    """A request the use case cannot take as given: a malformed query parameter or header, a
    value that is not of its kind. `field` names the query parameter when there is one."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TooLarge(Exception):
    """A submission bigger than the configured limit."""


class NotFound(LookupError):
    """Nothing of that name in the caller's scope (an indicator; a task is `TaskNotFound`)."""


class TooManyReviews(TaskNotReviewable):
    """The task holds `max_reviews_per_task` reviews already (409): one task's log is not an
    unbounded comment thread."""

    def __init__(self, task_id: str, limit: int) -> None:
        self.task_id = task_id
        DomainError.__init__(
            self, f"task {task_id!r} already has {limit} reviews, the most a task may have"
        )
