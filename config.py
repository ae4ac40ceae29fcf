"""Every setting SHMS reads from the environment, in one typed place.

Empty ``MONGODB_URL`` / ``REDIS_URL`` select the embedded default (in-process mongomock-motor and
fakeredis) so a fresh checkout serves a demo facility with no services installed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    shms_env: Literal["development", "production"] = Field(
        default="development", description="`production` hardens the endpoint (see Security)."
    )
    mongodb_url: str = Field(
        default="", description="MongoDB connection string; empty runs the embedded store."
    )
    mongodb_db: str = Field(default="shms", description="Database name.")
    redis_url: str = Field(default="", description="Redis URL; empty runs in-process fakeredis.")
    shms_seed_demo: bool | None = Field(
        default=None,
        description="Seed the demo facility at start-up; default: only when embedded and empty.",
    )
    shms_demo_patients: int = Field(
        default=200, ge=1, le=1_000_000, description="Patients in the demo seed."
    )
    shms_default_page_size: int = Field(default=20, ge=1, le=1000, description="`first` default.")
    shms_max_page_size: int = Field(
        default=100, ge=1, le=1000, description="Largest `first` a list accepts."
    )
    shms_graphiql: bool | None = Field(
        default=None, description="Serve GraphiQL; default: on except in production."
    )
    shms_log_level: str = Field(default="INFO", description="Python log level.")

    @property
    def embedded_mongo(self) -> bool:
        return not self.mongodb_url

    @property
    def embedded_redis(self) -> bool:
        return not self.redis_url

    @property
    def graphiql_enabled(self) -> bool:
        if self.shms_graphiql is not None:
            return self.shms_graphiql
        return self.shms_env != "production"

    @property
    def seed_demo_enabled(self) -> bool:
        if self.shms_seed_demo is not None:
            return self.shms_seed_demo
        return self.embedded_mongo


@lru_cache
def get_settings() -> Settings:
    return Settings()
