"""Owners are shown by explore() and open_share() only once their profile is public (a username).

Every user gets a profile whose display name and avatar come from the OAuth provider;
a profile is public only once its user picks a username. Before the fix explore() and
open_share() returned any owner's id, name, avatar and bio to anyone.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.helpers import act_as, keep_as
from tests.library.bodies import loop_body

Conn = psycopg.Connection[Any]
NAME = "Jane Realname"
AVATAR = "https://example.test/avatars/jane.png"
BIO = "Lives at 1 Secret Street"
NULL_OWNER = {"id": None, "username": None, "display_name": None, "avatar_url": None, "bio": None}


class Shared:
    def __init__(self, owner: uuid.UUID, doc: uuid.UUID, word: str, token: str) -> None:
        self.owner, self.doc, self.word, self.token = owner, doc, word, token


@pytest.fixture
def shared(db: Conn, make_user: Callable[..., uuid.UUID]) -> Shared:
    """A public loop and a share link of a user who signed in with OAuth and chose no username."""
    owner = make_user(full_name=NAME, avatar_url=AVATAR)
    db.execute("update public.profiles set bio = %s where id = %s", (BIO, owner))
    word = f"zq{uuid.uuid4().hex[:12]}"
    with keep_as(db, owner) as cur:
        row = cur.execute(
            "insert into public.documents (kind, title, body, visibility)"
            " values ('loop', %s, %s, 'public') returning id",
            (f"{word} loop", json.dumps(loop_body())),
        ).fetchone()
        assert row is not None
        doc = row[0]
        token = cur.execute("select public.create_share_link(%s)", (doc,)).fetchone()[0]["token"]
    return Shared(owner, doc, word, token)


def personas(make_user: Callable[..., uuid.UUID]) -> list[tuple[uuid.UUID | None, str]]:
    return [(None, "anon"), (make_user(), "authenticated")]


def explore_item(db: Conn, user: uuid.UUID | None, role: str, word: str) -> dict[str, Any]:
    with act_as(db, user, role) as cur:
        answer = cur.execute("select public.explore('loop', 'newest', %s)", (word,)).fetchone()[0]
    assert len(answer["items"]) == 1, answer
    return dict(answer["items"][0])


def open_link(db: Conn, user: uuid.UUID | None, role: str, token: str) -> dict[str, Any]:
    with act_as(db, user, role) as cur:
        return dict(cur.execute("select public.open_share(%s)", (token,)).fetchone()[0])


def assert_nothing_identifying(answer: dict[str, Any], owner: uuid.UUID) -> None:
    text = json.dumps(answer)
    for secret in (str(owner), NAME, AVATAR, BIO):
        assert secret not in text, f"{secret!r} leaked in {text}"


def test_explore_hides_an_owner_without_username(db: Conn, shared: Shared, make_user: Any) -> None:
    for user, role in personas(make_user):
        item = explore_item(db, user, role, shared.word)
        assert item["id"] == str(shared.doc)  # the document itself is public
        assert item["owner"] == NULL_OWNER
        assert_nothing_identifying(item, shared.owner)


def test_open_share_hides_an_owner_without_username(db: Conn, shared: Shared, make_user: Any) -> None:
    for user, role in personas(make_user):
        opened = open_link(db, user, role, shared.token)
        assert opened["document"]["id"] == str(shared.doc)
        assert opened["owner"] == NULL_OWNER
        assert_nothing_identifying(opened, shared.owner)


def test_owner_with_username_is_shown(db: Conn, shared: Shared, make_user: Any) -> None:
    db.execute("update public.profiles set username = 'jane_loops' where id = %s", (shared.owner,))
    expected = {
        "id": str(shared.owner),
        "username": "jane_loops",
        "display_name": NAME,
        "avatar_url": AVATAR,
        "bio": BIO,
    }
    for user, role in personas(make_user):
        assert explore_item(db, user, role, shared.word)["owner"] == expected
        assert open_link(db, user, role, shared.token)["owner"] == expected
    with act_as(db, None, "anon") as cur:
        profile = cur.execute("select public.public_profile('jane_loops')").fetchone()[0]
    assert profile["profile"] == expected and [d["id"] for d in profile["documents"]] == [str(shared.doc)]


def test_dropping_the_username_hides_the_owner_again(db: Conn, shared: Shared) -> None:
    db.execute("update public.profiles set username = 'jane_loops' where id = %s", (shared.owner,))
    assert open_link(db, None, "anon", shared.token)["owner"]["username"] == "jane_loops"
    with keep_as(db, shared.owner) as cur:
        cur.execute("update public.profiles set username = null where id = %s", (shared.owner,))
    assert open_link(db, None, "anon", shared.token)["owner"] == NULL_OWNER
    assert explore_item(db, None, "anon", shared.word)["owner"] == NULL_OWNER


def test_helper_answers_only_for_public_profiles(db: Conn, shared: Shared, make_user: Any) -> None:
    """private.public_owner is executable by the API roles (explore() runs as the caller)."""
    for user, role in personas(make_user):
        with act_as(db, user, role) as cur:
            got = cur.execute("select private.public_owner(%s)", (shared.owner,)).fetchone()[0]
            assert got == NULL_OWNER
            assert cur.execute("select private.public_owner(null)").fetchone()[0] == NULL_OWNER
            unknown = cur.execute("select private.public_owner(gen_random_uuid())").fetchone()[0]
            assert unknown == NULL_OWNER
