"""Prometheus and Alertmanager as local child processes, for ``pantau demo``.

Both are optional: :func:`find_binaries` says whether they are installed (Debian names
``prometheus`` and ``prometheus-alertmanager``, upstream ``alertmanager``). Everything listens
on 127.0.0.1; data lives in the given work directory and is thrown away with it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pantau.tools.broker import free_port, wait_for_port


@dataclass(frozen=True)
class Binaries:
    prometheus: str
    alertmanager: str


def find_binaries() -> Binaries | None:
    prometheus = shutil.which("prometheus")
    alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if prometheus and alertmanager:
        return Binaries(prometheus, alertmanager)
    return None


def _port(preferred: int) -> int:
    return preferred if not wait_for_port("127.0.0.1", preferred, 0.05) else free_port()


@dataclass
class PrometheusStack:
    """Prometheus scraping ``targets`` with ``rules`` and sending alerts to an Alertmanager that
    posts every notification to ``webhook_url``."""

    workdir: Path
    binaries: Binaries
    targets: list[str]
    rules: list[Path]
    webhook_url: str
    scrape_interval: str = "5s"
    prometheus_port: int = 0
    alertmanager_port: int = 0
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager_port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.prometheus_port = self.prometheus_port or _port(9090)
        self.alertmanager_port = self.alertmanager_port or _port(9093)
        am_conf = self.workdir / "alertmanager.yml"
        # JSON is YAML: no YAML library needed for these two small files.
        am_conf.write_text(
            json.dumps(
                {
                    "route": {
                        "receiver": "demo",
                        "group_by": ["alertname", "station"],
                        "group_wait": "1s",
                        "group_interval": "5s",
                        "repeat_interval": "4h",
                    },
                    "receivers": [{"name": "demo", "webhook_configs": [{"url": self.webhook_url}]}],
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        prom_conf = self.workdir / "prometheus.yml"
        prom_conf.write_text(
            json.dumps(
                {
                    "global": {
                        "scrape_interval": self.scrape_interval,
                        "evaluation_interval": self.scrape_interval,
                    },
                    "rule_files": [str(p) for p in self.rules],
                    "alerting": {
                        "alertmanagers": [
                            {
                                "static_configs": [
                                    {"targets": [f"127.0.0.1:{self.alertmanager_port}"]}
                                ]
                            }
                        ]
                    },
                    "scrape_configs": [
                        {
                            "job_name": "pantau-collector",
                            "static_configs": [{"targets": self.targets}],
                        }
                    ],
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        log = (self.workdir / "stack.log").open("ab")
        self._procs.append(
            subprocess.Popen(
                [
                    self.binaries.alertmanager,
                    f"--config.file={am_conf}",
                    f"--storage.path={self.workdir / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{self.alertmanager_port}",
                    "--cluster.listen-address=",
                ],
                stdout=log,
                stderr=log,
            )
        )
        self._procs.append(
            subprocess.Popen(
                [
                    self.binaries.prometheus,
                    f"--config.file={prom_conf}",
                    f"--storage.tsdb.path={self.workdir / 'prom-data'}",
                    f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
                ],
                stdout=log,
                stderr=log,
            )
        )
        for port in (self.alertmanager_port, self.prometheus_port):
            if not wait_for_port("127.0.0.1", port, 15):
                self.stop()
                raise RuntimeError(
                    f"Prometheus/Alertmanager did not start; see {self.workdir / 'stack.log'}"
                )

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback URL
                body = json.load(response)
        except (OSError, urllib.error.URLError, ValueError):
            return []
        result: list[dict[str, Any]] = body.get("data", {}).get("result", [])
        return result

    def stop(self) -> None:
        for proc in reversed(self._procs):
            proc.terminate()
        deadline = time.monotonic() + 10
        for proc in self._procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._procs.clear()
