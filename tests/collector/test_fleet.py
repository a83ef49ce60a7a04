"""Fleet state rules (pure, clock passed in): inventory merge, sessions, staleness, counters."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from pantau.collector import fleet as fl
from pantau.collector.fleet import Fleet, station_status, summarize
from pantau.contract import wire
from pantau.contract.inventory import parse_inventory

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "wire"
INVENTORY = parse_inventory(
    "# two stations of Klaten\n"
    "station,provinsi,kabkota,kecamatan,device_classes\n"
    "3310-juwiring-01,33,3310,Juwiring,fingerprint;iris;camera;signature\n"
    "3310-bayat-01,33,3310,Bayat,fingerprint;camera\n"
)
JUW = "3310-juwiring-01"
T0 = 1_790_000_000.0


def topic(
    station: str = JUW, kind: wire.Kind = "state", prov: str = "33", kab: str = "3310"
) -> str:
    return wire.topic(prov, kab, station, kind)


def state(
    station: str = JUW,
    *,
    session: str = "A",
    seq: int = 2,
    ts: float = T0,
    interval_s: float = 30.0,
    heartbeat_s: float = 0.0,
    peripherals: tuple[tuple[str, bool], ...] = (
        ("fingerprint", True),
        ("iris", True),
        ("camera", True),
        ("signature", True),
    ),
    kecamatan: str = "",
) -> bytes:
    return wire.encode(
        wire.State(
            station=station,
            agent_version="0.1.0",
            session=session,
            seq=seq,
            ts=ts,
            interval_s=interval_s,
            heartbeat_s=heartbeat_s,
            kecamatan=kecamatan,
            peripherals=tuple(
                wire.Peripheral(device_class=c, present=p, found=int(p)) for c, p in peripherals
            ),
        )
    )


def status(value: wire.StatusValue, *, session: str = "A", seq: int = 1, reason: str = "") -> bytes:
    return wire.encode(
        wire.Status(
            station=JUW,
            agent_version="0.1.0",
            session=session,
            seq=seq,
            ts=T0,
            status=value,
            reason=reason or ("will" if value == "offline" else ""),
        )
    )


def event(kind: wire.EventKind, *, session: str = "A", seq: int = 3) -> bytes:
    return wire.encode(
        wire.Event(station=JUW, agent_version="0.1.0", session=session, seq=seq, ts=T0, kind=kind)
    )


def beat(*, session: str = "A", seq: int = 10) -> bytes:
    return wire.encode(wire.Beat(1, session, seq))


def make(**kw: object) -> Fleet:
    return Fleet(
        inventory=INVENTORY,
        device_classes=("fingerprint", "iris", "camera", "signature"),
        **kw,  # type: ignore[arg-type]
    )


def view(f: Fleet, station: str = JUW, now: float = T0) -> fl.StationView:
    return next(v for v in f.snapshot(now).stations if v.station == station)


def st(f: Fleet, now: float, station: str = JUW) -> str:
    return station_status(view(f, station, now), now, f.stale_after_intervals)


# --------------------------------------------------------------------------- inventory


def test_inventory_stations_that_never_reported_are_down_and_flagged() -> None:
    f = make()
    snap = f.snapshot(T0)
    assert [v.station for v in snap.stations] == [JUW, "3310-bayat-01"]
    bayat = view(f, "3310-bayat-01")
    assert bayat.inventory
    assert bayat.report is None
    assert st(f, T0, "3310-bayat-01") == "never_reported"
    assert fl.problems(bayat, T0, 3) == ["never reported"]
    assert summarize(snap).never_reported == 2


def test_region_labels_come_from_the_inventory_even_if_the_topic_differs() -> None:
    f = make()
    assert f.ingest(topic(prov="99", kab="9999"), state(kecamatan="Elsewhere"), T0) == ""
    v = view(f)
    assert (v.provinsi, v.kabkota, v.kecamatan) == ("33", "3310", "Juwiring")


def test_unknown_stations_get_labels_from_topic_and_report_and_are_capped() -> None:
    f = make(max_unknown_stations=2)
    for i in range(3):
        sid = f"3311-x-{i}"
        reason = f.ingest(topic(sid, kab="3311"), state(sid, kecamatan=f"Kec {i}"), T0)
        assert reason == ("" if i < 2 else fl.OVER_CAP)
    snap = f.snapshot(T0)
    unknown = [v for v in snap.stations if not v.inventory]
    assert [(v.station, v.kabkota, v.kecamatan) for v in unknown] == [
        ("3311-x-0", "3311", "Kec 0"),
        ("3311-x-1", "3311", "Kec 1"),
    ]
    assert snap.rejected[fl.OVER_CAP] == 1
    assert snap.received_total == 3


def test_silent_unknown_stations_are_forgotten_inventory_ones_never() -> None:
    f = make(forget_unknown_after_s=100.0)
    f.ingest(topic("3311-x-0", kab="3311"), state("3311-x-0"), T0)
    assert len(f.snapshot(T0 + 50).stations) == 3
    assert {v.station for v in f.snapshot(T0 + 101).stations} == {JUW, "3310-bayat-01"}


# --------------------------------------------------------------------------- staleness


def test_up_until_stale_after_n_intervals_on_the_collector_clock() -> None:
    f = make(stale_after_intervals=3.0)
    # The agent's clock is a day behind: staleness must not care.
    f.ingest(topic(), state(ts=T0 - 86400, interval_s=10.0), T0)
    assert st(f, T0 + 30) == "up"
    assert st(f, T0 + 30.5) == "stale"
    assert fl.problems(view(f, now=T0 + 31), T0 + 31, 3) == ["not reporting"]


def test_report_by_exception_station_is_up_while_it_beats_though_nothing_changes() -> None:
    f = make(stale_after_intervals=3.0)
    # The full state comes hourly (or on change); heartbeats every 60 s say "alive".
    f.ingest(topic(), state(seq=2, interval_s=3600.0, heartbeat_s=60.0), T0)
    for i in range(1, 100):  # ~1.6 h without any change: never stale
        assert f.ingest(topic(kind="beat"), beat(seq=2 + i), T0 + 60 * i) == ""
        assert st(f, T0 + 60 * i + 59) == "up"
    last = T0 + 60 * 99
    assert view(f, now=last).state_rx == T0  # the state itself is old: that is fine
    assert fl.last_report(view(f, now=last)) == last  # a heartbeat is a report
    # Beats stop (the agent's loop hangs, the broker kept the link): stale after 3 beats.
    assert st(f, last + 180) == "up"
    assert st(f, last + 180.5) == "stale"
    assert fl.problems(view(f, now=last + 181), last + 181, 3) == ["not reporting"]


def test_without_heartbeats_staleness_follows_the_state_interval() -> None:
    # An agent of before heartbeats (heartbeat_s absent = 0): the state is its liveness.
    f = make(stale_after_intervals=3.0)
    f.ingest(topic(), state(interval_s=30.0), T0)
    assert st(f, T0 + 90) == "up"
    assert st(f, T0 + 90.5) == "stale"


def test_beats_of_another_session_or_repeated_do_not_count() -> None:
    f = make()
    f.ingest(topic(), state(seq=2, interval_s=3600.0, heartbeat_s=60.0), T0)
    assert f.ingest(topic(kind="beat"), beat(session="B", seq=50), T0 + 100) == fl.STALE_SESSION
    assert f.ingest(topic(kind="beat"), beat(seq=3), T0 + 100) == ""
    assert f.ingest(topic(kind="beat"), beat(seq=3), T0 + 150) == fl.STALE_SEQ
    assert view(f, now=T0 + 150).last_seen == T0 + 100
    snap = f.snapshot(T0 + 150)
    assert snap.rejected[fl.STALE_SESSION] == 1
    assert snap.rejected[fl.STALE_SEQ] == 1


def test_beats_count_sequence_gaps_and_revive_after_a_stuck_offline() -> None:
    f = make()
    f.ingest(topic(kind="status"), status("online", seq=1), T0)
    f.ingest(topic(), state(seq=2, interval_s=3600.0, heartbeat_s=60.0), T0)
    f.ingest(topic(kind="beat"), beat(seq=5), T0 + 60)  # 3 and 4 lost
    assert view(f, now=T0 + 60 + f.reorder_window_s).seq_gaps == 2
    f.ingest(topic(kind="status"), status("offline", seq=6), T0 + 61)
    assert st(f, T0 + 61) == "offline"
    f.ingest(topic(kind="beat"), beat(seq=7), T0 + 120)  # live and newer: it is connected
    assert st(f, T0 + 120) == "up"


def test_a_will_still_marks_a_beating_station_offline_at_once() -> None:
    f = make()
    f.ingest(topic(kind="status"), status("online", seq=1), T0)
    f.ingest(topic(), state(seq=2, interval_s=3600.0, heartbeat_s=60.0), T0)
    f.ingest(topic(kind="beat"), beat(seq=3), T0 + 60)
    f.ingest(topic(kind="status"), status("offline", seq=1), T0 + 90)
    assert st(f, T0 + 90) == "offline"


def test_clock_skew_is_agent_minus_collector() -> None:
    f = make()
    f.ingest(topic(), state(ts=T0 - 120.0), T0)
    assert fl.clock_skew(view(f)) == -120.0


def test_a_replayed_state_does_not_refresh_last_report() -> None:
    f = make()
    f.ingest(topic(), state(seq=5), T0)
    assert f.ingest(topic(), state(seq=5), T0 + 100, retained=True) == fl.STALE_SEQ
    assert view(f).state_rx == T0


def test_messages_not_newer_than_the_applied_ones_are_counted_as_stale_seq() -> None:
    f = make()
    assert f.ingest(topic(kind="status"), status("online", seq=1), T0) == ""
    assert f.ingest(topic(), state(seq=5), T0) == ""
    assert f.ingest(topic(kind="event"), event(wire.EventKind.REBOOT, seq=6), T0) == ""
    # after a reconnect the broker replays the retained birth and state; QoS 1 may redeliver
    assert f.ingest(topic(kind="status"), status("online", seq=1), T0 + 1, retained=True) == (
        fl.STALE_SEQ
    )
    assert f.ingest(topic(), state(seq=5), T0 + 1, retained=True) == fl.STALE_SEQ
    assert f.ingest(topic(), state(seq=4), T0 + 1) == fl.STALE_SEQ  # older, out of order
    assert f.ingest(topic(kind="event"), event(wire.EventKind.REBOOT, seq=6), T0 + 1) == (
        fl.STALE_SEQ
    )
    snap = f.snapshot(T0 + 1)
    assert snap.rejected[fl.STALE_SEQ] == 4
    assert snap.received_total == 7
    assert view(f).events == (("reboot", 1),)


# --------------------------------------------------------------------------- sessions


def test_birth_then_will_of_the_same_session_marks_offline() -> None:
    f = make()
    f.ingest(topic(kind="status"), status("online", seq=1), T0)
    f.ingest(topic(), state(seq=2), T0)
    assert st(f, T0) == "up"
    assert f.ingest(topic(kind="status"), status("offline", seq=0), T0 + 1) == ""
    assert st(f, T0 + 1) == "offline"
    assert fl.problems(view(f), T0 + 1, 3) == ["offline (connection lost)"]


def test_a_replayed_will_is_counted_and_does_not_refresh_last_seen() -> None:
    f = make()
    f.ingest(topic(kind="status"), status("online", seq=1), T0)
    f.ingest(topic(), state(seq=2), T0)
    assert f.ingest(topic(kind="status"), status("offline", seq=1), T0 + 1) == ""
    seen = view(f).last_seen
    # the collector reconnects an hour later: the broker replays the retained will
    assert f.ingest(topic(kind="status"), status("offline", seq=1), T0 + 3600) == fl.STALE_SEQ
    assert view(f).last_seen == seen
    assert st(f, T0 + 3600) == "offline"


def test_stale_will_of_an_older_session_never_marks_a_newer_session_offline() -> None:
    f = make()
    f.ingest(topic(kind="status"), status("online", session="A", seq=1), T0)
    f.ingest(topic(kind="status"), status("online", session="B", seq=1), T0 + 1)
    f.ingest(topic(), state(session="B", seq=2), T0 + 1)
    # A's will arrives late (the broker noticed A's dead connection after B's birth).
    assert f.ingest(topic(kind="status"), status("offline", session="A"), T0 + 2) == (
        fl.STALE_SESSION
    )
    assert st(f, T0 + 2) == "up"
    # Messages of the retired session A are not applied either.
    assert f.ingest(topic(), state(session="A", seq=99), T0 + 3) == fl.STALE_SESSION
    assert view(f).session == "B"


def test_will_of_a_never_seen_session_is_stale_when_another_is_current() -> None:
    """After a collector restart: retained state of B, then B's predecessor's stuck will.

    Still right with wills of unseen sessions held back (next tests): the broker keeps B's state,
    not A's, so A is the older session (its will reached the broker after B's birth, e.g. a
    different client id); A's will applies only if A's own state or birth came next, never here.
    """
    f = make()
    f.ingest(topic(), state(session="B", seq=7), T0, retained=True)
    assert f.ingest(topic(kind="status"), status("offline", session="A"), T0, retained=True) == (
        fl.STALE_SESSION
    )
    assert st(f, T0) == "up"


def test_will_from_an_earlier_connection_of_the_same_session_is_ignored() -> None:
    f = make()
    f.ingest(topic(kind="status"), status("online", seq=1), T0)
    f.ingest(topic(), state(seq=2), T0)
    f.ingest(topic(), state(seq=3), T0)
    # Reconnect within the same session: new will seq 4, birth seq 5.
    f.ingest(topic(kind="status"), status("online", seq=5), T0 + 1)
    assert f.ingest(topic(kind="status"), status("offline", seq=0), T0 + 2) == fl.STALE_WILL
    assert st(f, T0 + 2) == "up"
    # The current connection's will does apply.
    assert f.ingest(topic(kind="status"), status("offline", seq=4), T0 + 3) == ""
    assert st(f, T0 + 3) == "offline"


def test_retained_will_and_state_of_a_dead_agent_stay_offline_in_either_order() -> None:
    for order in ((("status", status("offline", seq=0)), ("state", state(seq=9))),):
        for msgs in (order, tuple(reversed(order))):
            f = make()
            for kind, payload in msgs:
                f.ingest(topic(kind=kind), payload, T0, retained=True)  # type: ignore[arg-type]
            assert st(f, T0) == "offline"


def test_a_live_state_after_a_stuck_offline_proves_the_agent_is_back() -> None:
    f = make()
    f.ingest(topic(kind="status"), status("offline", seq=0), T0, retained=True)
    f.ingest(topic(), state(seq=9), T0, retained=True)
    assert st(f, T0) == "offline"
    f.ingest(topic(), state(seq=10), T0 + 30)
    assert st(f, T0 + 30) == "up"


def test_orderly_shutdown_is_reported_as_such() -> None:
    f = make()
    f.ingest(topic(kind="status"), status("online", seq=1), T0)
    f.ingest(topic(), state(seq=2), T0)
    f.ingest(topic(kind="status"), status("offline", seq=3, reason="shutdown"), T0 + 1)
    assert view(f).offline_reason == "shutdown"


# --------------------------------------------------------------------------- counters


def test_sequence_gaps_are_counted_between_live_messages() -> None:
    f = make()
    f.ingest(topic(), state(seq=2), T0, retained=True)  # replay: no baseline
    f.ingest(topic(), state(seq=10), T0 + 1)  # first live: baseline
    f.ingest(topic(), state(seq=11), T0 + 2)
    f.ingest(topic(), state(seq=15), T0 + 3)  # 12, 13, 14 missing
    f.ingest(topic(kind="event"), event(wire.EventKind.PROBE_DOWN, seq=17), T0 + 4)  # 16
    # Holes, not yet loss: a late message could still fill them.
    assert view(f).seq_gaps == 0
    assert f.snapshot(T0 + 4).seq_gaps_total == 0
    # After the reorder window they count as lost.
    assert f.snapshot(T0 + 4 + f.reorder_window_s).seq_gaps_total == 4
    assert view(f).seq_gaps == 4
    # A new connection (birth) restarts the baseline: no gap across reconnects.
    f.ingest(topic(kind="status"), status("online", seq=40), T0 + 500)
    f.ingest(topic(), state(seq=41), T0 + 501)
    assert f.snapshot(T0 + 2000).seq_gaps_total == 4
    assert view(f).seq_gaps == 4


def test_a_late_message_fills_its_hole_and_is_no_loss() -> None:
    f = make()
    f.ingest(topic(kind="status"), status("online", seq=1), T0)
    f.ingest(topic(), state(seq=3), T0 + 1)  # event 2 not here yet: a hole
    f.ingest(topic(kind="event"), event(wire.EventKind.PROBE_DOWN, seq=2), T0 + 2)  # late
    f.ingest(topic(), state(seq=6), T0 + 3)  # 4, 5 open
    f.ingest(topic(kind="event"), event(wire.EventKind.PROBE_UP, seq=5), T0 + 4)  # 5 filled
    assert f.snapshot(T0 + 10_000).seq_gaps_total == 1  # only 4 never came
    assert view(f).seq_gaps == 1


def test_a_spooled_event_resent_after_a_reconnect_fills_its_hole() -> None:
    f = make(reorder_window_s=60)
    f.ingest(topic(kind="status"), status("online", seq=1), T0)
    f.ingest(topic(), state(seq=3), T0 + 1)  # event 2 was in flight when the link died
    f.ingest(topic(kind="status"), status("online", seq=9), T0 + 30)  # reconnect
    f.ingest(topic(kind="event"), event(wire.EventKind.PROBE_DOWN, seq=2), T0 + 31)  # resent
    assert f.snapshot(T0 + 1000).seq_gaps_total == 0


def test_a_huge_jump_counts_beyond_the_hole_bound_at_once() -> None:
    f = make()
    f.ingest(topic(kind="status"), status("online", seq=1), T0)
    f.ingest(topic(), state(seq=2 + fl.MAX_HOLES + 100), T0 + 1)
    assert f.snapshot(T0 + 1).seq_gaps_total == 100
    assert f.snapshot(T0 + 1 + f.reorder_window_s).seq_gaps_total == 100 + fl.MAX_HOLES


def test_events_are_counted_per_kind_once_per_session_and_seq() -> None:
    f = make()
    f.ingest(topic(kind="event"), event(wire.EventKind.PERIPHERAL_REMOVED, seq=3), T0)
    f.ingest(topic(kind="event"), event(wire.EventKind.PERIPHERAL_REMOVED, seq=3), T0)
    f.ingest(topic(kind="event"), event(wire.EventKind.PERIPHERAL_REMOVED, seq=4), T0)
    f.ingest(topic(kind="event"), event(wire.EventKind.REBOOT, seq=5), T0)
    # Spooled events of an older session still count (they happened).
    f.ingest(topic(kind="event"), event(wire.EventKind.REBOOT, session="old", seq=1), T0)
    assert view(f).events == (("peripheral_removed", 2), ("reboot", 2))


@pytest.mark.parametrize(
    ("topic_name", "payload", "reason"),
    [
        ("pantau/v1/33/3310", b"{}", "bad_topic"),
        ("pantau/v1/33/3310/bad station/state", b"{}", "bad_topic"),
        (topic(), b"{not json", "bad_json"),
        (topic(), b"x" * (wire.MAX_PAYLOAD_BYTES + 1), "oversized"),
        (topic(), state(station="3310-other-01"), "station_mismatch"),
        (topic(), b'{"type":"state","v":2,"station":"x"}', "wrong_version"),
        (topic(), b'{"type":"state","v":1,"station":"3310-juwiring-01"}', "missing_field"),
        (topic(kind="status"), status("online").replace(b'"online"', b'"maybe"'), "invalid_field"),
    ],
)
def test_rejections_are_counted_by_reason_and_create_no_station(
    topic_name: str, payload: bytes, reason: str
) -> None:
    f = make()
    assert f.ingest(topic_name, payload, T0) == reason
    snap = f.snapshot(T0)
    assert snap.rejected[reason] == 1
    assert sum(snap.rejected.values()) == 1
    assert len(snap.stations) == 2
    assert view(f).report is None


def test_golden_fixtures_are_accepted() -> None:
    f = make()
    for name, kind in (
        ("state_full.json", "state"),
        ("status_online.json", "status"),
        ("event_peripheral_removed.json", "event"),
        ("beat.json", "beat"),
        ("beat_future.json", "beat"),
    ):
        assert f.ingest(topic(kind=kind), (FIXTURES / name).read_bytes(), T0) == "", name  # type: ignore[arg-type]
    v = view(f)
    assert v.report is not None
    assert v.report.disks[0][0] == "C:\\"
    assert fl.problems(v, T0, 3) == [
        "camera missing",
        "login login: login server unreachable over the network (timeout)",
        "login api: the login service has an error (server error) (HTTP 503)",
        "login enrollment: the login service refuses this station (HTTP 403)",
    ]


def test_golden_rejected_payloads_are_counted_by_reason() -> None:
    """tests/fixtures/wire/rejected/{kind}.{reason}.{what}.json: each counted under its reason
    (a 310-digit byte count never reaches the fleet, so never the /metrics page)."""
    f = make()
    files = sorted((FIXTURES / "rejected").glob("*.json"))
    assert files
    expected: dict[str, int] = {}
    for path in files:
        kind, reason, _ = path.name.split(".", 2)
        assert f.ingest(topic(kind=kind), path.read_bytes(), T0) == reason, path.name  # type: ignore[arg-type]
        expected[reason] = expected.get(reason, 0) + 1
    snap = f.snapshot(T0)
    assert {r: n for r, n in snap.rejected.items() if n} == expected
    assert view(f).report is None


# --------------------------------------------------------------------------- peripherals


def test_expected_class_absent_from_the_report_is_not_configured_not_missing() -> None:
    f = make()
    f.ingest(topic(), state(peripherals=(("fingerprint", True), ("iris", True))), T0)
    presence = {p.device_class: (p.present, p.reason) for p in view(f).presence}
    assert presence == {
        "fingerprint": (True, ""),
        "iris": (True, ""),
        "camera": (False, "not_configured"),
        "signature": (False, "not_configured"),
    }


def test_unconfigured_device_classes_never_become_labels() -> None:
    f = make()
    f.ingest(topic(), state(peripherals=(("fingerprint", True), ("toaster", True))), T0)
    assert "toaster" not in {p.device_class for p in view(f).presence}


def test_presence_change_time_is_kept_until_presence_changes() -> None:
    f = make()
    all_present = (("fingerprint", True), ("iris", True), ("camera", True), ("signature", True))
    no_camera = (("fingerprint", True), ("iris", True), ("camera", False), ("signature", True))
    f.ingest(topic(), state(seq=2, peripherals=all_present), T0)
    f.ingest(topic(), state(seq=3, peripherals=all_present), T0 + 30)
    f.ingest(topic(), state(seq=4, peripherals=no_camera), T0 + 60)
    since = {p.device_class: p.since for p in view(f).presence}
    assert since == {"fingerprint": T0, "iris": T0, "camera": T0 + 60, "signature": T0}


def test_summary_counts_ready_stations() -> None:
    f = make()
    f.ingest(topic(), state(), T0)
    s = summarize(f.snapshot(T0))
    assert (s.total, s.up, s.ready, s.never_reported, s.in_inventory) == (2, 1, 1, 1, 2)


# --------------------------------------------------------------------------- properties

_TOPICS = hs.sampled_from(
    [
        topic(),
        topic(kind="status"),
        topic(kind="event"),
        topic("3399-x-1", kab="3399"),
        "pantau/v1/x",
        "#",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    hs.lists(
        hs.tuples(
            _TOPICS,
            hs.one_of(
                hs.binary(max_size=300),
                hs.sampled_from([state(), status("online"), status("offline", seq=0)]),
            ),
            hs.booleans(),
        ),
        max_size=20,
    )
)
def test_ingest_never_raises_and_counts_every_message(msgs: list[tuple[str, bytes, bool]]) -> None:
    f = make(max_unknown_stations=0)
    accepted = 0
    for t, payload, retained in msgs:
        if f.ingest(t, payload, T0, retained=retained) == "":
            accepted += 1
    snap = f.snapshot(T0)
    assert snap.received_total == len(msgs)
    assert sum(snap.rejected.values()) == len(msgs) - accepted
    assert {v.station for v in snap.stations} == {JUW, "3310-bayat-01"}


def test_probe_targets_and_mounts_are_unique_and_bounded() -> None:
    f = make()
    probes = tuple(
        wire.Probe(target=f"t{i % 20}", kind="tcp", up=True, duration_s=float(i)) for i in range(40)
    )
    disks = tuple(wire.Disk(mount=m, free_bytes=1, size_bytes=2) for m in ("C:\\", "C:\\", "D:\\"))
    host = wire.Host(
        cpu_ratio=0.1,
        mem_available_bytes=1,
        mem_total_bytes=2,
        boot_ts=T0,
        agent_start_ts=T0,
        disks=disks,
    )
    msg = wire.State(
        station=JUW, agent_version="1", session="A", seq=1, ts=T0, probes=probes, host=host
    )
    assert f.ingest(topic(), wire.encode(msg), T0) == ""
    report = view(f).report
    assert report is not None
    assert [p[0] for p in report.probes] == [f"t{i}" for i in range(16)]
    assert report.probes[0][2] == 0.0  # the first occurrence wins
    assert [d[0] for d in report.disks] == ["C:\\", "D:\\"]


def test_probe_reasons_are_bounded_label_values() -> None:
    f = make()

    def send(seq: int, reasons: list[str]) -> list[str]:
        probes = tuple(
            wire.Probe(target=f"t{i}", kind="tcp", up=False, duration_s=1.0, reason=r)
            for i, r in enumerate(reasons)
        )
        msg = wire.State(station=JUW, agent_version="1", session="A", seq=seq, ts=T0, probes=probes)
        assert f.ingest(topic(), wire.encode(msg), T0) == ""
        report = view(f).report
        assert report is not None
        return [p[3] for p in report.probes]

    assert send(1, ["ok", "timeout", "Bad Reason!", "x" * 40]) == [
        "ok",
        "timeout",
        "other",
        "other",
    ]
    # "ok" and "timeout" are known; 30 more distinct values fill the vocabulary of 32.
    extra = [f"r{i}" for i in range(31)]
    assert send(2, extra[:15]) == extra[:15]
    assert send(3, extra[15:30]) == extra[15:30]
    assert send(4, [extra[30], "timeout", "r3"]) == ["other", "timeout", "r3"]


def test_a_new_session_does_not_inherit_the_previous_sessions_offline() -> None:
    """Collector reconnects after missing B's birth; the broker's retained status is A's late will."""
    f = make()
    f.ingest(topic(kind="status"), status("online", session="A", seq=1), T0)
    f.ingest(topic(), state(session="A", seq=2), T0)
    f.ingest(topic(kind="status"), status("offline", session="A", seq=0), T0 + 1)
    assert st(f, T0 + 1) == "offline"
    f.ingest(topic(), state(session="B", seq=3), T0 + 60, retained=True)
    assert (
        f.ingest(
            topic(kind="status"), status("offline", session="A", seq=0), T0 + 60, retained=True
        )
        == fl.STALE_SESSION
    )
    assert st(f, T0 + 60) == "up"


