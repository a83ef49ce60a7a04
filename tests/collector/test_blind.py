"""Blind is not down: while the collector cannot see, staleness is suspended (pure fleet)."""

from __future__ import annotations

from collector_support import inventory, state, status, topic

from pantau.collector.fleet import REPLAY_QUIET_S, Fleet, summarize

JUW, KLA = "3310-juwiring-01", "3310-klaten-02"
T0 = 1_790_000_000.0
STALE = 3 * 30.0  # stale_after_intervals x interval_s of collector_support.state


def listening_fleet(now: float) -> Fleet:
    f = Fleet(inventory=inventory())
    f.set_connected(False, now)  # as the MQTT adapter does at start: blind until replayed
    f.set_connected(True, now)
    f.set_subscribed(now)
    for station in (JUW, KLA):
        assert f.ingest(topic(station), state(station, seq=1), now, retained=True) == ""
    return f


def statuses(f: Fleet, now: float) -> dict[str, str]:
    snap = f.snapshot(now)
    return {v.station: snap.status(v) for v in snap.stations if v.station in (JUW, KLA)}


def test_blind_until_the_retained_replay_is_over() -> None:
    f = listening_fleet(T0)
    assert f.snapshot(T0 + REPLAY_QUIET_S / 2).blind
    f.ingest(topic(JUW), state(JUW, seq=2), T0 + 0.8, retained=True)  # the replay goes on
    assert f.snapshot(T0 + 0.8 + REPLAY_QUIET_S / 2).blind
    snap = f.snapshot(T0 + 0.8 + REPLAY_QUIET_S)
    assert not snap.blind
    assert snap.heard_from == T0 + 0.8


def test_a_long_outage_marks_nobody_down_and_silence_counts_again_after_it() -> None:
    f = listening_fleet(T0)
    f.ingest(topic(JUW), state(JUW, seq=2), T0 + 20, retained=False)
    f.ingest(topic(KLA), state(KLA, seq=2), T0 + 20, retained=False)
    assert statuses(f, T0 + 30) == {JUW: "up", KLA: "up"}
    f.set_connected(False, T0 + 30)  # broker gone for 5 minutes
    for t in (T0 + 60, T0 + 200, T0 + 330):
        snap = f.snapshot(t)
        assert snap.blind
        assert snap.status_now == T0 + 30
        assert statuses(f, t) == {JUW: "up", KLA: "up"}
        assert summarize(snap).up == 2
    back = T0 + 330
    f.set_connected(True, back)
    assert f.snapshot(back + 10).blind  # connected, not yet subscribed
    f.set_subscribed(back + 0.1)
    f.ingest(topic(JUW), state(JUW, seq=2), back + 0.2, retained=True)  # replay: no news
    f.ingest(topic(KLA), state(KLA, seq=2), back + 0.2, retained=True)
    listening = back + 0.2
    assert not f.snapshot(listening + REPLAY_QUIET_S).blind
    # Juwiring's agent reconnects and reports; Klaten's died during the outage, without a will
    f.ingest(topic(JUW), state(JUW, seq=3), listening + 30)
    assert statuses(f, listening + STALE - 1) == {JUW: "up", KLA: "up"}
    # down on evidence only: silence while the collector was listening, long enough
    assert statuses(f, listening + STALE + 1) == {JUW: "up", KLA: "stale"}


def test_a_will_is_evidence_even_right_after_an_outage() -> None:
    f = listening_fleet(T0)
    f.set_connected(False, T0 + 10)
    f.set_connected(True, T0 + 100)
    f.set_subscribed(T0 + 100)
    will = status(KLA, "offline", seq=5)
    assert f.ingest(topic(KLA, "status"), will, T0 + 100.1, retained=True) == ""
    assert statuses(f, T0 + 100.2) == {JUW: "up", KLA: "offline"}


def test_silence_while_listening_still_makes_a_station_stale() -> None:
    f = listening_fleet(T0)
    assert statuses(f, T0 + STALE + 5) == {JUW: "stale", KLA: "stale"}


def test_a_fleet_without_mqtt_is_never_blind() -> None:
    """Simulations and benches apply messages directly: staleness as always."""
    f = Fleet(inventory=inventory())
    f.ingest(topic(JUW), state(JUW, seq=1), T0)
    snap = f.snapshot(T0 + STALE + 1)
    assert not snap.blind
    assert snap.status(next(v for v in snap.stations if v.station == JUW)) == "stale"
