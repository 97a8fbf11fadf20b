"""What "case-insensitive" means for a text match, pinned down once for every target.

**ASCII case folding.** A query term matches a value when the term is a substring of
the value after both have had ``A``-``Z`` replaced by ``a``-``z``. Every other
character, ``ß``, ``ẞ``, ``İ``, ``ı``, ``É``, ``Σ``, the Kelvin sign, matches only
itself, code point for code point (no Unicode normalisation either: a precomposed ``é``
is not ``e`` + a combining accent).

Why not Unicode: the engines govlab compiles to disagree on it. Python's and Rust's
(Daft's) ``lower()`` use the full, context-dependent mapping (``İ`` becomes two code
points, a final ``Σ`` becomes ``ς``); Arrow's ``utf8_lower`` and DuckDB use a per-code-
point mapping; RE2's ``(?i)`` (Arrow's ``match_substring(ignore_case=True)``) matches
whole case-folding orbits (``ſ`` = ``s``, ``K`` = ``k``); Java (Spark) folds ``İ`` to
``i``; SQLite's ``LOWER`` is ASCII-only. The same search would select different rows on
different engines. ASCII folding is the one definition every target computes exactly
with built-ins: ``str.translate`` (the oracle), ``pc.ascii_lower`` (Arrow),
``translate`` (Daft, DuckDB, Spark, Trino, Databricks, Snowflake) and ``LOWER``
(SQLite, ASCII-only by definition). The price: ``MÜLLER`` is not found by ``müller``
(``Ü`` is not ``ü``), while ``Müller`` is. The property tests check every target
against :func:`contains` on non-ASCII text.
"""

from __future__ import annotations

ASCII_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ASCII_LOWER = "abcdefghijklmnopqrstuvwxyz"
_FOLD = str.maketrans(ASCII_UPPER, ASCII_LOWER)


def fold(text: str) -> str:
    """``text`` with ASCII upper-case letters made lower-case, nothing else changed."""
    return text.translate(_FOLD)


def contains(value: str, term: str) -> bool:
    """The definition: ``term`` occurs in ``value``, ASCII letters compared caselessly."""
    return fold(term) in fold(value)


def caseless_regex(term: str) -> str:
    """A regular expression that finds ``term`` under this definition, for engines whose
    fastest match is a regex (Daft's Rust ``regex``): each ASCII letter becomes a
    two-letter class (``[aA]``), every other character a ``\\x{...}`` code-point escape,
    so nothing in the term is ever read as regex syntax and no ``(?i)`` Unicode folding
    applies."""
    parts = []
    for char in term:
        if char in ASCII_UPPER or char in ASCII_LOWER:
            parts.append(f"[{char.lower()}{char.upper()}]")
        else:
            parts.append(f"\\x{{{ord(char):X}}}")
    return "".join(parts)


def has_ascii_letter(text: str) -> bool:
    """Whether folding can change ``text`` (without a letter a plain match suffices)."""
    return fold(text) != text.translate(str.maketrans(ASCII_LOWER, ASCII_UPPER))
