"""A masked generated value must not be derivable from a column the same role sees.

Issue 9, item 7: ``account_number`` was a public formula of ``account_id``, so every
mask on it was void for every role (all of them see ``account_id``). This file checks
the generated data of all three datasets, for every role of the shipped policies, with
two detectors. Neither can be a plain functional-dependency test: within one table every
column is a function of the unique primary key, so such a test flags everything or,
with the key left out, misses the very bug above.

**Formulas (two seeds).** Values drawn from the seeded RNG change with the seed; a value
computed from a visible column ``u`` by a seed-independent formula does not. So the
dataset is generated with two seeds and, over the pairs of rows (one from each table)
that have the same ``u``, we measure how often the masked column ``m`` agrees: as a
whole, and in its first and in its last 4 characters (a formula for part of the value).
Flagged when it agrees in at least half of those pairs and at least 25 points more often
than two random rows do (so a column with few values is not flagged for agreeing by
chance). ``u`` whose values do not recur across seeds (floats, timestamps) give too few
pairs to judge and are skipped; the second detector still covers them.

**Embedding (shared words).** A value built from a visible one plus some randomness (an
e-mail from the row's name and a random number, a note quoting the row's condition)
agrees across seeds only by chance but shares text with it. Words are lower-cased runs
of >= 3 letters or >= 3 digits. Per row we take the words of the raw masked value that
its mask hides (absent from the masked output: ``city_only`` shows the city, so a
branch named after that city reveals nothing more) and look for them among the words
of the visible value of the same row. Flagged when the share of rows with such a word
exceeds, by 5 points, the share for mismatched rows (row i against row i + 1), which is
what chance gives.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from govlab import masks
from govlab.generators import DATASETS, iter_batches
from govlab.policy import load_policy

ROWS = 5_000  # enough rows for names (11,990 combinations) to recur across seeds
SEEDS = (11, 29)
GOVERNANCE = Path(__file__).resolve().parents[1] / "governance"

MIN_PAIRS = 50  # fewer pairs with equal u than this: no judgement
FORMULA_RATE = 0.5  # a formula makes m agree in (nearly) every pair
FORMULA_EXCESS = 0.25
EMBED_EXCESS = 0.05  # old e-mails: ~98 points over chance; independent columns: < 1

MaskPlan = Mapping[str, tuple[str, Mapping[str, Any]]]


# ------------------------------------------------------------------------ fixtures


@functools.cache
def generated(dataset: str, seed: int) -> pa.Table:
    spec = DATASETS[dataset]
    return pa.Table.from_batches(list(iter_batches(spec, ROWS, seed=seed)), schema=spec.schema)


def shipped_roles() -> list[tuple[str, str, dict[str, tuple[str, dict[str, Any]]]]]:
    """(dataset, role, {column: (mask, params)}) for every role of the shipped policies."""
    out = []
    for dataset in DATASETS:
        policy = load_policy(GOVERNANCE / f"{dataset}.yaml").policy
        for role in policy.roles:
            plan = {col: (m.type, dict(m.params)) for col, m in role.column_masks.items()}
            out.append((dataset, role.id, plan))
    return out


ROLES = shipped_roles()
ROLE_IDS = [f"{dataset}-{role}" for dataset, role, _ in ROLES]


def visible_columns(table: pa.Table, plan: MaskPlan) -> list[str]:
    return [col for col in table.column_names if col not in plan]


# ------------------------------------------------------------- detector 1: formulas


def _views(values: pa.ChunkedArray) -> dict[str, pa.ChunkedArray]:
    """The whole value, and for text its first and last 4 characters."""
    if not pa.types.is_string(values.type):
        return {"value": values}
    return {
        "value": values,
        "first 4 chars": pc.utf8_slice_codeunits(values, 0, 4),
        "last 4 chars": pc.utf8_slice_codeunits(values, -4),
    }


def _codes(a: pa.ChunkedArray, b: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, int]:
    """Both seeds' values as codes of one shared dictionary (-1 for null), and its size."""
    joint = pc.dictionary_encode(pa.concat_arrays([a.combine_chunks(), b.combine_chunks()]))
    codes = pc.fill_null(joint.indices, -1).to_numpy().astype(np.int64)
    return codes[: len(a)], codes[len(a) :], len(joint.dictionary)


def _pairs(keys_a: np.ndarray, keys_b: np.ndarray) -> int:
    """Pairs (row of a, row of b) with equal key: sum over keys of count_a * count_b."""
    values_a, counts_a = np.unique(keys_a[keys_a >= 0], return_counts=True)
    values_b, counts_b = np.unique(keys_b[keys_b >= 0], return_counts=True)
    _, in_a, in_b = np.intersect1d(values_a, values_b, assume_unique=True, return_indices=True)
    return int(counts_a[in_a] @ counts_b[in_b])


