"""`backline token`: mint a user JWT for local development (never for production)."""

from __future__ import annotations

import time
import uuid
from typing import Annotated

import typer

from workers.cli.common import (
    DatabaseUrl,
    info,
    parse_uuid,
    print_json,
    settings,
    target_url,
    targets_embedded,
)
from workers.errors import BacklineError


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
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the token with its user id, email and expiry as JSON.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Print an HS256 token signed with SUPABASE_JWT_SECRET, shaped like Supabase Auth's.

    stdout is the token alone (TOKEN=$(backline token --anonymous)); the user it signs for
    goes to stderr. --json prints token, user_id, email, is_anonymous and expires_at.
    Local only: refuses unless the target is the embedded default or a localhost URL.
    """
    import jwt

    from workers.db.connect import is_local_url

    if sum(bool(x) for x in (user, email, anonymous, anon_key)) != 1:
        raise BacklineError("give exactly one of --user, --email, --anonymous, --anon-key")
    if user:
        parse_uuid(user, "--user", "--user")
    url = target_url(database_url)
    if not targets_embedded(database_url) and not is_local_url(url):
        raise BacklineError("backline token is for local development: the target is not local")
    from workers.platform.token_lifetime import configured_jwt_expiry

    lifetime = expires_in if expires_in is not None else configured_jwt_expiry(settings())
    now = int(time.time())
    claims: dict[str, object] = {"iss": "backline", "iat": now, "exp": now + lifetime}
    user_id: str | None = None
    user_email: str | None = None
    is_anonymous = False
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
    encoded = jwt.encode(claims, settings().jwt_secret, algorithm="HS256")
    if as_json:
        print_json(
            {
                "token": encoded,
                "role": claims["role"],
                "user_id": user_id,
                "email": user_email,
                "is_anonymous": is_anonymous,
                "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + lifetime)),
            }
        )
        return
    typer.echo(encoded)
    if user_id is not None:
        kind = "anonymous user" if is_anonymous else f"user {user_email or '(no email)'}"
        info(f"{kind} {user_id}, token valid {lifetime} s")


def _user(url: str, user: str | None, email: str | None, anonymous: bool) -> tuple[str, str | None, bool]:
    from workers.db.connect import connect

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
