"""``check`` output (pure): every problem has a hint in both languages; healthy is said so."""

from __future__ import annotations

from pantau.agent import report
from pantau.agent.checks.login import ProbeReason
from pantau.agent.config import AgentConfig, DeviceRule, StationSettings
from pantau.contract import wire

CFG = AgentConfig(
    station=StationSettings(id="3310-ceper-01", provinsi="33", kabkota="3310", kecamatan="Ceper"),
    devices=(
        DeviceRule(device_class="smartcard", vid=0x076B, name="OMNIKEY reader"),
        DeviceRule(device_class="signature", vid=0x06A8),
    ),
)


def state(**kw: object) -> wire.State:
    return wire.State(
        station="3310-ceper-01",
        agent_version="0.1.0",
        session="s",
        seq=1,
        ts=0.0,
        **kw,  # type: ignore[arg-type]
    )


def test_all_healthy() -> None:
    ok = state(
        peripherals=(wire.Peripheral(device_class="signature", present=True, found=1),),
        probes=(
            wire.Probe(
                target="login",
                kind="https",
                up=True,
                duration_s=0.05,
                status_code=200,
                cert_expiry_ts=1.8e9,
            ),
        ),
    )
    assert report.problems(ok, CFG) == []
    text = report.render_text(ok, CFG)
    assert "HASIL / RESULT: semua baik / all healthy" in text
    assert "[OK]     login (https) 50 ms HTTP 200, sertifikat/cert s.d./until 2027-01-15" in text
    assert report.render_json(ok, CFG)["healthy"] is True


def test_custom_class_and_every_probe_reason_get_hints() -> None:
    probes = tuple(
        wire.Probe(target=f"p-{r.value}", kind="tcp", up=False, duration_s=1.0, reason=r.value)
        for r in ProbeReason
        if r is not ProbeReason.OK
    )
    bad = state(
        peripherals=(
            wire.Peripheral(device_class="smartcard", present=False, reason="missing"),
            wire.Peripheral(device_class="signature", present=False, reason="check_failed"),
        ),
        probes=probes,
        checks=(wire.CheckRun(name="host", ok=False, duration_s=10.0, reason="timeout"),),
    )
    found = report.problems(bad, CFG)
    assert len(found) == 2 + len(probes) + 1
    for problem in found:
        assert problem.hint_id
        assert problem.hint_en
        assert problem.hint_id != problem.hint_en
    smartcard = found[0]
    assert smartcard.summary == "missing: OMNIKEY reader (076b:*)"
    assert smartcard.hint_id.startswith("Smartcard tidak terdeteksi: periksa kabel USB")
    assert found[1].hint_en == "The USB check failed: call the IT technician."
    text = report.render_text(bad, CFG)
    assert "[GAGAL]  Alat tanda tangan (signature pad) / Signature pad: check_failed" in text
    assert "PEMERIKSAAN / CHECKS" in text
    assert f"HASIL / RESULT: {len(found)} masalah / problem(s)" in text
