"""The local auth admin transport lists and deletes auth users; deletes cascade like GoTrue's."""

from __future__ import annotations

import psycopg
import pytest

from tests.platform_adapters.conftest import committed_user
from workers.platform.auth_admin import AuthAdminError
from workers.platform.local_auth import LocalAuthAdmin


def test_list_pages_and_delete_cascades(local_auth: LocalAuthAdmin, storage_url: str):
    a = committed_user(storage_url, email="a@example.test")
    b = committed_user(storage_url, anonymous=True)
    users = local_auth.list_users(per_page=1000)
    by_id = {u.id: u for u in users}
    assert by_id[a].email == "a@example.test" and not by_id[a].is_anonymous
    assert by_id[b].is_anonymous and by_id[b].email is None
    assert len(local_auth.list_users(page=1, per_page=1)) == 1
    local_auth.delete_user(a)
    with psycopg.connect(storage_url) as conn:
        assert conn.execute("select count(*) from auth.users where id = %s", (a,)).fetchone()[0] == 0
        assert conn.execute("select count(*) from public.profiles where id = %s", (a,)).fetchone()[0] == 0
        assert conn.execute("select count(*) from public.profiles where id = %s", (b,)).fetchone()[0] == 1
    with pytest.raises(AuthAdminError) as err:
        local_auth.delete_user(a)
    assert err.value.status == 404
    with pytest.raises(AuthAdminError):
        local_auth.list_users(page=0)
