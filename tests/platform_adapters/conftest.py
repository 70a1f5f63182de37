"""Fixtures for the platform adapter tests: a committed database with a test bucket and policies."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import create_user
from workers.platform.local_auth import LocalAuthAdmin
from workers.platform.local_storage import LocalStorage

SECRET = "test-secret-with-at-least-32-characters-xx"

SETUP = """
insert into storage.buckets (id, name, file_size_limit, allowed_mime_types)
values ('docs', 'docs', 1000, array['text/*', 'image/png']);
create policy "t: users upload to their folder" on storage.objects for insert to authenticated
  with check (bucket_id = 'docs' and (storage.foldername(name))[1] = (select auth.uid())::text);
create policy "t: users read their folder" on storage.objects for select to authenticated
  using (bucket_id = 'docs' and (storage.foldername(name))[1] = (select auth.uid())::text);
create policy "t: users update their folder" on storage.objects for update to authenticated
  using (bucket_id = 'docs' and (storage.foldername(name))[1] = (select auth.uid())::text);
create policy "t: users delete their folder" on storage.objects for delete to authenticated
  using (bucket_id = 'docs' and (storage.foldername(name))[1] = (select auth.uid())::text);
-- A quota stand-in: like a real quota trigger it sees the size only in step 3.
create function public.t_quota() returns trigger language plpgsql as $$
begin
  if (new.metadata ->> 'size')::bigint >= 900 then
    raise exception 'storage quota exceeded' using errcode = '42501';
  end if;
  return new;
end $$;
create trigger t_quota before insert or update on storage.objects
  for each row execute function public.t_quota();
"""


@pytest.fixture
def storage_url(clone_url: str) -> str:
    with psycopg.connect(clone_url) as conn:
        conn.execute(SETUP)
    return clone_url


@pytest.fixture
def local_storage(storage_url: str, tmp_path: Path) -> Iterator[LocalStorage]:
    storage = LocalStorage(
        storage_url, tmp_path / "storage", jwt_secret=SECRET, public_url="http://127.0.0.1:54321"
    )
    yield storage
    storage.close()


@pytest.fixture
def local_auth(storage_url: str) -> LocalAuthAdmin:
    return LocalAuthAdmin(storage_url)


def committed_user(url: str, **kwargs: Any) -> uuid.UUID:
    with psycopg.connect(url) as conn:
        return create_user(conn, **kwargs)
