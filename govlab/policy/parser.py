"""A small recursive-descent parser for row filters. Policy text is data: it is
tokenised and parsed into the unbound AST, never evaluated or spliced into code.

Grammar (keywords are case-insensitive)::

    expr      := and_expr ("or" and_expr)*
    and_expr  := not_expr ("and" not_expr)*
    not_expr  := "not" not_expr | predicate
    predicate := "(" expr ")"
               | operand ( CMP operand | ["not"] "in" list | "is" ["not"] "null" )?
    list      := "[" [operand ("," operand)*] "]" | "(" ... ")" | placeholder
    operand   := column | string | number | "true" | "false" | placeholder
    placeholder := "${user." NAME "}"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from govlab.errors import PolicyError
from govlab.policy.ast import (
    CMP_OP,
    ColumnRef,
    Const,
    Operand,
    Placeholder,
    UAnd,
    UBool,
    UCompare,
    UExpr,
    UIn,
    UIsNull,
    UNot,
    UOr,
)

MAX_FILTER_LENGTH = 4_000
MAX_NESTING = 64
KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false"}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<placeholder>\$\{\s*user\.(?P<attr>[A-Za-z_][A-Za-z0-9_]*)\s*\})
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>==|!=|<=|>=|<|>)
  | (?P<punct>[()\[\],])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


@dataclass(frozen=True)
class Token:
    kind: str  # placeholder | number | string | op | punct | name | keyword | end
    text: str
    pos: int
    value: object = None


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_FILTER_LENGTH:
        raise PolicyError(f"row filter is longer than {MAX_FILTER_LENGTH} characters")
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            hint = " (use == for equality)" if text[pos] == "=" else ""
            raise PolicyError(f"unexpected character {text[pos]!r} at position {pos}{hint}")
        kind = m.lastgroup if m.lastgroup != "attr" else "placeholder"
        if kind != "ws":
            tokens.append(_make_token(kind or "", m, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _make_token(kind: str, m: re.Match[str], pos: int) -> Token:
    text = m.group(0)
    if kind == "placeholder":
        return Token(kind, text, pos, m.group("attr"))
    if kind == "number":
        is_float = any(c in text for c in ".eE")
        return Token(kind, text, pos, float(text) if is_float else int(text))
    if kind == "string":
        return Token(kind, text, pos, _unescape(text[1:-1], pos))
    if kind == "name" and text.lower() in KEYWORDS:
        return Token("keyword", text.lower(), pos)
    return Token(kind, text, pos)


def _unescape(body: str, pos: int) -> str:
    out: list[str] = []
    chars = iter(body)
    for c in chars:
        if c != "\\":
            out.append(c)
            continue
        nxt = next(chars, "")
        if nxt not in _ESCAPES:
            raise PolicyError(f"unknown escape \\{nxt} in string at position {pos}")
        out.append(_ESCAPES[nxt])
    return "".join(out)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at_keyword(self, *words: str) -> bool:
        return self.tok.kind == "keyword" and self.tok.text in words

    def at_punct(self, char: str) -> bool:
        return self.tok.kind == "punct" and self.tok.text == char

    def expect_punct(self, char: str) -> None:
        if not self.at_punct(char):
            raise self.error(f"expected {char!r}")
        self.advance()

    def error(self, message: str) -> PolicyError:
        found = "end of filter" if self.tok.kind == "end" else repr(self.tok.text)
        return PolicyError(f"{message} at position {self.tok.pos}, found {found}")

    def parse(self) -> UExpr:
        if self.tok.kind == "end":
            raise PolicyError("row filter is empty (write true to allow every row)")
        expr = self.parse_or()
        if self.tok.kind != "end":
            raise self.error("unexpected token")
        return expr

    def parse_or(self) -> UExpr:
        expr = self.parse_and()
        while self.at_keyword("or"):
            self.advance()
            expr = UOr(expr, self.parse_and())
        return expr

    def parse_and(self) -> UExpr:
        expr = self.parse_not()
        while self.at_keyword("and"):
            self.advance()
            expr = UAnd(expr, self.parse_not())
        return expr

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(f"filter is nested more than {MAX_NESTING} levels deep")

    def parse_not(self) -> UExpr:
        if self.at_keyword("not"):
            self.advance()
            self.nest()
            child = self.parse_not()
            self.depth -= 1
            return UNot(child)
        return self.parse_predicate()

    def parse_predicate(self) -> UExpr:
        if self.at_punct("("):
            self.advance()
            self.nest()
            expr = self.parse_or()
            self.expect_punct(")")
            self.depth -= 1
            return expr
        left = self.parse_operand()
        if self.tok.kind == "op":
            op = CMP_OP[self.advance().text]
            return UCompare(op, left, self.parse_operand())
        if self.at_keyword("not") and self.tokens[self.i + 1].text == "in":
            self.i += 2
            return UIn(left, self.parse_list(), negated=True)
        if self.at_keyword("in"):
            self.advance()
            return UIn(left, self.parse_list(), negated=False)
        if self.at_keyword("is"):
            self.advance()
            negated = self.at_keyword("not")
            if negated:
                self.advance()
            if not self.at_keyword("null"):
                raise self.error("expected 'null' after 'is'")
            self.advance()
            return UIsNull(left, negated)
        return UBool(left)

    def parse_operand(self) -> Operand:
        tok = self.tok
        if tok.kind in ("number", "string"):
            self.advance()
            if not isinstance(tok.value, str | int | float):  # the tokenizer's own values
                raise self.error("expected a value")
            return Const(tok.value)
        if tok.kind == "placeholder":
            self.advance()
            return Placeholder(str(tok.value))
        if tok.kind == "name":
            self.advance()
            return ColumnRef(tok.text)
        if self.at_keyword("true", "false"):
            self.advance()
            return Const(tok.text == "true")
        raise self.error("expected a column, a literal or ${user.NAME}")

    def parse_list(self) -> tuple[Operand, ...] | Placeholder:
        if self.tok.kind == "placeholder":
            return Placeholder(str(self.advance().value))
        close = {"[": "]", "(": ")"}.get(self.tok.text) if self.tok.kind == "punct" else None
        if close is None:
            raise self.error("expected a list [..] or ${user.NAME} after 'in'")
        self.advance()
        items: list[Operand] = []
        while not self.at_punct(close):
            items.append(self.parse_operand())
            if not self.at_punct(close):
                self.expect_punct(",")
        self.advance()
        return tuple(items)


@lru_cache(maxsize=512)
def parse_filter(text: str) -> UExpr:
    """Parse a row filter; cached because policies are re-bound on every request."""
    return _Parser(tokenize(text)).parse()
