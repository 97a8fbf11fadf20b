"""Every key govlab uses, derived from the one deployment secret with HKDF.

Each use gets its own key under its own label, so no output of one use can help
against another: hash-masking a label string reveals nothing about the signing key,
and a leaked cache key cannot forge a token. Rotation is one operation: change
``GOVLAB_SECRET`` (or the key file) and restart; every derived key changes with it,
old tokens stop verifying, old page-cache entries are no longer addressed (the page
key carries :attr:`DerivedKeys.mask_fingerprint`), old tokens no longer detokenize.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_LABEL_PREFIX = b"govlab/v2/"
#: AES-SIV-256 takes a 64-byte key; every other use takes 32 bytes.
_LENGTHS = {"jwt": 32, "hash": 32, "tokenize": 64, "audit": 32, "cache": 32}


def derive(secret: bytes, label: str, length: int = 32) -> bytes:
    """HKDF-SHA256(secret, info = "govlab/v2/<label>")."""
    if not isinstance(secret, bytes) or not secret:
        raise ValueError("the deployment secret must be non-empty bytes")
    kdf = HKDF(
        algorithm=hashes.SHA256(), length=length, salt=None, info=_LABEL_PREFIX + label.encode()
    )
    return kdf.derive(secret)


@dataclass(frozen=True)
class MaskKeys:
    """The two keys the keyed masks use: ``hash`` (HMAC) and ``tokenize`` (AES-SIV)."""

    hash: bytes = field(repr=False)
    tokenize: bytes = field(repr=False)

    @property
    def fingerprint(self) -> str:
        """A one-way digest that changes whenever either key does (never the key itself)."""
        digest = hashlib.sha256(b"govlab/v2/mask-fingerprint\0" + self.hash + self.tokenize)
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class DerivedKeys:
    jwt: bytes = field(repr=False)
    masks: MaskKeys
    audit: bytes = field(repr=False)
    cache: bytes = field(repr=False)

    @property
    def mask_fingerprint(self) -> str:
        return self.masks.fingerprint

    def audit_fingerprint(self, text: str) -> str:
        """A keyed fingerprint: equal texts match, but no text can be guessed from it
        offline (unlike a plain hash of a short query)."""
        return hmac.digest(self.audit, text.encode("utf-8", "replace"), "sha256").hex()[:16]


@lru_cache(maxsize=8)
def derive_keys(secret: bytes) -> DerivedKeys:
    keys = {label: derive(secret, label, n) for label, n in _LENGTHS.items()}
    return DerivedKeys(
        jwt=keys["jwt"],
        masks=MaskKeys(hash=keys["hash"], tokenize=keys["tokenize"]),
        audit=keys["audit"],
        cache=keys["cache"],
    )


#: Public, documented keys used only for the legend examples of the keyed masks.
EXAMPLE_MASK_KEYS = derive_keys(b"govlab-legend-example-key").masks
