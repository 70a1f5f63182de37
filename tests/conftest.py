"""Test harness: a real PostgreSQL (embedded default or DATABASE_URL), never a mock.

A template database is migrated once per session; `db` is a connection to a
clone of it inside a transaction that is rolled back after each test;
`clone_url` gives a test its own fresh migrated database when it must commit
(concurrency, migrations, workers).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import conninfo, sql

from tests.helpers import create_user
from workers.db import migrations
from workers.db.embedded import EmbeddedServer
from workers.db.platform_layer import default_privileges_mode
from workers.settings import PROJECT_ROOT

TEST_DATA_DIR = Path(os.environ.get("BACKLINE_TEST_DATA_DIR", PROJECT_ROOT / ".backline-test"))


def _with_db(url: str, dbname: str) -> str:
    return conninfo.make_conninfo(url, dbname=dbname)


@pytest.fixture(scope="session")
def server_url() -> str:
    """Admin URL of the cluster the tests create their databases in."""
    url = os.environ.get("DATABASE_URL") or os.environ.get("SUPABASE_DB_URL")
    if url:
        return url
    return EmbeddedServer(TEST_DATA_DIR).ensure_running().tcp_url()


def _create_db(server_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        query = sql.SQL("create database {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        conn.execute(query)
    return _with_db(server_url, name)


def _drop_db(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def template_name(server_url: str) -> Iterator[str]:
    """A migrated database used only as a template for clones."""
    name = f"bl_tpl_{uuid.uuid4().hex[:12]}"
    url = _create_db(server_url, name)
    migrations.migrate(url, PROJECT_ROOT / "migrations")
    yield name
    _drop_db(server_url, name)


@pytest.fixture(scope="session")
def default_privileges(server_url: str, template_name: str) -> str:
    """The platform flavour the suite runs in: `legacy` or `none` (BACKLINE_DEFAULT_PRIVILEGES)."""
    with psycopg.connect(_with_db(server_url, template_name)) as conn:
        return default_privileges_mode(conn)


@pytest.fixture
def make_database(server_url: str, template_name: str) -> Iterator[Callable[..., str]]:
    """Factory: a new database, migrated (clone of the template) or empty. Dropped after."""
    created: list[str] = []

    def make(*, migrated: bool = True) -> str:
        name = f"bl_t_{uuid.uuid4().hex[:12]}"
        created.append(name)
        return _create_db(server_url, name, template_name if migrated else None)

    yield make
    for name in created:
        _drop_db(server_url, name)


@pytest.fixture
def clone_url(make_database: Callable[..., str]) -> str:
    """URL of a fresh migrated database this test may commit to."""
    return make_database()


@pytest.fixture(scope="session")
def shared_db_url(server_url: str, template_name: str) -> Iterator[str]:
    name = f"bl_s_{uuid.uuid4().hex[:12]}"
    url = _create_db(server_url, name, template_name)
    yield url
    _drop_db(server_url, name)


@pytest.fixture
def db(shared_db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """Superuser connection to the migrated database; everything is rolled back after."""
    conn = psycopg.connect(shared_db_url)
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


@pytest.fixture
def make_user(db: psycopg.Connection[Any]) -> Callable[..., uuid.UUID]:
    """Factory: an auth user (email or anonymous) inside the test transaction."""

    def make(email: str | None = None, anonymous: bool = False, **meta: Any) -> uuid.UUID:
        return create_user(db, email=email, anonymous=anonymous, **meta)

    return make
