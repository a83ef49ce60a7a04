"""deploy/compose*.yaml: schema-valid, and every reference resolves.

There is no container engine here, so the stack is checked statically but thoroughly: the compose
spec schema (check-jsonschema), every bind-mounted file tracked in git or produced by a documented
deploy step (which the test runs), service/network/volume references, every container path the
services' own configs name mapped through the mounts to a real file, Prometheus targets matching
the services, and the configs loaded by their real consumers (promtool, the collector's loader,
a real Alertmanager started through the stack's entry point).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from _compose import (
    COMPOSE,
    COMPOSE_FILES,
    DEPLOY,
    GENERATED,
    REPO,
    host_path,
    load,
    mounts,
    tracked,
)
from harness import procs

# --------------------------------------------------------------------------- schema and references


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_spec_schema(path: Path) -> None:
    proc = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_schema_check_catches_mistakes(tmp_path: Path) -> None:
    """The schema check is not a rubber stamp: an unknown key and a wrong type fail it."""
    data = load(COMPOSE)
    data["services"]["collector"]["restrat"] = "always"
    bad = tmp_path / "compose.yaml"
    bad.write_text(yaml.safe_dump(data))
    argv = [str(REPO / ".venv" / "bin" / "check-jsonschema"), "--builtin-schema"]
    argv += ["vendor.compose-spec", str(bad)]
    assert subprocess.run(argv, capture_output=True, check=False).returncode != 0


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_bind_mounts_exist_in_git_or_are_generated(path: Path, generated: Path) -> None:
    files = tracked()
    data = load(path)
    declared = set(data.get("volumes") or {})
    for name, service in data["services"].items():
        for m in mounts(service):
            if not m.bind:
                assert m.source in declared, f"{name}: volume {m.source!r} not declared"
                continue
            source = (path.parent / m.source).resolve()
            rel = source.relative_to(REPO).as_posix()
            top = source.relative_to(DEPLOY).parts[0] if source.is_relative_to(DEPLOY) else ""
            if top in GENERATED:
                made = generated / source.relative_to(DEPLOY)
                assert made.exists(), f"{name}: {rel} is not made by {GENERATED[top]}"
                continue
            if source.is_dir():
                assert any(f.startswith(rel + "/") for f in files), f"{name}: {rel} not in git"
            else:
                assert rel in files, f"{name}: {rel} not in git"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_service_network_and_volume_references(path: Path) -> None:
    data = load(path)
    services = data["services"]
    networks = set(data.get("networks") or {})
    volumes = set(data.get("volumes") or {})
    used_networks: set[str] = set()
    used_volumes: set[str] = set()
    for name, service in services.items():
        deps = service.get("depends_on", [])
        for dep in deps if isinstance(deps, list) else list(deps):
            assert dep in services, f"{name} depends on unknown service {dep!r}"
            assert dep != name
        nets = service.get("networks", [])
        for net in nets if isinstance(nets, list) else list(nets):
            assert net in networks, f"{name}: network {net!r} not declared"
            used_networks.add(net)
        used_volumes |= {m.source for m in mounts(service) if not m.bind}
        if "build" in service:
            context = (path.parent / service["build"]["context"]).resolve()
            assert context.is_dir()
            assert (context / service["build"].get("dockerfile", "Dockerfile")).is_file()
    assert networks == used_networks, "declared networks must be used"
    assert volumes == used_volumes, "declared volumes must be used"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_only_the_broker_is_reachable_from_the_network(path: Path) -> None:
    data = load(path)
    for name, service in data["services"].items():
        for port in service.get("ports", []):
            if str(port).endswith(":8883"):
                continue
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_every_variable_is_documented_in_env_example() -> None:
    example = (DEPLOY / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", example, re.M))
    for path in COMPOSE_FILES:
        text = path.read_text().replace("$$", "")
        used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
        assert used <= documented, f"{path.name}: {sorted(used - documented)} not in .env.example"


# --------------------------------------------------------------------------- configs inside the containers


MOSQUITTO_PATH_KEYS = ("password_file", "acl_file", "cafile", "certfile", "keyfile")


def test_mosquitto_conf_paths_are_mounted(generated: Path) -> None:
    service = load(COMPOSE)["services"]["mosquitto"]
    conf_target = "/mosquitto/config/mosquitto.conf"
    conf = host_path(COMPOSE, service, conf_target, generated)
    assert conf == DEPLOY / "mosquitto" / "mosquitto.conf"
    seen = set()
    for line in conf.read_text().splitlines():
        key, _, value = line.partition(" ")
        if key in MOSQUITTO_PATH_KEYS:
            assert host_path(COMPOSE, service, value, generated).is_file(), line
            seen.add(key)
        if key == "persistence_location":
            targets = {m.target.rstrip("/"): m for m in mounts(service)}
            assert value.rstrip("/") in targets
            assert not targets[value.rstrip("/")].bind, "persistence belongs in a named volume"
    assert seen == set(MOSQUITTO_PATH_KEYS)


COLLECTOR_SERVICES = [
    (path, name)
    for path in COMPOSE_FILES
    for name, service in load(path)["services"].items()
    if "build" in service
]


@pytest.mark.parametrize(
    ("compose", "name"), COLLECTOR_SERVICES, ids=[f"{p.name}:{n}" for p, n in COLLECTOR_SERVICES]
)
def test_collector_config_loads_with_the_collector_loader(
    compose: Path, name: str, generated: Path, tmp_path: Path
) -> None:
    from pantau.collector import config as collector_config

    data_all = load(compose)
    service = data_all["services"][name]
    command = service.get("command") or ["run", "--config", "/etc/pantau/collector.toml"]
    target = command[command.index("--config") + 1]
    source = host_path(compose, service, target, generated)
    text = source.read_text()
    data = tomllib.loads(text)
    paths = [data["mqtt"]["ca_file"], data["mqtt"]["password_file"], data["fleet"]["inventory"]]
    for container_path in paths:
        assert host_path(compose, service, container_path, generated).is_file(), container_path
        text = text.replace(
            f'"{container_path}"', f'"{host_path(compose, service, container_path, generated)}"'
        )
    copy = tmp_path / "collector.toml"
    copy.write_text(text)
    cfg = collector_config.load(copy)
    assert cfg.mqtt.tls
    aliases = {
        alias
        for svc in data_all["services"].values()
        if isinstance(svc.get("networks"), dict)
        for net in svc["networks"].values()
        for alias in (net or {}).get("aliases", [])
    }
    for broker, port in cfg.mqtt.broker_endpoints():
        assert broker in data_all["services"] or broker in aliases, f"{broker}: no such service"
        assert port == 8883
    # its own identity: the broker binds the client id to the user name
    assert cfg.mqtt.username.startswith("collector")
    assert cfg.mqtt.client_id == cfg.mqtt.username
    assert cfg.http.host == "0.0.0.0"
    assert any(p.endswith(f":{cfg.http.port}") for p in service["ports"])
    # the collector user and password are the provisioned ones
    provisioned = generated / "provisioned" / cfg.mqtt.username / "password"
    assert Path(cfg.mqtt.password_file).read_text() == provisioned.read_text()


def test_prometheus_config_passes_promtool_and_targets_the_services() -> None:
    prom_dir = DEPLOY / "prometheus"
    proc = subprocess.run(
        ["promtool", "check", "config", "prometheus.yml"],
        cwd=prom_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = load(prom_dir / "prometheus.yml")
    rule_files = [f for pattern in config["rule_files"] for f in prom_dir.glob(pattern)]
    assert rule_files, "rule_files match nothing"
    assert not [f for f in rule_files if f.name.endswith(".test.yml")], "a test file as rules"
    compose = load(COMPOSE)
    services = compose["services"]
    prom = services["prometheus"]
    assert host_path(COMPOSE, prom, "/etc/prometheus/prometheus.yml", Path()) == (
        prom_dir / "prometheus.yml"
    )
    collector_port = tomllib.loads((DEPLOY / "collector" / "collector.toml").read_text())["http"][
        "port"
    ]
    listening = {"collector": collector_port, "alertmanager": 9093}
    targets = [
        t
        for job in config["scrape_configs"]
        for sc in job.get("static_configs", [])
        for t in sc["targets"]
    ]
    targets += [
        t
        for am in config["alerting"]["alertmanagers"]
        for sc in am["static_configs"]
        for t in sc["targets"]
    ]
    assert any(t.startswith("collector:") for t in targets)
    for target in targets:
        host, port = target.rsplit(":", 1)
        if host == "localhost":
            continue
        assert host in services, f"{target}: no such service"
        assert int(port) == listening[host], f"{target}: {host} listens on {listening[host]}"


def test_grafana_provisioning_is_mounted_and_points_at_the_services() -> None:
    service = load(COMPOSE)["services"]["grafana"]
    prov = host_path(COMPOSE, service, "/etc/grafana/provisioning", Path())
    for sub in ("datasources", "dashboards", "alerting"):
        assert list((prov / sub).glob("*.yaml")), f"no {sub} provisioning files"
    for provider in load(prov / "dashboards" / "pantau.yaml")["providers"]:
        boards = host_path(COMPOSE, service, provider["options"]["path"], Path())
        assert list(boards.glob("*.json")), f"{boards}: no dashboards"
    for ds in load(prov / "datasources" / "pantau.yaml")["datasources"]:
        host = ds["url"].split("//", 1)[1].split(":")[0]
        assert host in load(COMPOSE)["services"]


def test_dockerfile_copies_exist_and_survive_dockerignore() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copies = re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M)
    assert copies
    for sources in copies:
        for src in sources.split():
            assert (REPO / src).exists(), src
            assert src.rstrip("/") in allowed, f"{src} is excluded by Dockerfile.dockerignore"
    port = tomllib.loads((DEPLOY / "collector" / "collector.toml").read_text())["http"]["port"]
    assert f"EXPOSE {port}" in text
    assert f"127.0.0.1:{port}/healthz" in text


# --------------------------------------------------------------------------- alertmanager entry point


@pytest.fixture
def alertmanager_via_entrypoint(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    service = load(COMPOSE)["services"]["alertmanager"]
    script = host_path(COMPOSE, service, service["entrypoint"][-1], Path())
    config_src = host_path(COMPOSE, service, "/etc/alertmanager/alertmanager.yml", Path())
    port = procs.free_port()
    env = {
        "PANTAU_AM_CONFIG_SRC": str(config_src),
        "PANTAU_AM_CONFIG": str(tmp_path / "alertmanager.yml"),
        "PANTAU_AM_BIN": "prometheus-alertmanager",
        "TELEGRAM_BOT_TOKEN": "123456:ABC-def_ghi",
    }
    args = [a for a in service["command"] if not a.startswith("--storage.path")]
    args += [f"--storage.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"]
    log = tmp_path / "am.log"
    proc = procs.spawn(["sh", str(script), *args], log, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        procs.wait_for(
            lambda: procs.port_open("127.0.0.1", port),
            timeout=20,
            what="alertmanager",
            alive=proc,
            log=log.read_text,
        )
        yield url, tmp_path / "alertmanager.yml"
    finally:
        procs.stop(proc)


def test_alertmanager_starts_through_the_entrypoint_with_the_token(
    alertmanager_via_entrypoint: tuple[str, Path],
) -> None:
    url, written = alertmanager_via_entrypoint
    with urllib.request.urlopen(f"{url}/api/v2/status", timeout=5) as resp:
        status = yaml.safe_load(resp.read())
    original = status["config"]["original"]
    # Alertmanager loaded the written copy (it shows the token as <secret>, never in clear)
    assert "bot_token: <secret>" in original
    assert "123456:ABC-def_ghi" not in original
    assert "bot_token: 123456:ABC-def_ghi" in written.read_text()
    assert "$TELEGRAM_BOT_TOKEN" not in written.read_text()
    assert written.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("token", ["", "bad token|x"])
def test_alertmanager_entrypoint_refuses_a_missing_or_odd_token(tmp_path: Path, token: str) -> None:
    proc = subprocess.run(
        ["sh", str(DEPLOY / "scripts" / "alertmanager-entrypoint.sh")],
        env={
            "PATH": os.environ["PATH"],
            "TELEGRAM_BOT_TOKEN": token,
            "PANTAU_AM_CONFIG_SRC": str(DEPLOY / "alertmanager" / "alertmanager.yml"),
            "PANTAU_AM_CONFIG": str(tmp_path / "am.yml"),
            "PANTAU_AM_BIN": "false",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "TELEGRAM_BOT_TOKEN" in proc.stderr
    assert not (tmp_path / "am.yml").exists()


def test_alertmanager_entrypoint_keeps_the_token_off_every_command_line(tmp_path: Path) -> None:
    """/proc/*/cmdline is world-readable: the token may be in the environment, never in argv.

    Every external command the script may run is a shim on PATH that logs its argv, then runs
    the real tool (each awk installed here: the image's busybox awk is not, but the script uses
    only POSIX awk); Alertmanager is a shim too.
    """
    script = DEPLOY / "scripts" / "alertmanager-entrypoint.sh"
    token = "123456:ABC-def_ghi"
    src = tmp_path / "src.yml"
    src.write_text("a: $TELEGRAM_BOT_TOKEN $TELEGRAM_BOT_TOKEN\nb: $TELEGRAM_BOTX & \\1 |x|\n")
    real_path = os.environ["PATH"]
    tools = ["sed", "mv", "cat", "cp", "tr", "perl", "python3", "envsubst", "printf", "env"]
    awks = [a for a in ("mawk", "gawk", "original-awk", "busybox") if shutil.which(a)]
    assert awks
    for awk in awks:
        shims, log = tmp_path / f"shims-{awk}", tmp_path / f"argv-{awk}.log"
        shims.mkdir()
        for name in [*tools, "awk", "alertmanager"]:
            target = {"awk": f"{awk} awk" if awk == "busybox" else awk}.get(name, name)
            run = "exit 0" if name == "alertmanager" else f'PATH="{real_path}" exec {target} "$@"'
            shim = shims / name
            shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "{name} $*" >>"{log}"\n{run}\n')
            shim.chmod(0o755)
        dst = tmp_path / f"{awk}.yml"
        proc = subprocess.run(
            ["sh", str(script), "--storage.path=/x"],
            env={
                "PATH": f"{shims}:{real_path}",
                "TELEGRAM_BOT_TOKEN": token,
                "PANTAU_AM_CONFIG_SRC": str(src),
                "PANTAU_AM_CONFIG": str(dst),
                "PANTAU_AM_BIN": str(shims / "alertmanager"),
            },
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        argv = log.read_text()
        assert len(argv.splitlines()) >= 2, argv  # the shims saw the substitution's command
        assert f"alertmanager --config.file={dst} --storage.path=/x" in argv
        assert token not in argv
        assert dst.read_text() == f"a: {token} {token}\nb: $TELEGRAM_BOTX & \\1 |x|\n"
