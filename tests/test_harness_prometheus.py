"""The prometheus and alertmanager fixtures: real scraping, rule evaluation and notifications."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest
from harness import Alertmanager, HarnessError, Prometheus
from prometheus_client import CollectorRegistry, Gauge, start_http_server

JOB = "harness-flip"
ALERT = "HarnessFlipOn"


@pytest.fixture
def flag() -> Iterator[tuple[Gauge, str]]:
    """A real /metrics HTTP server on a free loopback port with one gauge the test flips."""
    registry = CollectorRegistry()
    gauge = Gauge("harness_flip", "Flipped by the harness test", registry=registry)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield gauge, f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_scrape_query_rule_fires_and_resolves(
    prometheus: Prometheus, alertmanager: Alertmanager, flag, tmp_path
) -> None:
    gauge, target = flag
    gauge.set(0)
    prometheus.scrape(JOB, [target])
    assert prometheus.query(f'up{{job="{JOB}"}}')[0]["metric"]["instance"] == target

    rules = tmp_path / "flip.yml"
    rules.write_text(
        textwrap.dedent(
            f"""\
            groups:
              - name: harness-flip
                rules:
                  - alert: {ALERT}
                    expr: harness_flip{{job="{JOB}"}} == 1
                    for: 1s
                    labels:
                      severity: test
                    annotations:
                      summary: "flag on {{{{ $labels.instance }}}}"
            """
        )
    )
    loaded = prometheus.load_rules([rules])
    since = alertmanager.mark()
    try:
        gauge.set(1)
        prometheus.wait_until(
            f'harness_flip{{job="{JOB}"}}', lambda r: r and r[0]["value"][1] == "1"
        )
        firing = alertmanager.wait_for(
            ALERT, "firing", {"job": JOB, "severity": "test"}, since=since
        )
        assert firing["annotations"]["summary"] == f"flag on {target}"
        assert firing["labels"]["instance"] == target

        gauge.set(0)
        resolved = alertmanager.wait_for(ALERT, "resolved", {"job": JOB}, since=since)
        assert resolved["startsAt"] == firing["startsAt"]
    finally:
        prometheus.unload_rules(loaded)
        prometheus.unscrape(JOB)


def test_invalid_rules_are_rejected(prometheus: Prometheus, tmp_path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: bad\n    rules:\n      - alert: Bad\n        expr: up ==\n")
    with pytest.raises(HarnessError, match="reload failed"):
        prometheus.load_rules([bad])
    prometheus.reload()  # the bad file was removed again: later reloads still work
    assert prometheus.query("vector(1)")[0]["value"][1] == "1"


def test_wait_for_times_out_with_what_it_saw(alertmanager: Alertmanager) -> None:
    with pytest.raises(HarnessError, match="no firing"):
        alertmanager.wait_for("NeverSentByAnyone", timeout=0.1)
