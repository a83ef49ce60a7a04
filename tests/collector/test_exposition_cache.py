"""/metrics cached blocks: a long-lived renderer always serves the page a fresh one would.

The renderer keeps each chunk of stations' text per family, compressed, and re-renders a block
only when a station of its chunk changed in a part its family depends on. These tests drive one
renderer through every kind of change the fleet knows (new states, unplugs, probes, wills, births,
heartbeats, events, stations appearing and being forgotten, time passing into staleness) and
compare it after every step with a fresh renderer, with the prometheus-client reference, and its
gzip page with the text page; curl decodes the gzip page of a real collector.
"""

from __future__ import annotations

import gzip
import itertools
import random
import shutil
import subprocess
import zlib

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pantau.collector import exposition
from pantau.collector.exposition import RENDER, Renderer, crc32_combine, label_set
from pantau.collector.fleet import Fleet, Snapshot, StationView
from pantau.collector.testing.reference import reference_render
from pantau.collector.testing.synthetic import make_inventory, make_state, state_topic
from pantau.contract import wire

T0 = 1_790_000_000.0
CLASSES = ("fingerprint", "iris", "camera", "signature")


def families(text: str) -> list[object]:
    return [m for m in text_string_to_metric_families(text) if not m.name.startswith("process_")]


class World:
    """A fleet of 700 stations (several chunks) with a seeded stream of every kind of change."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.inventory = make_inventory(700)
        self.fleet = Fleet(
            inventory=self.inventory,
            device_classes=CLASSES,
            max_unknown_stations=50,
            forget_unknown_after_s=600.0,
        )
        self.now = T0
        self.seq = dict.fromkeys((e.station for e in self.inventory), 10)
        for entry in self.inventory[:600]:
            self.state(entry)

    def state(self, entry: object, **kw: object) -> None:
        e = entry  # an InventoryEntry
        self.seq[e.station] += 1  # type: ignore[attr-defined]
        msg = make_state(e, seq=self.seq[e.station], ts=self.now + 0.5, **kw)  # type: ignore[arg-type, attr-defined]
        assert self.fleet.ingest(state_topic(e), wire.encode(msg), self.now) == ""  # type: ignore[arg-type]

    def step(self) -> None:
        """One random change (or a few), then time passes."""
        rng = self.rng
        e = rng.choice(self.inventory)
        kind = rng.randrange(9)
        if kind == 0:  # a plain new state (new timestamps only)
            self.state(e)
        elif kind == 1:  # a device class goes missing or comes back
            self.state(e, missing=tuple(rng.sample(CLASSES, rng.randrange(3))))
        elif kind == 2:  # the login probe fails
            self.state(e, login_up=rng.random() < 0.5)
        elif kind == 3:  # a will
            self.seq[e.station] += 1
            will = wire.Status(
                station=e.station, agent_version="0.1.0", session="s1",
                seq=self.seq[e.station], ts=self.now, status="offline",
            )  # fmt: skip
            topic = wire.topic(e.provinsi, e.kabkota, e.station, "status")
            self.fleet.ingest(topic, wire.encode(will), self.now)
        elif kind == 4:  # an event
            self.seq[e.station] += 1
            ev = wire.Event(
                station=e.station, agent_version="0.1.0", session="s1",
                seq=self.seq[e.station], ts=self.now, kind=rng.choice(list(wire.EventKind)),
            )  # fmt: skip
            topic = wire.topic(e.provinsi, e.kabkota, e.station, "event")
            self.fleet.ingest(topic, wire.encode(ev), self.now)
        elif kind == 5:  # a heartbeat: the view changes, no exported value does
            self.seq[e.station] += 1
            beat = wire.Beat(v=1, session="s1", seq=self.seq[e.station])
            topic = wire.topic(e.provinsi, e.kabkota, e.station, "beat")
            self.fleet.ingest(topic, wire.encode(beat), self.now)
        elif kind == 6:  # a station not in the inventory, with a kecamatan needing escapes
            n = rng.randrange(60)
            station = f"3399-baru-{n:02d}"
            odd = make_state(make_inventory(1)[0], seq=int(self.now), ts=self.now)
            odd = wire.State(
                **{f: getattr(odd, f) for f in odd.__struct_fields__ if f not in ("station", "kecamatan")},
                station=station,
                kecamatan=rng.choice(('Kec "Baru"', "Kec\\Baru", "Baru")),
            )  # fmt: skip
            self.fleet.ingest(
                wire.topic("33", "3399", station, "state"), wire.encode(odd), self.now
            )
        elif kind == 7:  # many stations at once (a round of states)
            for entry in rng.sample(self.inventory, 150):
                self.state(entry)
        # kind 8: nothing changes; only time passes (stations go stale, unknown ones are forgotten)
        self.now += rng.choice((1.0, 5.0, 40.0, 400.0))

    def snapshot(self) -> Snapshot:
        return self.fleet.snapshot(self.now)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_long_lived_renderer_serves_what_a_fresh_one_would(seed: int) -> None:
    world = World(seed)
    cached = Renderer(process_metrics=False)
    for step in range(120):
        snap = world.snapshot()
        fresh = Renderer(process_metrics=False).render(snap)
        page = cached.render(snap)
        assert page == fresh, f"step {step}"
        if step % 10 == 0:
            assert gzip.decompress(cached.render_gzip(snap)) == fresh, f"step {step}"
        if step % 60 == 59:  # the reference is slow to render and parse: twice per walk
            assert families(page.decode()) == families(reference_render(snap).decode())
        world.step()


def test_an_unchanged_fleet_re_renders_nothing_and_one_change_little() -> None:
    world = World(7)
    r = Renderer(process_metrics=False)
    r.render(world.snapshot())
    rendered, total = r.last_rendered
    assert rendered == total == -(-700 // exposition.CHUNK) * len(RENDER)
    r.render(world.snapshot())
    assert r.last_rendered == (0, total)
    world.now += 30
    world.state(world.inventory[5])  # new timestamps, cpu and memory unchanged
    r.render(world.snapshot())
    # last report time, clock skew, boot time (make_state derives it from ts) and the problems'
    # first-seen block (a stale station's counts from its last message) of one chunk
    assert r.last_rendered == (4, total)
    world.now += 30
    world.state(world.inventory[5], missing=("iris",))
    r.render(world.snapshot())
    # + the peripheral families (present, last change, problem)
    peripheral = sum(1 for render in RENDER.values() if render.depends & exposition.PRESENCE)
    assert peripheral >= 2
    assert r.last_rendered == (3 + peripheral, total)  # peripheral includes the since block


def test_changed_parts_cover_every_family_whose_text_changed() -> None:
    """For pairs of views of one station, a family's text differs only if a part it depends on
    changed: the rule that makes a skipped block safe."""
    world = World(11)
    seen: dict[str, list[StationView]] = {}
    for _ in range(400):
        for view in world.snapshot().stations:
            history = seen.setdefault(view.station, [])
            if not history or history[-1] is not view:
                history.append(view)
        world.step()
    now, stale = world.now, 3.0
    pairs = 0
    for history in seen.values():
        for a, b in itertools.pairwise(history):
            parts = exposition._changed_parts(a, b)
            for render in RENDER.values():
                if render.depends == exposition.STATUS:
                    continue  # up/down is compared per scrape, not per view
                ta = render.text([a], [label_set(a)], now, stale)
                tb = render.text([b], [label_set(b)], now, stale)
                if ta != tb:
                    assert render.depends & parts, (ta, tb)
            pairs += 1
    assert pairs > 300


@pytest.mark.parametrize("combine", [crc32_combine, exposition.crc32_combine_py])
def test_crc32_combine_matches_zlib(combine: object) -> None:
    rng = random.Random(5)
    for _ in range(50):
        a = rng.randbytes(rng.randrange(0, 3000))
        b = rng.randbytes(rng.randrange(0, 70000))
        assert combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)  # type: ignore[operator]


def test_gzip_page_is_one_member_that_zlib_inflates_whole() -> None:
    """One gzip member (not concatenated members, which some clients stop after the first)."""
    world = World(3)
    r = Renderer(process_metrics=False)
    snap = world.snapshot()
    body = r.render_gzip(snap)
    d = zlib.decompressobj(31)
    text = d.decompress(body)
    assert d.eof
    assert d.unused_data == b""
    assert text == Renderer(process_metrics=False).render(snap)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_decodes_the_gzip_page_of_a_running_collector() -> None:
    from pantau.collector.config import from_dict
    from pantau.collector.service import Collector

    inventory = make_inventory(600)
    c = Collector(from_dict({"http": {"port": 0}, "mqtt": {"port": 1}}), inventory=inventory)
    for entry in inventory[:400]:
        c.fleet.ingest(state_topic(entry), wire.encode(make_state(entry)), T0)
    c.start()
    try:
        url = f"{c.url}/metrics"
        raw = subprocess.run(
            ["curl", "-sS", "-H", "Accept-Encoding: gzip", url],
            capture_output=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        assert raw[:2] == b"\x1f\x8b"  # really compressed
        decoded = subprocess.run(
            ["curl", "-sS", "--compressed", url], capture_output=True, check=True, timeout=60
        ).stdout
        plain = subprocess.run(["curl", "-sS", url], capture_output=True, check=True, timeout=60)
        assert families(decoded.decode()) == families(plain.stdout.decode())
        assert decoded.count(b"\npantau_station_up{") == 600
    finally:
        c.stop()