# --------------------------------------------------------------------------- will before its state


def _follow_a(f: Fleet) -> None:
    f.ingest(topic(kind="status"), status("online", session="A", seq=1), T0)
    f.ingest(topic(), state(session="A", seq=2), T0)
    assert st(f, T0) == "up"


def test_a_retained_will_of_an_unseen_session_before_its_state_marks_offline() -> None:
    """The collector follows A; while it is disconnected the agent restarts as B and dies. On
    reconnect the broker replays B's will (retained status) before B's retained state."""
    f = make()
    _follow_a(f)
    will = status("offline", session="B", seq=5)  # B's will carries B's connect-time seq
    assert f.ingest(topic(kind="status"), will, T0 + 60, retained=True) == fl.STALE_SESSION
    assert st(f, T0 + 60) == "up"  # held back: nothing is known of B yet
    # B's retained state is newer in seq terms than its will (the will is set before the birth)
    # and still from before B died: a retained will means B is dead, whatever the seq.
    assert f.ingest(topic(), state(session="B", seq=9), T0 + 60, retained=True) == ""
    assert st(f, T0 + 60) == "offline"
    assert view(f).session == "B"
    assert fl.problems(view(f), T0 + 60, 3) == ["offline (connection lost)"]


def test_the_same_replay_in_the_other_order_marks_offline_too() -> None:
    f = make()
    _follow_a(f)
    assert f.ingest(topic(), state(session="B", seq=9), T0 + 60, retained=True) == ""
    assert (
        f.ingest(
            topic(kind="status"), status("offline", session="B", seq=5), T0 + 60, retained=True
        )
        == ""
    )
    assert st(f, T0 + 60) == "offline"


