"""What a principal's attributes may be: the values a row filter can be bound to.

Attributes arrive signed, but signed is not sane: JSON admits ``NaN``, ``Infinity``,
integers of any size and lone surrogates, and each of those has made a row filter mean
something its author did not write (``not (${user.clearance} < 3)`` with ``NaN`` is
true for every row) or crashed a request. So every attribute is checked once, when a
:class:`~govlab.policy.Principal` is made (token minting, token verification, the CLI,
the widgets), and refused with a message that names the attribute, never its value.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

from govlab.errors import AccessDenied

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_ATTRIBUTES = 64
MAX_LIST_ITEMS = 1_000
MAX_TEXT_CHARS = 1_024
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class InvalidAttribute(AccessDenied):
    """An attribute value no filter can be bound to safely (HTTP 403, CLI exit 3)."""


def check_attributes(attrs: Any) -> dict[str, Any]:
    """Return a plain copy of ``attrs`` after checking every name and value."""
    if not isinstance(attrs, Mapping):
        raise InvalidAttribute("attributes must be an object of name: value")
    if len(attrs) > MAX_ATTRIBUTES:
        raise InvalidAttribute(f"more than {MAX_ATTRIBUTES} attributes")
    checked: dict[str, Any] = {}
    for name, value in attrs.items():
        if not isinstance(name, str) or not ATTRIBUTE_NAME.match(name):
            raise InvalidAttribute(
                "attribute names must be identifiers (letters, digits, _; at most 64)"
            )
        checked[name] = _checked_value(name, value)
    return checked


def _checked_value(name: str, value: Any) -> Any:
    if isinstance(value, list | tuple):
        if len(value) > MAX_LIST_ITEMS:
            raise InvalidAttribute(f"attribute {name!r} has more than {MAX_LIST_ITEMS} items")
        return [_checked_scalar(name, item) for item in value]
    return _checked_scalar(name, value)


def _checked_scalar(name: str, value: Any) -> Any:
    problem = scalar_problem(value)
    if problem:
        raise InvalidAttribute(f"attribute {name!r} {problem}")
    return value


def scalar_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a bound literal, or None when it can."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if INT64_MIN <= value <= INT64_MAX else "is an integer outside 64 bits"
    if isinstance(value, float):
        return None if math.isfinite(value) else "is not a finite number"
    if isinstance(value, str):
        if len(value) > MAX_TEXT_CHARS:
            return f"is longer than {MAX_TEXT_CHARS} characters"
        if "\x00" in value:
            return "contains a NUL character"
        if _SURROGATE.search(value):
            return "is not valid Unicode (a lone surrogate)"
        return None
    if isinstance(value, dt.date):  # dates and datetimes, from Python callers only
        return None
    return "has an unsupported type (use a string, number, boolean or a list of them)"
