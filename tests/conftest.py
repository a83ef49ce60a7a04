"""Shared fixtures: real servers from tests/harness (see that package for details).

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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from harness import Alertmanager, Mosquitto, Prometheus, TlsCerts, make_tls_certs


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> TlsCerts:
    return make_tls_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto")
    try:
        yield broker.start()
    finally:
        broker.stop()


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
            broker.stop()


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
