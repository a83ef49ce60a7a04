"""One exception root: every exception class a pantau module defines derives from PantauError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import pantau
from pantau.contract.errors import PantauError


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(pantau.__path__, "pantau."))


def test_every_pantau_exception_derives_from_the_root() -> None:
    names = _modules()
    assert "pantau.agent.errors" in names
    assert "pantau.collector.errors" in names
    defined: list[type[BaseException]] = []
    for name in names:
        module = importlib.import_module(name)
        defined += [
            obj
            for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, BaseException) and obj.__module__ == name
        ]
    assert len(defined) >= 10
    assert [c.__qualname__ for c in defined if not issubclass(c, PantauError)] == []


@pytest.mark.parametrize(
    ("module", "name", "also"),
    [
        ("pantau.contract.config", "ConfigError", None),
        ("pantau.contract.wire", "WireError", ValueError),
        ("pantau.contract.inventory", "InventoryError", ValueError),
        ("pantau.agent.errors", "AgentError", None),
        ("pantau.collector.errors", "CollectorError", None),
        ("pantau.collector.errors", "SettingsError", None),
        ("pantau.dashboards", "DashboardsError", None),
        ("pantau.tools.provision", "ProvisionError", None),
        ("pantau.tools.broker", "BrokerError", RuntimeError),
    ],
)
def test_the_documented_hierarchy(module: str, name: str, also: type | None) -> None:
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, PantauError)
    if also is not None:  # the older bases stay, so existing `except ValueError` keeps working
        assert issubclass(cls, also)
