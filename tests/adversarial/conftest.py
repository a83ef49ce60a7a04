"""Fixtures of the adversarial suite: the shipped broker and collector, built once per module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from _shipped import Shipped, build


@pytest.fixture(scope="module")
def shipped() -> Iterator[Shipped]:
    """Broker (deploy/mosquitto/mosquitto.conf) running; start collectors with
    ``shipped.start_collector(user)``."""
    stack = build()
    try:
        stack.start_broker()
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(stack.root, ignore_errors=True)
