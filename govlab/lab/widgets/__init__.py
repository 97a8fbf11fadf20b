"""The lab's widgets: thin ipywidgets views over one plain state object (``LabState``).

``launch()`` returns a ``Stepper`` to display at once, and starts (or reuses) the API
in the background::

    from govlab.lab.widgets import launch
    lab = launch()
    lab

Modules: ``state`` (LabState and the stage rules, no ipywidgets), ``stepper``,
``governance`` (GovernanceEditor, GovernancePreview), ``legend`` (MaskLegend), ``role``
(RolePicker), ``validate`` (ValidateView), ``hydrate`` (HydrateView), ``search_table``
(SearchTable), ``compare`` (CompareView), ``server`` (ServerBanner). Every view takes
the state and a client factory ``(role, attrs) -> GovlabClient``; they talk to the API
only through ``govlab.lab.client``.

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
``govlab-acting``                   after Role: ``span.govlab-acting-badge``
                                    ("acting as clinician (id=C007)")
``govlab-server``                   the API's start-up: ``div.govlab-server-status``
                                    with ``data-phase`` (checking, starting,
                                    waiting, ready, reused, failed) and ``data-pid``
``govlab-dataset-about``,           one line per option (``li[data-option]``,
``govlab-format-about``             the chosen one ``li.govlab-chosen``)
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
                                    ``govlab-policy-revert``,
                                    ``govlab-policy-whatif`` (and its table in
                                    ``govlab-whatif``: ``tr[data-role]``, changed rows
                                    ``.govlab-whatif-changed``),
                                    ``govlab-policy-reset``, ``govlab-policy-shipped``
``govlab-governance-preview``       preview; rows ``tr[data-role=<role>]``, the bound
                                    filter in ``code.govlab-filter``
``govlab-mask-legend``              legend; rows ``tr[data-mask=<mask>]`` with
                                    ``td.govlab-example-before`` / ``-after``
``govlab-role``, ``govlab-attrs``   role Dropdown, attributes JSON Text;
                                    ``govlab-role-filter`` the bound filter or error,
                                    ``govlab-role-about`` the policy's description
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
                                    "cache: HIT"), ``govlab-took`` ("server 2.1 ms ·
                                    round trip 9.0 ms"), ``govlab-cache-legend``,
                                    ``govlab-results``, ``govlab-search-error``,
                                    ``govlab-search-explain`` (why nothing was found)
``govlab-hydrate-table``            what table exists ("Existing table: 50,000 rows,
                                    version 3 ..."); ``.govlab-hydrate-mismatch``
                                    when its size is not the chosen one
``govlab-compare``                  at Validate and Search (``govlab-compare-validate``
                                    / ``-search``): ``govlab-compare-roles`` (select),
                                    ``govlab-compare-run``, bars ``tr.govlab-bar``
                                    (``data-role``, ``data-value``, ``data-of``),
                                    ``div.govlab-compare-side[data-role]``, and
                                    ``table.govlab-record-table`` (``data-key``; cells
                                    ``td.govlab-raw|masked|hidden[data-role]``)
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
    "CompareView",
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
    "CompareView": "govlab.lab.widgets.compare",
}


def __getattr__(name: str) -> Any:
    """Views import ipywidgets; the state alone does not, so they load on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'govlab.lab.widgets' has no attribute {name!r}")


def launch(url: str | None = None, data_dir: str | None = None, poll_s: float = 0.25) -> Stepper:
    """A Stepper on the API at ``url`` (else ``GOVLAB_API_URL``, else 127.0.0.1:8000).

    It returns at once: the stepper shows the API's start-up while it happens. When
    nothing answers there, ``govlab serve`` (API, worker, embedded Redis) is started in
    the background on that address, with ``data_dir`` (else ``GOVLAB_DATA_DIR``) as its
    data root, tied to this kernel: it ends when the kernel ends, however it ends.
    Tokens are minted for each role from that data root's secret (or ``GOVLAB_SECRET``),
    so a server already running must share it. ``lab.server`` is the server's handle
    once it answers; ``lab.server_banner.wait()`` blocks until then.
    """
    import os
    import tempfile

    from govlab.config import Settings, api_url, env_text
    from govlab.lab import client as lab_client
    from govlab.lab.widgets.stepper import Stepper

    url = (url or api_url()).rstrip("/")
    data_dir = data_dir or env_text("GOVLAB_DATA_DIR")
    settings = Settings.from_env(data_dir)
    port = url.rpartition(":")[2]
    log_path = os.path.join(tempfile.gettempdir(), f"govlab-lab-serve-{port}.log")

    def start(on_status: lab_client.StatusFn) -> lab_client.LocalServer:
        return lab_client.ensure_server(url, data_dir, log_path=log_path, on_status=on_status)

    def client_for(role: str, attrs: Any) -> lab_client.GovlabClient:
        return lab_client.GovlabClient.for_role(role, dict(attrs), base_url=url, settings=settings)

    return Stepper(client_for, poll_s=poll_s, start_server=start)
