"""The cluster deployment as shipped: the Ray head and worker of docker-compose.yml (an
opt-in profile, one govlab + daft[ray] image, token auth, nothing published beyond
127.0.0.1) and the README's "Running on a cluster" section. No Docker engine here: the
files are parsed."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"


def test_compose_has_a_ray_head_and_worker_in_the_cluster_profile() -> None:
    services = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())["services"]
    head, worker = services["ray-head"], services["ray-worker"]
    for node in (head, worker):
        assert node["profiles"] == ["cluster"]
        assert node["image"] == "govlab-ray:latest"
        assert node["environment"]["RAY_AUTH_MODE"] == "token"
        assert [f["path"] for f in node["env_file"]] == ["../.env"]  # secret, token, AWS_*
        assert "govlab-data:/data" in node["volumes"]
    build = head["build"]
    assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKER / "Dockerfile.ray"
    assert "--head" in head["command"] and "--ray-client-server-port=10001" in head["command"]
    assert "--include-dashboard=false" in head["command"]
    assert "--address=ray-head:6379" in worker["command"]
    assert all(p.startswith("127.0.0.1:") for p in head.get("ports", []))
    assert "ports" not in worker
    for name, service in services.items():
        if name not in ("ray-head", "ray-worker"):
            assert "profiles" not in service  # the default stack is unchanged


def test_the_ray_image_installs_the_distributed_extra() -> None:
    text = (DOCKER / "Dockerfile.ray").read_text()
    installed = re.search(r'pip install -e "\.\[([a-z,]+)\]"', text)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert installed and installed.group(1) == "distributed"
    wanted = " ".join(extras["optional-dependencies"]["distributed"])
    assert "daft[ray]==" in wanted and "ray[client]==" in wanted
    assert "RAY_USAGE_STATS_ENABLED=0" in text and "DAFT_ANALYTICS_ENABLED=0" in text
    assert (DOCKER / "Dockerfile.ray.dockerignore").exists()


def test_readme_explains_running_on_a_cluster() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running on a cluster", 1)[1].split("\n## ", 1)[0]
    for needle in (
        "KubeRay",
        "daft[ray]",
        "GOVLAB_EXECUTION=daft",
        "GOVLAB_RAY_ADDRESS",
        "GOVLAB_TABLES_URI",
        "GOVLAB_ICEBERG_CATALOG_URI",
        "GOVLAB_SECRET",
        "RAY_AUTH_TOKEN",
        "--profile cluster",
    ):
        assert needle in section, needle


def test_every_new_variable_is_read_in_config_and_documented() -> None:
    config = (ROOT / "govlab" / "config.py").read_text()
    readme = (ROOT / "README.md").read_text()
    for name in (
        "GOVLAB_EXECUTION",
        "GOVLAB_RAY_ADDRESS",
        "GOVLAB_TABLES_URI",
        "GOVLAB_S3_ENDPOINT",
        "GOVLAB_S3_REGION",
        "GOVLAB_ICEBERG_CATALOG_URI",
        "GOVLAB_ICEBERG_WAREHOUSE",
    ):
        assert f'"{name}"' in config and f"``{name}``" in config, name
        assert f"`{name}`" in readme, name
    for path in (ROOT / "govlab" / "execution").glob("*.py"):
        assert "os.environ" not in path.read_text(), path  # read in config.py only
