"""The keyed masks: ``hash`` (HMAC-SHA256, 128 bits) and ``tokenize`` (AES-SIV).

The only per-value Python code of the masks, since cryptography has no Arrow kernel:
it runs over the *distinct* values of a page only and is mapped back with the
dictionary-encoding indices. Keys come from ``govlab.keys`` (HKDF, one per use); a
token carries its (dataset, column) as associated data, so it opens only there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from govlab.errors import BadRequest
from govlab.keys import MaskKeys
from govlab.masks.kernels import as_string, is_binary, is_text

#: Prefix of every token, so a token is recognisable in logs and cannot be mistaken for data.
TOKEN_PREFIX = "tok_"
#: 128 bits: no birthday collision in any table govlab serves, and no brute force.
_HASH_HEX_CHARS = 32
#: A token decrypts only under the (dataset, column) it was minted for.
_TOKEN_CONTEXT = b"govlab-token/v2"
_TOKEN_BODY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class MaskContext:
    """What the keyed masks need besides the values: the keys and where the values live."""

    keys: MaskKeys
    dataset: str
    column: str


def check_key(key: bytes) -> None:
    # An empty key would make HMAC/AES-SIV outputs computable by anyone: refuse loudly.
    if not isinstance(key, bytes) or not key:
        raise ValueError("masking key must be non-empty bytes")


@lru_cache(maxsize=8)
def _hmac_pads(key: bytes) -> tuple[Any, Any]:
    """Pre-keyed inner/outer SHA-256 states (RFC 2104).

    Copying pre-keyed states is about twice as fast as ``hmac.new`` per value, and the
    output is identical to ``hmac.new(key, msg, sha256)``.
    """
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


def _hmac_hex(key: bytes) -> Callable[[bytes], str]:
    inner, outer = _hmac_pads(key)
    inner_copy, outer_copy = inner.copy, outer.copy

    def one(message: bytes) -> str:
        h = inner_copy()
        h.update(message)
        o = outer_copy()
        o.update(h.digest())
        digest: str = o.hexdigest()
        return digest[:_HASH_HEX_CHARS]

    return one


def _hash_input(values: pa.Array) -> pa.Array:
    """The bytes that get hashed: UTF-8 of the value's string form (raw bytes for binary)."""
    if is_text(values.type):
        return as_string(values).cast(pa.binary())
    if is_binary(values.type):
        return values.cast(pa.binary())
    try:
        return values.cast(pa.string()).cast(pa.binary())
    except pa.ArrowNotImplementedError:
        # Nested/interval types have no Arrow string cast; a canonical JSON form keeps the
        # hash deterministic. Rare, so a Python pass is acceptable here.
        forms = [
            None if v is None else json.dumps(v, sort_keys=True, default=str).encode()
            for v in values.to_pylist()
        ]
        return pa.array(forms, pa.binary())


def _per_distinct(values: pa.Array, fn: Callable[[bytes], str]) -> pa.Array:
    """Apply a per-value Python ``fn`` to each distinct value once and broadcast back.

    Dictionary-encoding gives the distinct values and the row -> distinct index map in
    one hash pass; null rows get null indices, so ``take`` keeps them null.
    """
    encoded = pc.dictionary_encode(values)
    outputs = pa.array([fn(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return pc.take(outputs, encoded.indices)


def hash_mask(values: pa.Array, keys: MaskKeys) -> pa.Array:
    check_key(keys.hash)
    return _per_distinct(_hash_input(values), _hmac_hex(keys.hash))


@lru_cache(maxsize=8)
def _siv(key: bytes) -> AESSIV:
    """AES-SIV-256 for the 64-byte tokenize key (derived apart from every other key).

    SIV is deterministic by design (equal values -> equal tokens, so tokenised columns
    still join and group) and misuse-resistant, unlike a fixed-nonce GCM.
    """
    return AESSIV(key)


def _token_context(dataset: str, column: str) -> list[bytes]:
    """Associated data: a token minted for (dataset, column) fails to decrypt elsewhere."""
    return [_TOKEN_CONTEXT, dataset.encode("utf-8"), column.encode("utf-8")]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _token_of_bytes(keys: MaskKeys, dataset: str, column: str) -> Callable[[bytes], str]:
    encrypt = _siv(keys.tokenize).encrypt
    context = _token_context(dataset, column)

    def one(plain: bytes) -> str:
        return TOKEN_PREFIX + _b64(encrypt(plain, context))

    return one


def tokenize_mask(values: pa.Array, keys: MaskKeys, dataset: str, column: str) -> pa.Array:
    check_key(keys.tokenize)
    tokens = _token_of_bytes(keys, dataset, column)
    return _per_distinct(as_string(values).cast(pa.binary()), tokens)


def tokenize_value(value: str, keys: MaskKeys, dataset: str, column: str) -> str:
    """Token of one string, identical to what the ``tokenize`` mask emits for it there."""
    check_key(keys.tokenize)
    return _token_of_bytes(keys, dataset, column)(value.encode("utf-8"))


def detokenize(token: str, keys: MaskKeys, dataset: str, column: str) -> str:
    """Recover the value behind a token minted with ``keys`` for (dataset, column).

    AES-SIV authenticates the ciphertext and the (dataset, column) context, so any token
    not produced with these keys for this column (other key, other dataset or column,
    tampered, truncated, garbage) fails the same way with one generic message: the
    caller learns nothing about why.
    """
    check_key(keys.tokenize)
    invalid = BadRequest("not a valid token")
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
        raise invalid
    body = token[len(TOKEN_PREFIX) :]
    if not _TOKEN_BODY.fullmatch(body):
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise invalid from None
    if _b64(raw) != body:  # non-canonical encoding: not something we produced
        raise invalid
    try:
        return _siv(keys.tokenize).decrypt(raw, _token_context(dataset, column)).decode("utf-8")
    except (InvalidTag, ValueError):
        raise invalid from None
