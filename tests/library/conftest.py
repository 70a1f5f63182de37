"""Library fixtures: a document factory acting as the owner (through RLS)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.helpers import keep_as
from tests.library.bodies import folder_body, item_body, loop_body


@pytest.fixture
def make_doc(db: psycopg.Connection[Any]) -> Callable[..., uuid.UUID]:
    """Create a document as its owner (through RLS, like a frontend)."""

    def make(
        owner: uuid.UUID,
        kind: str = "loop",
        body: dict[str, Any] | None = None,
        visibility: str = "private",
        title: str = "t",
    ) -> uuid.UUID:
        if body is None:
            body = loop_body() if kind == "loop" else folder_body() if kind == "folder" else item_body()
        with keep_as(db, owner) as cur:
            row = cur.execute(
                "insert into public.documents (kind, title, body, visibility)"
                " values (%s, %s, %s, %s) returning id",
                (kind, title, json.dumps(body), visibility),
            ).fetchone()
        assert row is not None
        return uuid.UUID(str(row[0]))

    return make
