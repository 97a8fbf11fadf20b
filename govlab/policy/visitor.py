"""The one way to walk a bound filter: a visitor with one method per node kind.

pyiceberg's model (``pyiceberg/expressions/visitors.py``): each compile target is a
subclass of :class:`ExprVisitor` and :meth:`ExprVisitor.visit` is the single
dispatcher. A subclass that forgets a node kind fails when its class is created, at
import time, instead of falling through to a wrong answer at query time; pass
``partial=True`` for an intermediate base that leaves methods to its subclasses.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

from govlab.policy.ast import (
    AlwaysFalse,
    AlwaysTrue,
    And,
    Cmp,
    Contains,
    Expr,
    In,
    IsNull,
    Not,
    NotIn,
    NotNull,
    Or,
)

T = TypeVar("T")

#: Node class -> the visitor method that handles it. Adding a node kind to ``ast`` means
#: adding it here, and every visitor then fails at import until it handles it.
METHODS: dict[type, str] = {
    AlwaysTrue: "visit_true",
    AlwaysFalse: "visit_false",
    Cmp: "visit_cmp",
    In: "visit_in",
    NotIn: "visit_not_in",
    IsNull: "visit_is_null",
    NotNull: "visit_not_null",
    Contains: "visit_contains",
    And: "visit_and",
    Or: "visit_or",
    Not: "visit_not",
}


class ExprVisitor(Generic[T]):
    """Subclasses implement every ``visit_*``; ``visit`` dispatches on the node's class."""

    _dispatch: ClassVar[dict[type, str]] = METHODS

    def __init_subclass__(cls, partial: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if partial:
            return
        missing = [
            name for name in METHODS.values() if getattr(cls, name) is getattr(ExprVisitor, name)
        ]
        if missing:
            raise TypeError(f"{cls.__name__} does not handle {', '.join(sorted(missing))}")

    def visit(self, expr: Expr) -> T:
        method = self._dispatch.get(type(expr))
        if method is None:
            raise TypeError(f"{type(self).__name__}: not a bound filter node: {type(expr)!r}")
        result: T = getattr(self, method)(expr)
        return result

    def visit_true(self, expr: AlwaysTrue) -> T:
        raise NotImplementedError

    def visit_false(self, expr: AlwaysFalse) -> T:
        raise NotImplementedError

    def visit_cmp(self, expr: Cmp) -> T:
        raise NotImplementedError

    def visit_in(self, expr: In) -> T:
        raise NotImplementedError

    def visit_not_in(self, expr: NotIn) -> T:
        raise NotImplementedError

    def visit_is_null(self, expr: IsNull) -> T:
        raise NotImplementedError

    def visit_not_null(self, expr: NotNull) -> T:
        raise NotImplementedError

    def visit_contains(self, expr: Contains) -> T:
        raise NotImplementedError

    def visit_and(self, expr: And) -> T:
        raise NotImplementedError

    def visit_or(self, expr: Or) -> T:
        raise NotImplementedError

    def visit_not(self, expr: Not) -> T:
        raise NotImplementedError


class NnfVisitor(ExprVisitor[T], partial=True):
    """A target that only ever sees bound filters in negation normal form (``bind``
    guarantees it): a ``Not`` reaching it is a bug upstream, refused loudly."""

    def visit_not(self, expr: Not) -> T:
        raise TypeError(f"{type(self).__name__} takes filters in negation normal form")
