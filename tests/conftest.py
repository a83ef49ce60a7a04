"""Shared fixtures: real servers from tests/harness (see that package for details).

Test helpers are imported by module name, never as ``tests.<dir>.<module>``: ``from harness import
Mosquitto``, ``from agent_support import wait_until``, ``import _mqtt`` (pytest puts every test
directory on ``sys.path``; helper module names are unique across the suite).

- ``tls_certs`` (session): throwaway CA, server cert for 127.0.0.1/localhost, an unrelated CA,
  expired, self-signed and wrong-host server certs (:class:`harness.TlsCerts`).
- ``mosquitto`` (function): anonymous real broker, started; ``.host``, ``.port``, ``.start()``,
  ``.stop()``, ``.kill()``, ``.restart()``, ``.log()``.
- ``mosquitto_factory`` (function): ``make(auth=False, tls=False, users=None, acl=None,
  extra_config="")`` -> started :class:`harness.Mosquitto`; all stopped at test end.
- ``alertmanager`` (session): :class:`harness.Alertmanager` with a webhook receiver in this
  process; ``.url``, ``.notifications``, ``.mark()``, ``.wait_for(alertname, status, labels,
  timeout, since=)``.
- ``prometheus`` (session): :class:`harness.Prometheus` sending alerts to ``alertmanager``;
  ``.url``, ``.scrape(job, targets)``, ``.unscrape(job)``, ``.query(expr)``,
  ``.wait_until(expr, predicate, timeout)``, ``.load_rules(paths)``, ``.unload_rules(copied)``.
  Session-shared: use job, alert and label names unique to your test.
- ``usb_bus`` (function): :class:`harness.UsbBus` on the session's umockdev testbed;
  ``.plug(vid, pid, device_class=0, interface_class=None, manufacturer="", product="",
  serial="") -> syspath``, ``.unplug(syspath)``, ``.env``; devices left plugged are unplugged at
  test end, after a garbage collection that closes udev monitors the test dropped. Tests using it
  get the ``umockdev`` marker. pytest re-execs itself under
  ``LD_PRELOAD=libumockdev-preload.so.0`` (``pytest_configure`` below), and the testbed, then
  pyusb's (cached) libusb context, are created before the first test of a session that uses it:
  never initialise libusb at import time. Without umockdev these tests skip with the reason,
  except in CI (``CI=true``), where they fail. Uevent listeners are guarded as described in
  :mod:`harness.usb` (a monitor left unread is detached with a ``UmockdevWarning``).
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from harness import Alertmanager, Mosquitto, Prometheus, TlsCerts, UsbBus, make_tls_certs
from harness import usb as umockdev

_NEEDS_UMOCKDEV = pytest.StashKey[bool]()
_UMOCKDEV_FIXTURES = {"usb_bus", "umockdev_testbed"}


def pytest_configure(config: pytest.Config) -> None:
    umockdev.reexec_under_preload(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    needs = False
    for item in items:
        if _UMOCKDEV_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.umockdev)
        needs = needs or item.get_closest_marker("umockdev") is not None
    config.stash[_NEEDS_UMOCKDEV] = needs


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> TlsCerts:
    return make_tls_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto")
    try:
        yield broker.start()
    finally:
        broker.kill()  # teardown needs no clean shutdown; SIGTERM costs ~0.1 s


MosquittoFactory = Callable[..., Mosquitto]


@pytest.fixture
def mosquitto_factory(tmp_path: Path, tls_certs: TlsCerts) -> Iterator[MosquittoFactory]:
    brokers: list[Mosquitto] = []

    def make(
        *,
        auth: bool = False,
        tls: bool = False,
        users: Mapping[str, str] | None = None,
        acl: str | None = None,
        extra_config: str = "",
    ) -> Mosquitto:
        broker = Mosquitto(
            tmp_path / f"mosquitto-{len(brokers)}",
            auth=auth,
            tls=tls,
            users=users,
            acl=acl,
            certs=tls_certs,
            extra_config=extra_config,
        )
        brokers.append(broker)
        return broker.start()

    try:
        yield make
    finally:
        for broker in brokers:
            broker.kill()  # teardown needs no clean shutdown; SIGTERM costs ~0.1 s


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alertmanager]:
    am = Alertmanager(tmp_path_factory.mktemp("alertmanager"))
    try:
        yield am.start()
    finally:
        am.stop()


@pytest.fixture(scope="session")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, alertmanager: Alertmanager
) -> Iterator[Prometheus]:
    prom = Prometheus(tmp_path_factory.mktemp("prometheus"), alertmanager_url=alertmanager.url)
    try:
        yield prom.start()
    finally:
        prom.stop()


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


@pytest.fixture(scope="session")
def umockdev_testbed() -> Iterator[Any]:
    """The process-wide UMockdev.Testbed (skip with the reason, or fail in CI, if unusable)."""
    reason = umockdev.umockdev_missing()
    if reason is None and not umockdev.preloaded():
        reason = f"pytest is not running under LD_PRELOAD={umockdev.PRELOAD_LIB} (re-exec skipped)"
    if reason is not None:
        if _in_ci():
            pytest.fail(f"umockdev needed in CI: {reason}", pytrace=False)
        pytest.skip(f"umockdev unavailable: {reason}")
    testbed = umockdev.new_testbed()
    umockdev.init_libusb(testbed.get_root_dir())
    try:
        yield testbed
    finally:
        os.environ.pop("UMOCKDEV_DIR", None)
        del testbed


@pytest.fixture(scope="session", autouse=True)
def _umockdev_before_libusb(request: pytest.FixtureRequest) -> None:
    """Create the testbed before any test runs (if any test needs it): libusb's context,
    cached by pyusb, must be initialised after it."""
    if not request.config.stash.get(_NEEDS_UMOCKDEV, False):
        return
    # On skip/fail the umockdev tests themselves report it (the session fixture caches it).
    with contextlib.suppress(pytest.skip.Exception, pytest.fail.Exception):
        request.getfixturevalue("umockdev_testbed")


@pytest.fixture
def usb_bus(umockdev_testbed: Any) -> Iterator[UsbBus]:
    bus = UsbBus(umockdev_testbed)
    try:
        yield bus
    finally:
        # A udev monitor the test dropped (e.g. inside an agent in a reference cycle) is still
        # open until collected; unread, it would fill up and make umockdev abort on a uevent.
        gc.collect()
        bus.unplug_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """In CI nothing the suite needs may be skipped: a skip there is reported as a failure naming
    the reason (locally a skip still prints its reason and passes)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and _in_ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where everything the suite needs must run: {reason}"