def test_a_held_will_yields_to_a_live_state_or_birth_that_is_newer() -> None:
    for later in (
        ("state", state(session="B", seq=6)),
        ("status", status("online", session="B", seq=6)),
    ):
        f = make()
        _follow_a(f)
        f.ingest(
            topic(kind="status"), status("offline", session="B", seq=5), T0 + 60, retained=True
        )
        kind, payload = later
        assert f.ingest(topic(kind=kind), payload, T0 + 61) == ""  # type: ignore[arg-type]
        assert st(f, T0 + 61) == "up", kind  # B connected again after that will


def test_a_held_will_applies_over_an_older_birth_of_its_session() -> None:
    f = make()
    _follow_a(f)
    f.ingest(topic(kind="status"), status("offline", session="B", seq=7), T0 + 60)
    assert f.ingest(topic(kind="status"), status("online", session="B", seq=3), T0 + 61) == ""
    assert st(f, T0 + 61) == "offline"  # the will came from a later connection than that birth


def test_only_one_will_is_held_per_station_and_another_session_drops_it() -> None:
    f = make()
    _follow_a(f)
    for session in ("B", "C"):
        f.ingest(
            topic(kind="status"), status("offline", session=session, seq=5), T0 + 60, retained=True
        )
    f.ingest(topic(), state(session="B", seq=9), T0 + 60, retained=True)
    assert st(f, T0 + 60) == "up"  # B's will was replaced by C's
    f.ingest(topic(), state(session="C", seq=9), T0 + 61, retained=True)
    assert st(f, T0 + 61) == "up"  # C's was dropped when B became current