class SeedPair:
    """One dataset generated with two seeds, each column coded once for the pair counts."""

    def __init__(self, a: pa.Table, b: pa.Table) -> None:
        self.a, self.b = a, b
        self._codes: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, int]] = {}

    def codes(self, column: str, view: str = "value") -> tuple[np.ndarray, np.ndarray, int]:
        if (column, view) not in self._codes:
            pair = _views(self.a[column])[view], _views(self.b[column])[view]
            self._codes[column, view] = _codes(*pair)
        return self._codes[column, view]

    def agreement(self, m: str, view: str, u: str) -> tuple[float, float, int]:
        """(share of pairs with equal u whose m view is equal, the same for any pair, pairs)."""
        ua, ub, _ = self.codes(u)
        ma, mb, size = self.codes(m, view)
        pairs = _pairs(np.where(ma >= 0, ua, -1), np.where(mb >= 0, ub, -1))
        if pairs < MIN_PAIRS:
            return 0.0, 0.0, pairs
        joint_a = np.where((ua >= 0) & (ma >= 0), ua * size + ma, -1)
        joint_b = np.where((ub >= 0) & (mb >= 0), ub * size + mb, -1)
        chance = _pairs(ma, mb) / (np.count_nonzero(ma >= 0) * np.count_nonzero(mb >= 0))
        return _pairs(joint_a, joint_b) / pairs, chance, pairs

    def findings(self, masked: Iterable[str], visible: Iterable[str]) -> list[str]:
        """Every (masked m, visible u) where m, or one end of it, follows u across seeds."""
        found = []
        for m in masked:
            for u in visible:
                for view in _views(self.a[m]):
                    rate, chance, pairs = self.agreement(m, view, u)
                    if rate >= FORMULA_RATE and rate - chance >= FORMULA_EXCESS:
                        found.append(
                            f"{m} ({view}) is a function of {u}: equal in {rate:.0%} of "
                            f"{pairs} cross-seed pairs with equal {u} (chance {chance:.1%})"
                        )
        return found


@functools.cache
def seed_pair(dataset: str) -> SeedPair:
    return SeedPair(*(generated(dataset, seed) for seed in SEEDS))


# ------------------------------------------------------------- detector 2: embedding


def _words(values: pa.ChunkedArray | pa.Array) -> pa.Table:
    """Distinct (row, word): lower-cased runs of >= 3 letters or >= 3 digits of each value."""
    text = values if pa.types.is_string(values.type) else pc.cast(values, pa.string())
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    # "smith42" is the words "smith" and "42": split letters from digits, then on the rest
    text = pc.replace_substring_regex(pc.utf8_lower(text), r"(\p{L}+|[0-9]+)", r" \1 ")
    lists = pc.split_pattern_regex(text, r"[^\p{L}0-9]+")
    words = pa.table(
        {
            "row": pc.cast(pc.list_parent_indices(lists), pa.int64()),
            "word": pc.list_flatten(lists),
        }
    )
    words = words.filter(pc.greater_equal(pc.utf8_length(words["word"]), 3))
    return words.group_by(["row", "word"]).aggregate([])


def _hidden_words(
    table: pa.Table, m: str, mask: tuple[str, Mapping[str, Any]], dataset: str, raw: pa.Table
) -> pa.Table:
    """Words of the raw m (``raw``) that the mask does not show."""
    name, params = mask
    shown = masks.apply_mask(
        name, params, table[m], masks.EXAMPLE_MASK_KEYS, dataset=dataset, column=m
    )
    return raw.join(_words(shown), keys=["row", "word"], join_type="left anti")


def _rows_sharing(hidden: pa.Table, seen: pa.Table) -> dict[str, int]:
    """Per visible column: rows where it has a word of ``hidden`` (same row index)."""
    shared = hidden.join(seen, keys=["row", "word"], join_type="inner")
    per_row = shared.group_by(["column", "row"]).aggregate([])
    counts = per_row.group_by("column").aggregate([([], "count_all")])
    return dict(zip(counts["column"].to_pylist(), counts["count_all"].to_pylist(), strict=True))


def _labelled(words: pa.Table, column: str) -> pa.Table:
    return words.append_column("column", pa.array([column] * words.num_rows, pa.string()))


def embedding_findings(
    table: pa.Table,
    plan: MaskPlan,
    dataset: str,
    words_of: Callable[[str], pa.Table] | None = None,
) -> list[str]:
    """Every (masked m, visible u) where u's row shows words m's mask hides, beyond chance.

    ``words_of(column)`` may serve ``_words(table[column])`` from a cache.
    """
    words_of = words_of or (lambda col: _words(table[col]))
    visible = visible_columns(table, plan)
    seen = pa.concat_tables([_labelled(words_of(u), u) for u in visible])
    shifted = seen.set_column(0, "row", pc.add(seen["row"], 1))  # row i against row i + 1
    found = []
    n = table.num_rows
    for m, mask in plan.items():
        hidden = _hidden_words(table, m, mask, dataset, words_of(m))
        same, mismatched = _rows_sharing(hidden, seen), _rows_sharing(hidden, shifted)
        for u in visible:
            rate, chance = same.get(u, 0) / n, mismatched.get(u, 0) / (n - 1)
            if rate - chance >= EMBED_EXCESS:
                found.append(
                    f"{u} shows words of the hidden part of {m} ({mask[0]}) in {rate:.1%} "
                    f"of rows (chance {chance:.1%})"
                )
    return found


