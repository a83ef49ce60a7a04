"""Helpers for the compose tests: load files, list mounts, map container paths to host paths."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
CLUSTER = DEPLOY / "compose.cluster.yaml"
COMPOSE_FILES = sorted(DEPLOY.glob("compose*.yaml"))
#: Bind-mount sources that are not in git, and the documented step that makes them.
GENERATED = {"secrets": "deploy/scripts/install-secrets.sh"}


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def tracked() -> set[str]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    return set(out.splitlines())


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    bind: bool


def mounts(service: dict[str, Any]) -> list[Mount]:
    found = []
    for vol in service.get("volumes", []):
        if isinstance(vol, str):
            source, target = vol.split(":")[:2]
        else:
            source, target = vol.get("source", ""), vol["target"]
        found.append(Mount(source, target, source.startswith((".", "/"))))
    return found


def host_path(compose: Path, service: dict[str, Any], container_path: str, gen: Path) -> Path:
    """Map a path inside a service's container to the host path it is mounted from."""
    best: Mount | None = None
    for m in mounts(service):
        if (
            m.bind
            and (
                container_path == m.target or container_path.startswith(m.target.rstrip("/") + "/")
            )
            and (best is None or len(m.target) > len(best.target))
        ):
            best = m
    assert best is not None, f"{container_path} is not on any bind mount"
    rest = PurePosixPath(container_path).relative_to(best.target)
    source = (compose.parent / best.source).resolve()
    rel = source.relative_to(DEPLOY) if source.is_relative_to(DEPLOY) else None
    if rel is not None and rel.parts and rel.parts[0] in GENERATED:
        source = gen / rel
    return source / rest
