"""The settings tables in docs/agent.md and docs/collector.md are checked against the config
structs: every setting is documented, every documented key exists, and each default shown is the
struct's default."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pantau.agent.config import AgentConfig, DeviceRule, ProbeSettings
from pantau.collector.config import CollectorConfig

REPO = Path(__file__).resolve().parents[2]
REQUIRED = object()


def settings(cls: type[msgspec.Struct], prefix: str = "") -> dict[str, Any]:
    """Dotted key -> default (REQUIRED if none) of every leaf setting of a config struct."""
    out: dict[str, Any] = {}
    for f in msgspec.structs.fields(cls):
        key = f"{prefix}{f.encode_name}"
        default = f.default if f.default is not msgspec.NODEFAULT else REQUIRED
        if isinstance(f.type, type) and issubclass(f.type, msgspec.Struct):
            out.update(settings(f.type, f"{key}."))
        elif isinstance(default, tuple) and default == () and _struct_items(f.type):
            out[f"[[{key}]]"] = default  # an array of tables, documented below the table
        else:
            out[key] = default
    return out


def _struct_items(tp: Any) -> bool:
    args = getattr(tp, "__args__", ())
    return bool(args) and isinstance(args[0], type) and issubclass(args[0], msgspec.Struct)


def table(doc: Path) -> dict[str, str]:
    """Dotted key -> the default cell, from the doc's ``| key | default | meaning |`` table."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    start = lines.index("| key | default | meaning |") + 2
    rows: dict[str, str] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        key_cell, default_cell = (c.strip() for c in line.strip("|").split("|")[:2])
        keys = re.findall(r"`([^`]+)`", key_cell)
        defaults = _split_defaults(default_cell)
        for i, key in enumerate(keys):
            rows[key] = defaults[min(i, len(defaults) - 1)]
    return rows


def _split_defaults(cell: str) -> list[str]:
    ticked = re.findall(r"`([^`]*)`", cell)
    return ticked if ticked and re.fullmatch(r"(`[^`]*`(, )?)+", cell) else [cell]


def matches(shown: str, default: Any) -> bool:
    if default is REQUIRED:
        return shown == "required"
    if shown == "none":
        return default == ()
    try:
        value = tomllib.loads(f"v = {shown}")["v"]
    except tomllib.TOMLDecodeError:
        value = shown  # an unquoted word (a host name) or a list in prose
    if isinstance(default, tuple) and isinstance(value, str):
        return ", ".join(map(str, default)) == value
    return bool(value == (list(default) if isinstance(default, tuple) else default))


@pytest.mark.parametrize(
    ("doc", "cls"), [("docs/agent.md", AgentConfig), ("docs/collector.md", CollectorConfig)]
)
def test_settings_table_matches_the_struct(doc: str, cls: type[msgspec.Struct]) -> None:
    documented = table(REPO / doc)
    declared = settings(cls)
    assert sorted(set(declared) - set(documented)) == [], f"settings missing from {doc}"
    assert sorted(set(documented) - set(declared)) == [], f"keys in {doc} that do not exist"
    wrong = {
        key: (documented[key], declared[key])
        for key in declared
        if not matches(documented[key], declared[key])
    }
    assert wrong == {}, f"defaults in {doc} differ from the struct"


@pytest.mark.parametrize(("section", "cls"), [("devices", DeviceRule), ("probes", ProbeSettings)])
def test_array_tables_list_every_field(section: str, cls: type[msgspec.Struct]) -> None:
    text = (REPO / "docs/agent.md").read_text(encoding="utf-8")
    block = re.search(rf"```toml\n\[\[{section}\]\]\n(.*?)```", text, re.DOTALL)
    assert block is not None
    shown = set(re.findall(r"^(\w+) = ", block.group(1), re.MULTILINE))
    assert shown == {f.encode_name for f in msgspec.structs.fields(cls)}