@functools.cache
def _generated_words(dataset: str, column: str) -> pa.Table:
    return _words(generated(dataset, SEEDS[0])[column])


# --------------------------------------------------------------- the shipped data


@pytest.mark.parametrize(("dataset", "role", "plan"), ROLES, ids=ROLE_IDS)
def test_no_masked_value_is_a_formula_of_a_visible_column(
    dataset: str, role: str, plan: MaskPlan
) -> None:
    pair = seed_pair(dataset)
    found = pair.findings(plan, visible_columns(pair.a, plan))
    assert not found, f"{dataset}/{role}: " + "; ".join(found)


@pytest.mark.parametrize(("dataset", "role", "plan"), ROLES, ids=ROLE_IDS)
def test_no_masked_value_is_embedded_in_a_visible_column(
    dataset: str, role: str, plan: MaskPlan
) -> None:
    words_of = functools.partial(_generated_words, dataset)
    found = embedding_findings(generated(dataset, SEEDS[0]), plan, dataset, words_of)
    assert not found, f"{dataset}/{role}: " + "; ".join(found)


def test_every_role_masks_something_and_every_column_follows_the_seed() -> None:
    # Guards against a vacuous run (no masked columns, seeds that give equal tables); a
    # column that does not change with the seed at all is a formula of the key.
    assert {dataset for dataset, _, _ in ROLES} == set(DATASETS)
    assert all(plan for _, _, plan in ROLES)
    for dataset in DATASETS:
        a, b = (generated(dataset, seed) for seed in SEEDS)
        for col in a.column_names:
            if col != DATASETS[dataset].primary_key:
                assert not a[col].equals(b[col]), (dataset, col)


# ------------------------------------------------- the detectors catch known leaks


def _old_account_numbers(ids: pa.ChunkedArray) -> pa.Array:
    """The public formula the financial generator used before issue 9, item 7."""
    values = 1_000_000_000 + (ids.to_numpy() * 2_654_435_761 + 1_234_567_890) % 9_000_000_000
    return pa.array(values.astype(str))


def _with(table: pa.Table, column: str, values: pa.Array | pa.ChunkedArray) -> pa.Table:
    return table.set_column(table.column_names.index(column), column, values)


def test_formula_detector_catches_account_numbers_computed_from_account_id() -> None:
    a, b = (generated("financial", seed) for seed in SEEDS)
    a, b = (_with(t, "account_number", _old_account_numbers(t["account_id"])) for t in (a, b))
    found = SeedPair(a, b).findings(["account_number"], ["account_id", "holder_name"])
    assert any(f.startswith("account_number (value) is a function of account_id") for f in found)
    assert not any("holder_name" in f for f in found)


def test_formula_detector_catches_a_formula_for_part_of_the_value() -> None:
    # the first 4 digits from the key, the rest random: the whole value never repeats
    a, b = (generated("financial", seed) for seed in SEEDS)
    rng = np.random.default_rng(0)
    fixed = [
        _with(
            t,
            "account_number",
            pc.binary_join_element_wise(
                pc.utf8_slice_codeunits(_old_account_numbers(t["account_id"]), 0, 4),
                pa.array(rng.integers(10**7, 10**8, t.num_rows).astype(str)),
                "",
            ),
        )
        for t in (a, b)
    ]
    found = SeedPair(*fixed).findings(["account_number"], ["account_id"])
    assert [f.split(":")[0] for f in found] == [
        "account_number (first 4 chars) is a function of account_id"
    ]


def test_embedding_detector_catches_an_email_built_from_the_name() -> None:
    t = generated("ecommerce", SEEDS[0])
    local = pc.replace_substring(pc.utf8_lower(t["customer_name"]), " ", ".")
    t = _with(t, "email", pc.binary_join_element_wise(local, "42@example.com", ""))
    plan = {"email": ("redact_part", {})}  # ecommerce's support_agent, who sees the name
    found = embedding_findings(t, plan, "ecommerce")
    assert any(f.startswith("customer_name shows words of the hidden part of email") for f in found)


def test_embedding_detector_respects_what_the_mask_shows() -> None:
    # A financial branch is named after the holder's city: city_only shows that city
    # anyway, a mask that hides the whole address would be betrayed by the branch.
    t = generated("financial", SEEDS[0])
    assert embedding_findings(t, {"address": ("city_only", {})}, "financial") == []
    hidden = embedding_findings(t, {"address": ("redact_full", {})}, "financial")
    assert any(f.startswith("branch shows words of the hidden part of address") for f in hidden)
