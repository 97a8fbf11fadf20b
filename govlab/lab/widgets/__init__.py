"""The lab's widgets: thin ipywidgets views over one plain state object (``LabState``).

``launch()`` starts (or reuses) the API and returns a ``Stepper`` to display::

    from govlab.lab.widgets import launch
    lab = launch()
    lab

Modules: ``state`` (LabState and the stage rules, no ipywidgets), ``stepper``,
``governance`` (GovernanceEditor, GovernancePreview), ``legend`` (MaskLegend), ``role``
(RolePicker), ``validate`` (ValidateView), ``hydrate`` (HydrateView), ``search_table``
(SearchTable). Every view takes the state and a client factory ``(role, attrs) ->
GovlabClient``; they talk to the API only through ``govlab.lab.client``.

CSS classes (``_dom_classes``), stable for browser tests (Voila + Playwright):

==================================  ===============================================
class                               element
==================================  ===============================================
``govlab-lab``                      the whole Stepper
``govlab-header``                   the row of stage buttons
``govlab-stage``                    every stage button, plus ``govlab-stage-<name>``
                                    for ``dataset size format governance role
                                    validate hydrate search``
``govlab-stage-current``            the current stage's button
``govlab-stage-done``               buttons of completed stages (disabled buttons are
                                    stages not reachable yet)
``govlab-stage-title``              "Step N of 8: Name" (an ``h3.govlab-current``
                                    with ``data-stage="<name>"`` inside)
``govlab-panel-host``               holds the current panel
``govlab-panel``, ``-<name>``       each stage's panel
``govlab-hint``                     why Next is disabled
``govlab-back``, ``govlab-next``    navigation buttons (Next disabled until complete)
``govlab-dataset``                  dataset ToggleButtons (labels = dataset names)
``govlab-size``                     size ToggleButtons ("tiny (1,000 rows)", ...)
``govlab-format``                   format ToggleButtons ("Delta (v4)", "Parquet",
                                    "Iceberg")
``govlab-governance-editor``        the editor block; ``govlab-policy-editor`` the
                                    textarea (disabled = read-only),
                                    ``govlab-policy-mode`` ("Editing as ..." /
                                    "Read-only ..."), ``govlab-policy-status``
                                    (``.govlab-policy-ok`` / ``.govlab-policy-errors``
                                    inside), ``govlab-policy-save``,
                                    ``govlab-policy-revert``
``govlab-governance-preview``       preview; rows ``tr[data-role=<role>]``, the bound
                                    filter in ``code.govlab-filter``
``govlab-mask-legend``              legend; rows ``tr[data-mask=<mask>]`` with
                                    ``td.govlab-example-before`` / ``-after``
``govlab-role``, ``govlab-attrs``   role Dropdown, attributes JSON Text;
                                    ``govlab-role-filter`` the bound filter or error
``govlab-validate``                 validate view: ``govlab-validate-run``,
                                    ``govlab-validate-rows``, ``-filter``, ``-masks``,
                                    ``-preview``, ``-error``
``govlab-hydrate``                  hydrate view: ``govlab-hydrate-start``,
                                    ``-cancel``, ``-existing``, ``-progress`` (the
                                    IntProgress), ``-status`` (rows, rows/s, ETA)
``govlab-search``                   search view: ``govlab-search-q``,
                                    ``govlab-search-go``, ``govlab-page-prev``,
                                    ``govlab-page-next``, ``govlab-page`` ("page X of
                                    Y"), ``govlab-total`` ("N rows"), ``govlab-cache``
                                    (``span.govlab-cache-hit|miss|bypass``, text
                                    "cache: HIT"), ``govlab-took``,
                                    ``govlab-results``, ``govlab-search-error``
(HTML tables)                       ``table.govlab-rows``: ``td[data-col=<column>]``;
                                    masked cells ``td.govlab-masked`` with
                                    ``title="masked: <mask>"``, masked headers
                                    ``th.govlab-masked-col``, nulls ``td.govlab-null``
==================================  ===============================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from govlab.lab.widgets.state import DEFAULT_ATTRS, STAGES, LabState

if TYPE_CHECKING:
    from govlab.lab.widgets.stepper import Stepper

__all__ = [
    "DEFAULT_ATTRS",
    "STAGES",
    "GovernanceEditor",
    "GovernancePreview",
    "HydrateView",
    "LabState",
    "MaskLegend",
    "RolePicker",
    "SearchTable",
    "Stepper",
    "ValidateView",
    "launch",
]

_LAZY = {
    "GovernanceEditor": "govlab.lab.widgets.governance",
    "GovernancePreview": "govlab.lab.widgets.governance",
    "HydrateView": "govlab.lab.widgets.hydrate",
    "MaskLegend": "govlab.lab.widgets.legend",
    "RolePicker": "govlab.lab.widgets.role",
    "SearchTable": "govlab.lab.widgets.search_table",
    "Stepper": "govlab.lab.widgets.stepper",
    "ValidateView": "govlab.lab.widgets.validate",
}


def __getattr__(name: str) -> Any:
    """Views import ipywidgets; the state alone does not, so they load on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'govlab.lab.widgets' has no attribute {name!r}")


def launch(url: str | None = None, data_dir: str | None = None, poll_s: float = 0.25) -> Stepper:
    """A Stepper on the API at ``url`` (else ``GOVLAB_API_URL``, else 127.0.0.1:8000).

    When nothing answers there, ``govlab serve`` (API, worker, embedded Redis) is started
    in the background on that address, with ``data_dir`` (else ``GOVLAB_DATA_DIR``) as its
    data root. Tokens are minted for each role from that data root's secret (or
    ``GOVLAB_SECRET``), so a server already running must share it. The server handle is
    ``lab.server`` (``lab.server.stop()`` ends a server this call started).
    """
    from govlab.config import Settings, api_url, env_text
    from govlab.lab.client import GovlabClient, ensure_server
    from govlab.lab.widgets.stepper import Stepper

    url = (url or api_url()).rstrip("/")
    data_dir = data_dir or env_text("GOVLAB_DATA_DIR")
    server = ensure_server(url, data_dir)
    settings = Settings.from_env(data_dir)

    def client_for(role: str, attrs: Any) -> GovlabClient:
        return GovlabClient.for_role(role, dict(attrs), base_url=url, settings=settings)

    lab = Stepper(client_for, poll_s=poll_s)
    lab.server = server
    return lab
