"""``pantau-agent check`` output: for an operator (Bahasa Indonesia, English below) or as JSON.

Pure: a :class:`~pantau.contract.wire.State` (plus the config, for device labels) in, text or a dict out.
Every problem comes with what to do, in words a non-IT operator can act on or read out to the
technician on the phone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from pantau.agent.checks import probes
from pantau.agent.checks.usb import rule_label
from pantau.agent.config import AgentConfig, ConfigError
from pantau.contract import wire
from pantau.contract.vocabulary import (
    DEVICE_NAMES,
    LOGIN_CAUSE_TEXT,
    LoginCause,
    PeripheralReason,
    ProbeReason,
    capitalized,
    login_cause,
)

_DEVICE_HINT: Final = (
    "{id} tidak terdeteksi: periksa kabel USB dan pastikan {id_l} menyala.",
    "{en} not detected: check the USB cable and make sure the {en_l} is switched on.",
)
_CAMERA_HINT: Final = (
    "Kamera tidak terdeteksi: periksa kabel USB dan pastikan kamera menyala "
    "(kamera yang mati tidak terlihat di USB).",
    "Camera not detected: check the USB cable and make sure the camera is switched on "
    "(a camera that is off disappears from USB).",
)
_USB_UNAVAILABLE_HINT: Final = (
    "Pemeriksaan USB tidak bisa berjalan (libusb tidak ada): hubungi teknisi TI.",
    "The USB check cannot run (libusb missing): call the IT technician.",
)
_DRIVER_FAILED_HINT: Final = (
    "{id} terhubung ke USB tetapi drivernya gagal (Device Manager menunjukkan kode masalah, "
    "mis. 10 atau 43): cabut lalu colok lagi kabelnya, nyalakan ulang PC; bila tetap gagal, "
    "pasang ulang driver {id_l} atau hubungi teknisi TI.",
    "{en} is on USB but its driver failed (Device Manager shows a problem code, e.g. 10 or "
    "43): unplug and replug it, restart the PC; if it still fails, reinstall the {en_l} "
    "driver or call IT.",
)
_USB_FAILED_HINT: Final = (
    "Pemeriksaan USB gagal: hubungi teknisi TI.",
    "The USB check failed: call the IT technician.",
)

_FILE_HINTS: Final[dict[str, tuple[str, str]]] = {
    "mqtt.password_file": (
        "Berkas kata sandi broker tidak ada atau tidak terbaca: salin lagi berkas `password` "
        "stasiun ini dari hasil `pantau provision`, atau hubungi teknisi TI. Tanpa itu agen "
        "tidak bisa mengirim laporan.",
        "The broker password file is missing or unreadable: copy this station's `password` "
        "file again from the `pantau provision` output, or call IT. Without it the agent "
        "cannot report.",
    ),
    "mqtt.ca_file": (
        "Berkas sertifikat CA broker (ca.crt) tidak ada atau rusak: salin lagi `ca.crt` stasiun "
        "ini dari hasil `pantau provision`, atau hubungi teknisi TI. Tanpa itu agen tidak bisa "
        "mengirim laporan.",
        "The broker's CA certificate file (ca.crt) is missing or broken: copy this station's "
        "`ca.crt` again from the `pantau provision` output, or call IT. Without it the agent "
        "cannot report.",
    ),
}
_FILE_DEFAULT_HINT: Final = (
    "Berkas yang disebut di konfigurasi tidak ada atau rusak: hubungi teknisi TI.",
    "A file named in the configuration is missing or broken: call IT.",
)


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str  # peripheral | probe | check | config
    subject: str
    summary: str
    hint_id: str
    hint_en: str


def class_names(device_class: str) -> tuple[str, str]:
    """(Indonesian, English) name of a class as a line starts with it: ``Kamera``, ``Camera``."""
    if device_class not in DEVICE_NAMES:
        return device_class, device_class
    name_id, name_en = DEVICE_NAMES[device_class]
    return capitalized(name_id), capitalized(name_en)


_NOT_CONFIGURED_HINT: Final = (
    "Masalah konfigurasi, bukan perangkat: inventaris mengharapkan kelas ini tetapi agent.toml "
    "tidak punya aturan [[devices]] untuknya, jadi tidak ada yang memeriksanya. Tambahkan aturan "
    "(vid/pid perangkat, lihat docs/agent.md) lalu jalankan `pantau-agent check` lagi.",
    "A configuration problem, not hardware: the inventory expects this class but agent.toml has "
    "no [[devices]] rule for it, so nothing looks for it. Add the rule (the device's vid/pid, see "
    "docs/agent.md) and run `pantau-agent check` again.",
)


def _device_hint(device_class: str, reason: str) -> tuple[str, str]:
    if reason == PeripheralReason.NOT_CONFIGURED:
        return _NOT_CONFIGURED_HINT
    if reason == PeripheralReason.LIBUSB_UNAVAILABLE:
        return _USB_UNAVAILABLE_HINT
    if reason == PeripheralReason.CHECK_FAILED:
        return _USB_FAILED_HINT
    name_id, name_en = class_names(device_class)
    template = _DEVICE_HINT
    if reason == PeripheralReason.DRIVER_FAILED:
        template = _DRIVER_FAILED_HINT
    elif device_class == "camera":
        return _CAMERA_HINT
    return (
        template[0].format(id=name_id[:1].upper() + name_id[1:], id_l=name_id.lower()),
        template[1].format(en=name_en[:1].upper() + name_en[1:], en_l=name_en.lower()),
    )


def problems(
    state: wire.State, cfg: AgentConfig, files: Sequence[ConfigError] = ()
) -> list[Problem]:
    """Everything not healthy in ``state``, each with a hint (empty list: all healthy).

    ``files``: unusable files the config names (:func:`pantau.agent.config.file_errors`); the service
    would refuse to start with them, so they are problems too (kind ``config``).
    """
    out = [
        Problem("config", err.key, err.message, *_FILE_HINTS.get(err.key, _FILE_DEFAULT_HINT))
        for err in files
    ]
    for p in state.peripherals:
        if p.present:
            continue
        rules = [r for r in cfg.devices if r.device_class == p.device_class]
        wanted = ", ".join(rule_label(r) for r in rules) or "no [[devices]] rule"
        hint = _device_hint(p.device_class, p.reason)
        out.append(Problem("peripheral", p.device_class, f"{p.reason}: {wanted}", *hint))
    for probe in state.probes:
        if probe.up:
            continue
        cause = login_cause(probe.reason, probe.status_code)
        kind_hint = probes.hint(probe.kind, probe.reason)  # the probe kind's words
        if cause in (LoginCause.DENIED, LoginCause.SERVICE_ERROR) or kind_hint is None:
            what_id, do_id, what_en, do_en = LOGIN_CAUSE_TEXT.get(
                cause, LOGIN_CAUSE_TEXT[LoginCause.UNEXPECTED]
            )
            hint = (f"{capitalized(what_id)}: {do_id}.", f"{capitalized(what_en)}: {do_en}.")
        else:
            hint = kind_hint
        status = f" HTTP {probe.status_code}" if probe.status_code is not None else ""
        out.append(Problem("probe", probe.target, f"{cause.value}: {probe.reason}{status}", *hint))
    for run in state.checks:
        if run.ok:
            continue
        if run.name == "usb":
            hint = _USB_UNAVAILABLE_HINT if "libusb" in run.reason else _USB_FAILED_HINT
        else:
            hint = (
                f"Pemeriksaan {run.name} gagal: hubungi teknisi TI.",
                f"The {run.name} check failed: call IT.",
            )
        out.append(Problem("check", run.name, run.reason, *hint))
    return out


def _bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{n} B"
        value /= 1024
    return f"{n} B"  # pragma: no cover - loop always returns


def _device_text(d: wire.Device) -> str:
    name = " ".join(x for x in (d.manufacturer, d.product) if x)
    where = f" (port {d.port})" if d.port else ""
    return f"{d.vid:04x}:{d.pid:04x} {name}".rstrip() + where


def _hint_lines(prob: Problem) -> list[str]:
    return [f"           {prob.hint_id}", f"           {prob.hint_en}"]


def _with_hint(line: str, prob: Problem) -> list[str]:
    return [line, *_hint_lines(prob)]


def _device_lines(state: wire.State, by_subject: dict[tuple[str, str], Problem]) -> list[str]:
    lines = ["PERANGKAT / DEVICES"]
    if not state.peripherals:
        lines.append("  (tidak ada perangkat yang diharapkan / no devices configured)")
    tags: dict[str, str] = {
        PeripheralReason.MISSING: "[HILANG]",
        PeripheralReason.NOT_CONFIGURED: "[BELUM DIATUR / NOT CONFIGURED]",
    }
    for p in state.peripherals:
        name_id, name_en = class_names(p.device_class)
        label = f"{name_id} / {name_en}" if name_id != name_en else name_id
        if p.present:
            lines.append(f"  [OK]     {label}")
            lines += [f"           {_device_text(d)}" for d in p.devices]
            continue
        prob = by_subject[("peripheral", p.device_class)]
        lines.append(f"  {tags.get(p.reason, '[GAGAL] ')} {label}: {prob.summary}")
        if p.reason == PeripheralReason.DRIVER_FAILED:  # on USB: say which device
            lines += [f"           {_device_text(d)}" for d in p.devices]
        lines += _hint_lines(prob)
    return lines


def _probe_lines(state: wire.State, by_subject: dict[tuple[str, str], Problem]) -> list[str]:
    lines = ["", "LAYANAN LOGIN / LOGIN SERVICES"] if state.probes else []
    for probe in state.probes:
        ms = f"{probe.duration_s * 1000:.0f} ms"
        extra = f" HTTP {probe.status_code}" if probe.status_code is not None else ""
        if probe.cert_expiry_ts is not None:
            day = dt.datetime.fromtimestamp(probe.cert_expiry_ts, dt.UTC).date().isoformat()
            extra += f", sertifikat/cert s.d./until {day}"
        if probe.up and probe.reason == ProbeReason.CERT_EXPIRING and probe.cert_expiry_ts:
            days = max(0, int((probe.cert_expiry_ts - state.ts) // 86400))
            lines.append(f"  [AWAS]   {probe.target} ({probe.kind}) {ms}{extra}")
            lines.append(
                f"           Sertifikat server kedaluwarsa dalam {days} hari: login masih "
                "berjalan; beri tahu pengelola server sebelum berhenti."
            )
            lines.append(
                f"           The server certificate expires in {days} days: login still works; "
                "tell the server admins before it stops."
            )
        elif probe.up:
            lines.append(f"  [OK]     {probe.target} ({probe.kind}) {ms}{extra}")
        else:
            prob = by_subject[("probe", probe.target)]
            cert = extra.removeprefix(f" HTTP {probe.status_code}")
            line = f"  [GAGAL]  {probe.target} ({probe.kind}): {prob.summary}{cert}"
            lines += _with_hint(line, prob)
    return lines


def _host_lines(state: wire.State) -> list[str]:
    lines = ["", "KOMPUTER / HOST"]
    h = state.host
    if h is None:
        return [*lines, "  (tidak terbaca / not available)"]
    lines.append(
        f"  CPU {h.cpu_ratio * 100:.0f}%, memori/memory {_bytes(h.mem_available_bytes)}"
        f" bebas/free dari/of {_bytes(h.mem_total_bytes)}"
    )
    lines += [
        f"  disk {d.mount}: {_bytes(d.free_bytes)} bebas/free dari/of {_bytes(d.size_bytes)}"
        for d in h.disks
    ]
    boot = dt.datetime.fromtimestamp(h.boot_ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines.append(f"  boot: {boot}")
    return lines


def _problem_lines(title: str, found: Sequence[Problem]) -> list[str]:
    """A section of problems that are not a device or a probe (failed checks, config files)."""
    lines = ["", title] if found else []
    for prob in found:
        lines += _with_hint(f"  [GAGAL]  {prob.subject}: {prob.summary}", prob)
    return lines


def render_text(state: wire.State, cfg: AgentConfig, files: Sequence[ConfigError] = ()) -> str:
    """The operator's table."""
    found = problems(state, cfg, files)
    by_subject = {(p.kind, p.subject): p for p in found}
    st = cfg.station
    lines = [f"pantau-agent check: {st.id}" + (f" ({st.kecamatan})" if st.kecamatan else ""), ""]
    lines += _device_lines(state, by_subject)
    lines += _probe_lines(state, by_subject)
    lines += _host_lines(state)
    lines += _problem_lines("PEMERIKSAAN / CHECKS", [p for p in found if p.kind == "check"])
    lines += _problem_lines(
        "KONFIGURASI / CONFIGURATION (layanan tidak akan jalan / the service will not start)",
        [p for p in found if p.kind == "config"],
    )
    lines.append("")
    if found:
        lines.append(f"HASIL / RESULT: {len(found)} masalah / problem(s)")
    else:
        lines.append("HASIL / RESULT: semua baik / all healthy")
    return "\n".join(lines) + "\n"


def render_json(
    state: wire.State, cfg: AgentConfig, files: Sequence[ConfigError] = ()
) -> dict[str, Any]:
    """For tools: health, the problems with hints, and the full state as on the wire."""
    found = problems(state, cfg, files)
    return {
        "healthy": not found,
        "station": cfg.station.id,
        "problems": [dataclasses.asdict(p) for p in found],
        "state": msgspec.to_builtins(state),
    }
