"""Real Prometheus (2.42) and Alertmanager (0.25) servers, shared per test session.

Prometheus: scrape and evaluation interval 1 s, ``--web.enable-lifecycle``, one scrape config
whose targets come from file_sd files (``targets/<job>.json`` carrying a ``job`` label), rules
from ``rules/*.yml``, alerts sent to the session's Alertmanager.

- :meth:`Prometheus.scrape` writes the target file and waits until ``up{job=...} == 1`` for
  every target (file_sd changes reach the scrape manager only after ~5 s: built into 2.42).
- :meth:`Prometheus.load_rules` copies rule files in, POSTs ``/-/reload`` and waits until their
  groups are listed by ``/api/v1/rules``.

Alertmanager: ``group_by: ['...']`` (no aggregation: one notification per alert),
``group_wait``/``group_interval`` 1 s, one webhook receiver with ``send_resolved`` that is a
real HTTP server in the test process (:class:`WebhookReceiver`).

For HA tests (not shared): several :class:`Alertmanager` in one gossip cluster on loopback
(``cluster=True``, then :meth:`Alertmanager.join` before starting) posting to one shared
:class:`WebhookReceiver`, and a :class:`Prometheus` sending to all of them
(``alertmanager_urls``); :meth:`Alertmanager.kill` and :meth:`Prometheus.kill` crash them.

The session servers are shared by the whole session: use job names, alert names and label values unique to
your test, and do not assume an empty history (:meth:`Alertmanager.mark` + ``since=`` helps).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .procs import HarnessError, free_port, kill, spawn, stop, wait_for

Json = Any


def _http(
    url: str, *, method: str = "GET", data: bytes | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _ready(url: str) -> Callable[[], bool]:
    return lambda: _http(url, timeout=1.0)[0] == 200


# --------------------------------------------------------------------------- webhook receiver


class WebhookReceiver:
    """A local HTTP server collecting the JSON bodies POSTed to it (Alertmanager webhooks)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.notifications: list[Json] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {"invalid_json": body.decode(errors="replace")}
                if isinstance(payload, dict):
                    payload["_received"] = time.time()  # when it arrived (not part of the body)
                with receiver._cond:
                    receiver.notifications.append(payload)
                    receiver._cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}/"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="webhook-receiver",
            daemon=True,
        )
        self._thread.start()

    def wait(self, predicate: Callable[[list[Json]], Any], timeout: float) -> Any:
        """Wait until ``predicate(notifications)`` is truthy and return its value."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = predicate(self.notifications)
                if found:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


# --------------------------------------------------------------------------- alertmanager


class Alertmanager:
    """``prometheus-alertmanager`` on a free loopback port with a webhook receiver."""

    def __init__(
        self,
        workdir: Path,
        *,
        webhook: WebhookReceiver | None = None,
        cluster: bool = False,
        group_interval: str = "1s",
        extra_args: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.url = f"http://{self.host}:{self.port}"
        #: A receiver given by the caller (shared by a cluster) is not closed by :meth:`stop`.
        self._own_webhook = webhook is None
        self.webhook = webhook or WebhookReceiver(self.host)
        #: Gossip address (``cluster=True``); peers are added with :meth:`join`.
        self.cluster_address = f"{self.host}:{free_port()}" if cluster else ""
        self.peers: list[str] = []
        self.extra_args = tuple(extra_args)
        self.config_file = workdir / "alertmanager.yml"
        self.log_file = workdir / "alertmanager.log"
        self.config_file.write_text(
            json.dumps(
                {
                    "route": {
                        "receiver": "webhook",
                        "group_by": ["..."],
                        "group_wait": "1s",
                        "group_interval": group_interval,
                        "repeat_interval": "1h",
                    },
                    "receivers": [
                        {
                            "name": "webhook",
                            "webhook_configs": [{"url": self.webhook.url, "send_resolved": True}],
                        }
                    ],
                },
                indent=2,
            )
        )
        self._proc: subprocess.Popen[bytes] | None = None

    def join(self, *others: Alertmanager) -> None:
        """Gossip with ``others`` (all started with ``cluster=True``)."""
        self.peers += [o.cluster_address for o in others]

    def start(self, timeout: float = 30.0) -> Alertmanager:
        cluster = [f"--cluster.listen-address={self.cluster_address}"]
        if self.cluster_address:
            # its own external URL: the webhook bodies then say which peer sent them
            cluster.append(f"--cluster.advertise-address={self.cluster_address}")
            cluster.append(f"--web.external-url={self.url}")
        cluster += [f"--cluster.peer={peer}" for peer in self.peers]
        self._proc = spawn(
            [
                "prometheus-alertmanager",
                f"--config.file={self.config_file}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address={self.host}:{self.port}",
                *cluster,
                *self.extra_args,
            ],
            self.log_file,
        )
        wait_for(
            _ready(f"{self.url}/-/ready"),
            timeout=timeout,
            interval=0.02,
            what=f"alertmanager on {self.url}",
            alive=self._proc,
            log=self.log,
        )
        return self

    def stop(self) -> None:
        stop(self._proc)
        self._proc = None
        if self._own_webhook:
            self.webhook.close()

    def kill(self) -> None:
        """SIGKILL: a crash (the webhook receiver keeps running)."""
        kill(self._proc)
        self._proc = None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    @property
    def notifications(self) -> list[Json]:
        """Every webhook body received so far (Alertmanager's webhook JSON, version 4)."""
        return self.webhook.notifications

    def mark(self) -> int:
        """A position in :attr:`notifications`; pass it as ``since=`` to ignore older ones."""
        return len(self.webhook.notifications)

    def wait_for(
        self,
        alertname: str,
        status: str = "firing",
        labels: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        *,
        since: int = 0,
    ) -> Json:
        """Wait for a webhook notification containing an alert named ``alertname`` with
        ``status`` (``"firing"`` or ``"resolved"``) whose labels include ``labels``; return that
        alert (a dict with ``labels``, ``annotations``, ``status``, ``startsAt``, ...)."""
        if status not in ("firing", "resolved"):
            raise ValueError(f"status must be 'firing' or 'resolved', not {status!r}")
        want = {"alertname": alertname, **(labels or {})}

        def match(notes: list[Json]) -> Json:
            for note in notes[since:]:
                for alert in note.get("alerts", []):
                    got = alert.get("labels", {})
                    if alert.get("status") == status and all(
                        got.get(k) == v for k, v in want.items()
                    ):
                        return alert
            return None

        found = self.webhook.wait(match, timeout)
        if not found:
            seen = [
                (a.get("labels", {}).get("alertname"), a.get("status"))
                for n in self.notifications[since:]
                for a in n.get("alerts", [])
            ]
            raise HarnessError(
                f"alertmanager: no {status} {want} in {timeout} s; received {seen}\n"
                f"{self.log()[-2000:]}"
            )
        return found


# --------------------------------------------------------------------------- prometheus


class Prometheus:
    """``prometheus`` on a free loopback port; see the module docstring."""

    JOB_SCRAPE_CONFIG = "harness"

    def __init__(
        self,
        workdir: Path,
        *,
        alertmanager_url: str | None = None,
        alertmanager_urls: Sequence[str] = (),
        extra_args: Sequence[str] = (),
    ) -> None:
        self.extra_args = tuple(extra_args)
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.url = f"http://{self.host}:{self.port}"
        self.targets_dir = workdir / "targets"
        self.rules_dir = workdir / "rules"
        self.targets_dir.mkdir(exist_ok=True)
        self.rules_dir.mkdir(exist_ok=True)
        self.config_file = workdir / "prometheus.yml"
        self.log_file = workdir / "prometheus.log"
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": "1s",
                "evaluation_interval": "1s",
                "scrape_timeout": "1s",
            },
            "rule_files": [str(self.rules_dir / "*.yml")],
            "scrape_configs": [
                {
                    "job_name": self.JOB_SCRAPE_CONFIG,
                    "file_sd_configs": [
                        {"files": [str(self.targets_dir / "*.json")], "refresh_interval": "1s"}
                    ],
                }
            ],
        }
        urls = [*([alertmanager_url] if alertmanager_url else []), *alertmanager_urls]
        if urls:
            netlocs = [urllib.parse.urlsplit(url).netloc for url in urls]
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": netlocs}]}]}
        self.config_file.write_text(json.dumps(config, indent=2))
        self._proc: subprocess.Popen[bytes] | None = None
        self._rules_loaded = 0

    def start(self, timeout: float = 30.0) -> Prometheus:
        self._proc = spawn(
            [
                "prometheus",
                f"--config.file={self.config_file}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address={self.host}:{self.port}",
                "--web.enable-lifecycle",
                "--rules.alert.resend-delay=1s",
                "--log.level=info",
                *self.extra_args,
            ],
            self.log_file,
        )
        wait_for(
            _ready(f"{self.url}/-/ready"),
            timeout=timeout,
            interval=0.02,
            what=f"prometheus on {self.url}",
            alive=self._proc,
            log=self.log,
        )
        return self

    def stop(self) -> None:
        stop(self._proc)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL: a crash (the TSDB and its WAL stay for the next :meth:`start`)."""
        kill(self._proc)
        self._proc = None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    # ------------------------------------------------------------------ API

    def api(self, path: str, **params: str) -> Json:
        """GET ``/api/v1/<path>`` and return ``data``; raise :class:`HarnessError` on errors."""
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        status, body = _http(url, timeout=10.0)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
        if status != 200 or doc.get("status") != "success":
            raise HarnessError(f"prometheus {path} {params}: HTTP {status}: {body[:500]!r}")
        return doc["data"]

    def query(self, expr: str) -> list[Json]:
        """Instant query; the ``result`` list (``[{"metric": {...}, "value": [ts, "v"]}, ...]``
        for vectors)."""
        data = self.api("query", query=expr)
        result: list[Json] = data["result"]
        return result

    def wait_until(
        self,
        expr: str,
        predicate: Callable[[list[Json]], bool] = bool,
        timeout: float = 30.0,
    ) -> list[Json]:
        """Re-run ``expr`` until ``predicate(result)`` is true (default: non-empty result);
        return that result."""
        deadline = time.monotonic() + timeout
        result: list[Json] = []
        while True:
            result = self.query(expr)
            if predicate(result):
                return result
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"prometheus: {expr!r} never satisfied in {timeout} s; last: {result}"
                )
            time.sleep(0.2)

    def scrape(
        self,
        job: str,
        targets: Sequence[str],
        *,
        timeout: float = 60.0,
        labels: Mapping[str, str] | None = None,
        wait: bool = True,
    ) -> None:
        """Scrape ``targets`` (``host:port``, path /metrics) as ``job`` with extra target
        ``labels``; unless ``wait=False``, wait until each target is up (~5 s the first time).
        Calling again for the same job replaces its targets."""
        path = self.targets_dir / f"{job}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps([{"targets": list(targets), "labels": {"job": job, **(labels or {})}}])
        )
        tmp.replace(path)
        if not wait:
            return
        want = set(targets)

        def all_up(result: list[Json]) -> bool:
            up = {r["metric"].get("instance") for r in result if r["value"][1] == "1"}
            return want <= up

        self.wait_until(f'up{{job="{job}"}}', all_up, timeout)

    def unscrape(self, job: str) -> None:
        """Stop scraping ``job`` (its series go stale)."""
        (self.targets_dir / f"{job}.json").unlink(missing_ok=True)

    def reload(self) -> None:
        status, body = _http(f"{self.url}/-/reload", method="POST", timeout=30.0)
        if status != 200:
            raise HarnessError(f"prometheus reload failed: HTTP {status}: {body[:2000]!r}")

    def load_rules(self, paths: Iterable[Path | str], *, timeout: float = 30.0) -> list[Path]:
        """Copy rule files into the rules dir, reload, and wait until all their groups are
        loaded; return the copied paths (pass them to :meth:`unload_rules`)."""
        copied = []
        for src in map(Path, paths):
            self._rules_loaded += 1
            dest = self.rules_dir / f"{self._rules_loaded:03d}-{src.stem}.yml"
            shutil.copyfile(src, dest)
            copied.append(dest)
        try:
            self.reload()
        except HarnessError:
            for dest in copied:
                dest.unlink()
            raise
        want = {str(p) for p in copied}
        wait_for(
            lambda: want <= {g["file"] for g in self.api("rules")["groups"]},
            timeout=timeout,
            interval=0.05,
            what=f"prometheus rules {sorted(want)}",
            alive=self._proc,
            log=self.log,
        )
        return copied

    def unload_rules(self, paths: Iterable[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)
        self.reload()
