"""The repository stands alone: every document it points to is in it, and no text points to
notes, design documents or issue numbers kept elsewhere."""

from __future__ import annotations

import importlib
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Documents of other projects that texts cite by name (Grafana's release notes).
OTHER_PROJECTS = {"CHANGELOG.md"}
_DOC_REF = re.compile(r"(?<![\w/.-])(docs/[\w.-]+\.md|[A-Z][A-Z_]+\.md)\b")
_ELSEWHERE = re.compile(r"\.\./shared|shared/[A-Z]+\.md|/work/|\(issue \d+\)|issue #\d+")


def _texts() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return [
        REPO / f
        for f in listed
        if f.endswith((".py", ".md", ".toml", ".yml", ".yaml", ".sh"))
        and not f.startswith("deploy/grafana/")
        and "/fixtures/" not in f
        and (REPO / f).is_file()
    ]


def test_every_cited_document_exists() -> None:
    missing = [
        f"{path.relative_to(REPO)}: {ref}"
        for path in _texts()
        for ref in _DOC_REF.findall(path.read_text(encoding="utf-8", errors="replace"))
        if ref not in OTHER_PROJECTS and not (REPO / ref).exists()
    ]
    assert missing == []


def test_nothing_points_outside_the_repository() -> None:
    this = Path(__file__)
    found = [
        f"{path.relative_to(REPO)}: {m.group(0)}"
        for path in _texts()
        if path != this
        for m in _ELSEWHERE.finditer(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert found == []


_MODULE_REF = re.compile(r"""(?<![\w./"'-])pantau(?:\.[A-Za-z_]\w*)+""")
#: File names that look like dotted names (pantau.rules.yml, pantau.yaml).
_FILE_SUFFIXES = (".yml", ".yaml", ".json", ".toml", ".py", ".csv")


def _resolves(ref: str) -> bool:
    parts = ref.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_every_named_module_and_attribute_exists() -> None:
    """``pantau.collector.testing.reference``, ``pantau.contract.inventory.shard_coverage`` and the like,
    in docs and docstrings, name something that is there."""
    stale = sorted(
        {
            f"{path.relative_to(REPO)}: {ref}"
            for path in _texts()
            if path.suffix in (".py", ".md")
            for ref in (
                m.group(0).rstrip(".")
                for m in _MODULE_REF.finditer(path.read_text(encoding="utf-8", errors="replace"))
            )
            if not ref.endswith(_FILE_SUFFIXES) and not _resolves(ref)
        }
    )
    assert stale == []
