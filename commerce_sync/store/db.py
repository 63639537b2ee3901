"""Engine, sessions and start-up migrations.

SQLite (the embedded default) gets WAL and a busy timeout so the API and the worker can
write at once; Postgres is reached with psycopg 3. Migrations are applied with alembic
at start-up by every process that opens the database, which is idempotent.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlmodel import Session


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` URLs use psycopg 3, the driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database if parsed.database not in (None, "", ":memory:") else None
        if database is not None:
            # Orders, customers and dead letters live here: for this user's eyes only.
            Path(database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            if database is not None:  # SQLite gives its -wal and -shm files the same mode
                with contextlib.suppress(PermissionError):  # someone else's file: theirs to set
                    Path(database).chmod(0o600)

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def alembic_config(url: str) -> Config:
    script_location = Path(str(resources.files("commerce_sync.store").joinpath("migrations")))
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


# Any constant: every process that migrates takes the same Postgres advisory lock.
MIGRATION_LOCK_ID = 0x636F6D6D  # "comm"
# Alembic's migration context is process-global: threads of one process take turns.
_MIGRATING = threading.Lock()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision.

    Processes starting together on a fresh database (the API and several workers) take
    turns instead of racing to create the same tables: on Postgres under a
    transaction-scoped advisory lock, on SQLite inside a `BEGIN IMMEDIATE` transaction
    (SQLite's write lock; its DDL is transactional).
    """
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with _MIGRATING:
        if engine.dialect.name == "sqlite":
            _migrate_sqlite(engine, config)
            return
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")


def _migrate_sqlite(engine: Engine, config: Config) -> None:
    # The sqlite3 driver's own transaction handling would commit DDL statement by
    # statement; take control of it for this one connection.
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        previous = raw.isolation_level
        raw.isolation_level = None
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                connection.exec_driver_sql("COMMIT")
            except BaseException:
                connection.exec_driver_sql("ROLLBACK")
                raise
        finally:
            raw.isolation_level = previous


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session committed on success and rolled back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise
