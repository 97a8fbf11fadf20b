"""MaskLegend: every mask of ``govlab.masks.MASKS`` with what it does and a before/after
example (the real output of the mask; keyed masks use the public legend key)."""

from __future__ import annotations

import ipywidgets as w

from govlab.lab.widgets._common import classed, esc
from govlab.masks import MASKS


def legend_rows() -> list[tuple[str, str, str, str]]:
    """(name, description, before, after) for every mask, in registry order."""
    return [(m.name, m.description, m.example_before, m.example_after) for m in MASKS.values()]


class MaskLegend(w.VBox):
    def __init__(self) -> None:
        body = "".join(
            f'<tr data-mask="{esc(name)}"><td><code>{esc(name)}</code></td>'
            f'<td class="govlab-example-before"><code>{esc(before)}</code></td>'
            f'<td class="govlab-example-after"><code>{esc(after)}</code></td>'
            f"<td>{esc(description)}</td></tr>"
            for name, description, before, after in legend_rows()
        )
        self.table = classed(
            w.HTML(
                '<table class="govlab-legend-table"><thead><tr><th>mask</th><th>before</th>'
                f"<th>after</th><th>what it does</th></tr></thead><tbody>{body}</tbody></table>"
            ),
            "govlab-legend",
        )
        super().__init__([w.HTML("<b>Mask legend</b>"), self.table])
        classed(self, "govlab-mask-legend")
