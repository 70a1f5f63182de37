"""Fixtures for data-rights tests: a committed database, local adapters and a JobContext stand-in."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from workers.platform.factory import Adapters, make_adapters
from workers.settings import Settings

IMAGES_SETUP = """
insert into storage.buckets (id, name, file_size_limit, allowed_mime_types)
values ('images', 'images', 5242880, array['image/*'])
on conflict (id) do nothing;
create policy "t: users upload images to their folder" on storage.objects for insert to authenticated
  with check (bucket_id = 'images' and (storage.foldername(name))[1] = (select auth.uid())::text);
"""


@dataclass
class FakeJobContext:
    """Built directly in tests: the attributes of the runtime's JobContext the handlers use."""

    settings: Settings
    database_url: str | None
    owner_id: uuid.UUID | None = None
    job_id: uuid.UUID = field(default_factory=uuid.uuid4)
    kind: str = "export"
    attempt: int = 1
    beats: list[int] = field(default_factory=list)

    def heartbeat(self) -> None:
        self.beats.append(1)

    def should_stop(self) -> bool:
        return False


@pytest.fixture
def rights_url(clone_url: str) -> str:
    with psycopg.connect(clone_url) as conn:
        conn.execute(IMAGES_SETUP)
    return clone_url


@pytest.fixture
def settings(rights_url: str, tmp_path: Path) -> Settings:
    return Settings(DATABASE_URL=rights_url, BACKLINE_DATA_DIR=str(tmp_path / "data"))


@pytest.fixture
def adapters(settings: Settings) -> Iterator[Adapters]:
    a = make_adapters(settings)
    yield a
    a.close()


@pytest.fixture
def make_ctx(settings: Settings, rights_url: str) -> Callable[..., FakeJobContext]:
    def make(owner: uuid.UUID | None = None, kind: str = "export") -> FakeJobContext:
        return FakeJobContext(settings, rights_url, owner, kind=kind)

    return make
