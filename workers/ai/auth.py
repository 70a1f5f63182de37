"""Verify Supabase access tokens: HS256 (project secret) or ES256/RS256 (JWKS).

The JWKS is cached for a TTL and refetched when a token names an unknown
`kid` (key rotation), at most once per MIN_REFETCH_SECONDS so forged kids
cannot make us hammer the auth server.

Verified tokens are remembered by their exact text until their `exp` (a
bounded LRU, TokenCache): the same bytes verify the same way under the same
keys, so a hit skips only the signature and claim checks already passed. An
asymmetric token is re-verified in full once the JWKS is stale or its key
left the JWKS, so key removal still takes effect at the next refresh.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

ASYMMETRIC = ("ES256", "RS256")
MIN_REFETCH_SECONDS = 30.0
API_ROLES = ("authenticated", "anon")


class AuthError(Exception):
    """The request's token is missing or not acceptable; the message is safe to return."""


@dataclass(frozen=True)
class Caller:
    user_id: str
    role: str
    claims: dict[str, Any]


class JWKSCache:
    def __init__(self, url: str | None, ttl: float, client: httpx.AsyncClient) -> None:
        self.url = url
        self.ttl = ttl
        self.client = client
        self.keys: dict[str, jwt.PyJWK] = {}
        self.fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, kid: str | None) -> jwt.PyJWK:
        now = time.monotonic()
        stale = now - self.fetched_at > self.ttl
        if stale or (kid not in self.keys and now - self.fetched_at > MIN_REFETCH_SECONDS):
            await self._refresh()
        if kid is None and len(self.keys) == 1:
            return next(iter(self.keys.values()))
        key = self.keys.get(kid or "")
        if key is None:
            raise AuthError("token signed by an unknown key")
        return key

    async def _refresh(self) -> None:
        if not self.url:
            raise AuthError("asymmetric tokens are not accepted: no JWKS URL configured")
        async with self._lock:
            if time.monotonic() - self.fetched_at < 1.0:
                return
            try:
                resp = await self.client.get(self.url, timeout=5.0)
                resp.raise_for_status()
                data = resp.json()
            except (httpx.HTTPError, json.JSONDecodeError):
                if self.keys:  # keep serving the last known keys while auth is down
                    return
                raise AuthError("cannot fetch the signing keys (JWKS)") from None
            keys: dict[str, jwt.PyJWK] = {}
            for jwk in data.get("keys", []):
                try:
                    key = jwt.PyJWK(jwk)
                except (jwt.PyJWTError, KeyError, ValueError):
                    continue
                keys[str(jwk.get("kid", ""))] = key
            self.keys = keys
            self.fetched_at = time.monotonic()


class TokenCache:
    """Callers of verified tokens by exact token text until `exp`, least recently used out."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[str, tuple[float, str | None, Caller]] = OrderedDict()

    def get(self, token: str) -> tuple[str | None, Caller] | None:
        hit = self.entries.get(token)
        if hit is None:
            return None
        exp, kid, caller = hit
        if time.time() >= exp:
            del self.entries[token]
            return None
        self.entries.move_to_end(token)
        return kid, caller

    def put(self, token: str, exp: float, kid: str | None, caller: Caller) -> None:
        if self.size <= 0 or exp <= time.time():
            return
        self.entries[token] = (exp, kid, caller)
        self.entries.move_to_end(token)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


class Verifier:
    def __init__(
        self, *, secret: str, audience: str, allow_anonymous: bool, jwks: JWKSCache, cache_size: int = 0
    ) -> None:
        self.secret = secret
        self.audience = audience
        self.allow_anonymous = allow_anonymous
        self.jwks = jwks
        self.cache = TokenCache(cache_size)

    def _cached(self, token: str) -> Caller | None:
        hit = self.cache.get(token)
        if hit is None:
            return None
        kid, caller = hit
        if kid is not None:  # asymmetric: only while the JWKS is fresh and still holds the key
            fresh = time.monotonic() - self.jwks.fetched_at <= self.jwks.ttl
            if not fresh or kid not in self.jwks.keys:
                return None
        return caller

    async def verify(self, authorization: str | None) -> Caller:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise AuthError("missing bearer token")
        token = authorization[7:].strip()
        cached = self._cached(token)
        if cached is not None:
            return cached
        caller, kid, exp = await self._verify(token)
        self.cache.put(token, exp, kid, caller)
        return caller

    async def _verify(self, token: str) -> tuple[Caller, str | None, float]:
        """(caller, JWKS key id or None for HS256, exp) of a fully verified token."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        alg = header.get("alg")
        key: Any
        kid: str | None = None
        if alg == "HS256":
            key = self.secret
        elif alg in ASYMMETRIC:
            jwk = await self.jwks.get(header.get("kid"))
            key = jwk.key
            kid = next(k for k, v in self.jwks.keys.items() if v is jwk)
        else:
            raise AuthError("unsupported token algorithm")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                options={"require": ["exp", "sub", "role"]},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError("token audience not accepted") from None
        except jwt.PyJWTError:
            raise AuthError("invalid token") from None
        if claims.get("role") != "authenticated":
            raise AuthError("a signed-in user token is required")
        if claims.get("is_anonymous") and not self.allow_anonymous:
            raise AuthError("anonymous users may not use the AI proxy")
        caller = Caller(user_id=str(claims["sub"]), role="authenticated", claims=claims)
        return caller, kid, float(claims["exp"])
