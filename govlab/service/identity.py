"""Signed identity: who a request is from is read from an HS256 token, never a header.

Tokens carry ``sub``, ``role``, ``attrs`` and ``exp``, signed with the HKDF-derived
``jwt`` key (``govlab.keys``: apart from every masking key). Attributes are checked
when a token is minted and again when it is verified (``govlab.policy.attributes``):
a signature vouches for who issued a claim, not that the claim is usable. Only the
demo mode reads the original showcase's ``X-User-Role`` / ``X-User-Context`` headers.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import jwt

from govlab.errors import GovlabError
from govlab.keys import derive_keys
from govlab.policy import Principal

ALGORITHM = "HS256"
ISSUER = "govlab"
DEFAULT_TTL_S = 3600
MAX_TTL_S = 30 * 24 * 3600
_TTL = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class InvalidToken(GovlabError):
    """Missing, malformed, forged or expired credentials (HTTP 401)."""


def signing_key(secret: bytes) -> bytes:
    return derive_keys(secret).jwt


def parse_ttl(text: str) -> int:
    m = _TTL.match(text.strip())
    if not m:
        raise GovlabError(f"--ttl expects e.g. 3600, 30m, 1h or 7d, got {text!r}")
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if not 0 < seconds <= MAX_TTL_S:
        raise GovlabError("--ttl must be between 1 second and 30 days")
    return seconds


def mint_token(
    secret: bytes,
    role: str,
    attrs: Mapping[str, Any] | None = None,
    sub: str | None = None,
    ttl_s: int = DEFAULT_TTL_S,
) -> str:
    now = int(time.time())
    principal = Principal(role=role, attrs=dict(attrs or {}), sub=sub or f"{role}-user")
    claims = {
        "sub": principal.sub,
        "role": principal.role,
        "attrs": dict(principal.attrs),
        "iat": now,
        "exp": now + ttl_s,
        "iss": ISSUER,
    }
    return jwt.encode(claims, signing_key(secret), algorithm=ALGORITHM)


def verify_token(secret: bytes, token: str) -> Principal:
    """Decode and check signature, expiry and shape; any doubt is InvalidToken."""
    return _verify(secret, token)[0]


def _verify(secret: bytes, token: str) -> tuple[Principal, float]:
    """The token's principal and its expiry (seconds since the epoch).

    The expiry is checked here against :func:`now`, the clock a remembered token is
    checked against too, not by PyJWT against its own: a fresh and a remembered token
    are then expired at the same instant, whichever path a request takes."""
    try:
        claims = jwt.decode(
            token,
            signing_key(secret),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "role", "iss"], "verify_exp": False},
        )
    except (jwt.PyJWTError, ValueError, OverflowError):
        raise InvalidToken("invalid token") from None
    for claim in ("exp", "iat", "nbf"):
        if claim in claims and not _is_time(claims[claim]):
            raise InvalidToken(f"token claim {claim!r} must be a number of seconds")
    expires = float(claims["exp"])
    if now() >= expires:
        raise InvalidToken("token expired")
    principal = _principal_from(claims.get("role"), claims.get("attrs", {}), claims.get("sub"))
    return principal, expires


def now() -> float:
    """The clock a remembered token's expiry is checked against."""
    return time.time()


class TokenVerifier:
    """:func:`verify_token` for one secret, remembering tokens already verified.

    A token is immutable and its signature, shape and attributes were checked when it
    was first seen, so a repeat is served from a bounded map (the cost of a cache hit's
    authentication); its expiry is still checked on every use.
    """

    def __init__(self, secret: bytes, maxsize: int = 4096) -> None:
        self.secret = secret
        self.maxsize = maxsize
        self._known: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str) -> Principal:
        with self._lock:
            known = self._known.get(token)
        if known is not None:
            principal, expires = known
            if now() < expires:
                return principal
            with self._lock:
                self._known.pop(token, None)
            raise InvalidToken("token expired")
        principal, expires = _verify(self.secret, token)
        with self._lock:
            self._known[token] = (principal, expires)
            while len(self._known) > self.maxsize:
                self._known.popitem(last=False)
        return principal


def _is_time(value: Any) -> bool:
    """PyJWT accepts a numeric *string* as ``exp``; a token's times must be numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def principal_from_demo_headers(role: str | None, context: str | None) -> Principal:
    """The showcase's unsigned headers; only reachable when demo auth is switched on."""
    try:
        attrs = json.loads(context) if context else {}
    except json.JSONDecodeError:
        raise InvalidToken("X-User-Context must be a JSON object") from None
    return _principal_from(role, attrs, "demo")


def _principal_from(role: Any, attrs: Any, sub: Any) -> Principal:
    if not isinstance(role, str) or not role:
        raise InvalidToken("token has no role")
    if not isinstance(attrs, dict):
        raise InvalidToken("token attrs must be an object")
    if not isinstance(sub, str):
        raise InvalidToken("token sub must be a string")
    return Principal(role=role, attrs=attrs, sub=sub)  # checks the attributes: 403
