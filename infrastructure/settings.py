"""The one settings object (prefix `SCAMTRAIL_`), built by `load_settings()` and passed down."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCAMTRAIL_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/scamtrail"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Connections each process keeps; PostgreSQL allows 100 by default across every process.
    database_pool_size: int = Field(default=10, ge=1, le=200)
    port: int = Field(default=8000, ge=1, le=65535)
    # The arq queue analyses go to; tests give each run its own.
    queue: str = "scamtrail:analyses"
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _use_asyncpg(cls, url: str) -> str:
        return async_database_url(url)


def async_database_url(url: str) -> str:
    """Accept the usual `postgresql://` / `postgres://` forms and use the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('@')[-1]!r}")


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (tests, CLI flags) on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
