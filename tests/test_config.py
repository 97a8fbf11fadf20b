"""Where data and the deployment secret come from."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from govlab.config import Settings, load_secret


def test_secret_is_generated_once_with_mode_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOVLAB_SECRET", raising=False)
    first = load_secret(tmp_path)
    assert len(first) >= 32 and load_secret(tmp_path) == first
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600
    monkeypatch.setenv("GOVLAB_SECRET", "from-env-" + "x" * 32)
    assert load_secret(tmp_path) == b"from-env-" + b"x" * 32


def test_data_root_and_per_format_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVLAB_DATA_DIR", str(tmp_path / "root"))
    monkeypatch.setenv("ICEBERG_DIR", str(tmp_path / "ice"))
    monkeypatch.delenv("DELTA_DIR", raising=False)
    settings = Settings.from_env()
    assert settings.data_dir == (tmp_path / "root").resolve()
    assert settings.format_dir("delta") == settings.data_dir / "delta"
    assert settings.format_dir("iceberg") == (tmp_path / "ice").resolve()
    assert Settings.from_env(tmp_path / "cli").data_dir == (tmp_path / "cli").resolve()
