"""docs/deploy.md and docs/scale.md stay true to the repository."""

from __future__ import annotations

import re

import pytest
from _compose import REPO

from pantau.contract.inventory import InventoryEntry, shard_coverage
from pantau.dashboards.routing import ZONES

DOCS = {name: REPO / "docs" / name for name in ("deploy.md", "scale.md")}
LINK_RE = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("name", sorted(DOCS))
def test_relative_links_resolve(name: str) -> None:
    path = DOCS[name]
    for target in LINK_RE.findall(path.read_text()):
        if "://" in target:
            continue
        assert (path.parent / target).resolve().exists(), f"{name}: broken link {target}"


@pytest.mark.parametrize("name", sorted(DOCS))
def test_repository_paths_named_in_docs_exist(name: str) -> None:
    text = DOCS[name].read_text()
    generated = ("deploy/certs", "deploy/provisioned", "deploy/secrets", "deploy/.env")
    for path in set(re.findall(r"`((?:deploy|docs|dashboards|tests)/[\w./-]+)`", text)):
        if path.startswith(generated) or "<" in path:
            continue
        assert (REPO / path.rstrip("/")).exists(), f"{name} names {path}, which does not exist"


def test_deploy_doc_documents_every_generated_step() -> None:
    text = DOCS["deploy.md"].read_text()
    for step in (
        "deploy/scripts/make-certs.sh",
        "pantau provision",
        "deploy/scripts/install-secrets.sh",
        "deploy/.env.example",
        "docker compose up",
        "deploy/systemd/pantau-agent.service",
        "deploy/windows/",
        "## Troubleshooting",
    ):
        assert step in text, step


def national_plan() -> dict[str, list[str]]:
    text = DOCS["scale.md"].read_text()
    table = text.split("| shard | provinsi codes |", 1)[1].split("\n\n", 1)[0]
    plan = {}
    for row in table.strip().splitlines()[1:]:
        shard, codes = (cell.strip() for cell in row.strip("|").split("|"))
        plan[shard] = [f"pantau/v1/{code}/+/+/+" for code in codes.split()]
    return plan


def test_national_shard_plan_covers_all_38_provinces_exactly_once() -> None:
    provinces = [code for zone in ZONES for code in zone.provinsi]
    assert len(set(provinces)) == 38
    plan = national_plan()
    assert len(plan) == 4
    assert all(len(filters) <= 16 for filters in plan.values()), "collector topics max 16"
    probe = [InventoryEntry(f"{p}01-x-01", p, f"{p}01", "X", ()) for p in provinces]
    coverage = shard_coverage(probe, plan)
    assert all(len(owners) == 1 for owners in coverage.values()), coverage
    assert sum(len(f) for f in plan.values()) == 38
