"""`backline token`: mint a user JWT for local development (never for production)."""

from __future__ import annotations

import time
import uuid
from typing import Annotated

import jwt
import typer

from workers.cli.common import DatabaseUrl, target_url, targets_embedded
from workers.db.connect import connect, is_local_url
from workers.errors import BacklineError
from workers.platform.token_lifetime import configured_jwt_expiry
from workers.settings import get_settings


def token(
    user: Annotated[str | None, typer.Option("--user", help="auth.users id (uuid) to sign for.")] = None,
    email: Annotated[
        str | None, typer.Option("--email", help="Create (or reuse) a user with this email.")
    ] = None,
    anonymous: Annotated[bool, typer.Option("--anonymous", help="Create a new anonymous user.")] = False,
    anon_key: Annotated[
        bool, typer.Option("--anon-key", help="Mint the anon (no user) key instead.")
    ] = False,
    expires_in: Annotated[
        int | None,
        typer.Option(
            "--expires-in",
            min=60,
            help="Lifetime in seconds (default: BACKLINE_JWT_EXPIRY, else config.toml jwt_expiry).",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print an HS256 token signed with SUPABASE_JWT_SECRET, shaped like Supabase Auth's.

    Local only: refuses unless the target is the embedded default or a localhost URL.
    """
    if sum(bool(x) for x in (user, email, anonymous, anon_key)) != 1:
        raise BacklineError("give exactly one of --user, --email, --anonymous, --anon-key")
    url = target_url(database_url)
    if not targets_embedded(database_url) and not is_local_url(url):
        raise BacklineError("backline token is for local development: the target is not local")
    settings = get_settings()
    lifetime = expires_in if expires_in is not None else configured_jwt_expiry(settings)
    now = int(time.time())
    claims: dict[str, object] = {"iss": "backline", "iat": now, "exp": now + lifetime}
    if anon_key:
        claims["role"] = "anon"
    else:
        user_id, user_email, is_anonymous = _user(url, user, email, anonymous)
        claims.update(
            sub=user_id,
            role="authenticated",
            aud="authenticated",
            email=user_email or "",
            phone="",
            is_anonymous=is_anonymous,
            session_id=str(uuid.uuid4()),
            aal="aal1",
            app_metadata={"provider": "anonymous" if is_anonymous else "email"},
            user_metadata={},
        )
    typer.echo(jwt.encode(claims, settings.jwt_secret, algorithm="HS256"))


def _user(url: str, user: str | None, email: str | None, anonymous: bool) -> tuple[str, str | None, bool]:
    if user:
        try:
            uuid.UUID(user)
        except ValueError:
            raise BacklineError(f"--user must be a uuid, got {user!r}") from None
    with connect(url) as conn, conn.transaction():
        if user:
            row = conn.execute(
                "select id::text, email, is_anonymous from auth.users where id = %s", (user,)
            ).fetchone()
            if row is None:
                raise BacklineError(f"no auth user {user}")
        elif email:
            row = (
                conn.execute(
                    "select id::text, email, is_anonymous from auth.users where email = %s", (email,)
                ).fetchone()
                or conn.execute(
                    "insert into auth.users (id, aud, role, email, is_anonymous, created_at, updated_at)"
                    " values (gen_random_uuid(), 'authenticated', 'authenticated', %s, false, now(), now())"
                    " returning id::text, email, is_anonymous",
                    (email,),
                ).fetchone()
            )
        else:
            row = conn.execute(
                "insert into auth.users (id, aud, role, is_anonymous, created_at, updated_at)"
                " values (gen_random_uuid(), 'authenticated', 'authenticated', true, now(), now())"
                " returning id::text, email, is_anonymous"
            ).fetchone()
        assert row is not None
        return str(row[0]), row[1] if row[1] is None else str(row[1]), bool(row[2])
