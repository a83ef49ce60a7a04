"""deploy/compose.cluster.yaml: the sharding plan and the EMQX example's references.

No EMQX runs here; what can be checked without it is: the collector shards' topic filters
partition the provinces exactly once, each shard's inventory holds only stations its filters
receive, every path EMQX's config names is mounted, and Prometheus scrapes every shard.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from _compose import CLUSTER, DEPLOY, host_path, load

from pantau.contract.inventory import (
    InventoryEntry,
    entries_for_filters,
    load_inventory,
    shard_coverage,
)

JAWA = ("31", "32", "33", "34", "35", "36")


def shards() -> dict[str, tuple[dict[str, Any], Path]]:
    """Collector service -> (its parsed config, host path of its inventory)."""
    services = load(CLUSTER)["services"]
    out = {}
    for name, service in services.items():
        if "build" not in service:
            continue
        config_path = host_path(CLUSTER, service, "/etc/pantau/collector.toml", Path())
        config = tomllib.loads(config_path.read_text())
        inventory = host_path(CLUSTER, service, config["fleet"]["inventory"], Path())
        out[name] = (config, inventory)
    return out


def test_two_shards_with_their_own_client_ids() -> None:
    found = shards()
    assert len(found) == 2
    ids = [cfg["mqtt"]["client_id"] for cfg, _ in found.values()]
    assert len(set(ids)) == len(ids), "shards must not share an MQTT client id"


def test_shard_filters_cover_every_provinsi_exactly_once() -> None:
    plan = {name: cfg["mqtt"]["topics"] for name, (cfg, _) in shards().items()}
    probe = [InventoryEntry(f"{p}00-x-01", p, f"{p}00", "X", ()) for p in JAWA]
    coverage = shard_coverage(probe, plan)
    assert all(len(owners) == 1 for owners in coverage.values()), coverage
    # and nothing outside the plan's region is claimed by accident
    outside = [InventoryEntry("5100-x-01", "51", "5100", "X", ())]
    assert shard_coverage(outside, plan) == {"5100-x-01": []}


def test_each_shard_inventory_holds_only_its_own_stations() -> None:
    found = shards()
    all_stations: list[str] = []
    for name, (cfg, inventory_path) in found.items():
        entries = load_inventory(inventory_path)
        topics = cfg["mqtt"]["topics"]
        assert entries_for_filters(entries, topics) == entries, f"{name}: foreign stations"
        all_stations += [e.station for e in entries]
    assert len(all_stations) == len(set(all_stations)), "a station in two shard inventories"
    assert all_stations, "the example shards list no stations at all"


def test_emqx_config_paths_are_mounted(generated: Path) -> None:
    services = load(CLUSTER)["services"]
    for name in ("emqx1", "emqx2"):
        service = services[name]
        conf = host_path(CLUSTER, service, "/opt/emqx/etc/emqx.conf", generated)
        assert conf == DEPLOY / "cluster" / "emqx.conf"
        paths = re.findall(r'(?:cacertfile|certfile|keyfile|path) = "([^"]+)"', conf.read_text())
        assert len(paths) == 4
        for container_path in paths:
            assert host_path(CLUSTER, service, container_path, generated).is_file(), container_path
        assert service["environment"]["EMQX_NODE__NAME"] == f"emqx@{service['hostname']}"
        assert service["hostname"] in service["networks"]["pantau"]["aliases"]
        seeds = re.search(r"static\.seeds = \[(.*)\]", conf.read_text())
        assert seeds is not None
        assert f'"emqx@{service["hostname"]}"' in seeds.group(1)


def test_acl_lets_each_shard_read_and_stations_write_their_own_id(generated: Path) -> None:
    """Each shard is its own identity (the broker binds client ids to user names), with its own
    mounted password, and the ACL lets every one of them read the fleet."""
    acl = (DEPLOY / "cluster" / "acl.conf").read_text()
    rules = [line for line in acl.splitlines() if line.startswith("{")]
    assert rules[-1] == "{deny, all}."
    assert '{allow, all, publish, ["pantau/v1/+/+/${username}/#"]}.' in rules
    services = load(CLUSTER)["services"]
    users = set()
    for name, (cfg, _) in shards().items():
        user = cfg["mqtt"]["username"]
        users.add(user)
        assert cfg["mqtt"]["client_id"] == user, name
        assert f'{{allow, {{username, "{user}"}}, subscribe, ["pantau/v1/#"]}}.' in rules
        secret = host_path(CLUSTER, services[name], cfg["mqtt"]["password_file"], generated)
        assert secret == generated / "secrets" / user / "password", name
        assert secret.is_file()
    assert len(users) == len(shards()), "two shards share a broker identity"
    conf = (DEPLOY / "cluster" / "emqx.conf").read_text()
    assert re.search(r"^\s*use_username_as_clientid = true$", conf, re.M)


def test_cluster_prometheus_scrapes_every_shard(tmp_path: Path) -> None:
    services = load(CLUSTER)["services"]
    prom = services["prometheus"]
    # lay the files out as the container sees them, then let promtool check them
    etc = tmp_path / "etc-prometheus"
    etc.mkdir()
    shutil.copy(host_path(CLUSTER, prom, "/etc/prometheus/prometheus.yml", Path()), etc)
    shutil.copytree(host_path(CLUSTER, prom, "/etc/prometheus/rules", Path()), etc / "rules")
    proc = subprocess.run(
        ["promtool", "check", "config", "prometheus.yml"],
        cwd=etc,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 rule files found" in proc.stdout
    config = load(etc / "prometheus.yml")
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "pantau-collector")
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    expected = {f"{name}:{cfg['http']['port']}" for name, (cfg, _) in shards().items()}
    assert targets == expected
