"""Column masks: the last step before a result page leaves govlab.

Row filtering decides *which* rows a principal sees; masks decide *how much* of each
protected column they see. A few rules shape everything here:

* Every mask is computed from the **raw** column, once. Masks are never chained, so a
  policy can't accidentally reveal more by composing two "safe" masks.
* Work is vectorised (``kernels``); the only per-value Python code is the cryptography
  (``crypto``), over the distinct values of a page.
* A value a mask cannot interpret becomes ``*****``, never the raw value; nulls stay null.
* Problems name columns, masks and parameters, never data values (they reach clients).

``registry`` holds one :class:`MaskDef` per mask, with the function that computes it.
"""

from govlab.keys import EXAMPLE_MASK_KEYS
from govlab.masks.crypto import TOKEN_PREFIX, MaskContext, detokenize, tokenize_value
from govlab.masks.kernels import REDACTED
from govlab.masks.registry import (
    MASK_NAMES,
    MASKS,
    MaskDef,
    MaskFn,
    apply_mask,
    check_mask,
    mask_table,
)

__all__ = [
    "EXAMPLE_MASK_KEYS",
    "MASKS",
    "MASK_NAMES",
    "REDACTED",
    "TOKEN_PREFIX",
    "MaskContext",
    "MaskDef",
    "MaskFn",
    "apply_mask",
    "check_mask",
    "detokenize",
    "mask_table",
    "tokenize_value",
]
