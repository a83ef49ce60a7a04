"""What is wrong with a station, why, and since when: one verdict for the API, board and demo.

Pure: a :class:`~pantau.collector.fleet.StationView` and the collector clock in, a list of
:class:`Problem` out, each with a code a program can match, the subject (device class, probe
target, check), the cause and HTTP status where there is one, and since when it has held
(collector clock; see docs/collector.md "Broken since"). :func:`text` and :func:`hint` say it in
Bahasa Indonesia (``id``) or English (``en``).

Codes (``severity``):

- ``never_reported`` (critical): in the inventory, never heard from. As severe as a missing device:
  a station that never reports may have been broken for years.
- ``offline`` (critical): its agent said goodbye (``shutdown``) or its connection died (``will``).
- ``stale`` (critical): no message for ``stale_after_intervals`` of its intervals.
- ``peripheral_missing`` (critical): a configured device class is not on USB (hardware).
- ``driver_failed`` (critical): on USB, but its driver failed (Windows problem code, no kernel
  driver bound).
- ``peripheral_unknown`` (critical): the agent could not look (no libusb, the USB check failed).
- ``not_configured`` (critical, a configuration problem): the inventory expects a device class
  the station's agent config has no ``[[devices]]`` rule for, so nobody looks for it. Not
  "missing": the fix is a rule in the config, not a trip to the station.
- ``login_failed`` (critical): a login probe failed; ``cause`` says how
  (:class:`~pantau.contract.vocabulary.LoginCause`).
- ``check_failed`` (critical): one of the agent's checks failed.
- ``cert_expiring`` (warning): the login server's certificate expires soon; login still works.
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

from pantau.collector.fleet import Report, StationView, station_status
from pantau.contract.vocabulary import (
    LOGIN_CAUSE_TEXT,
    UNKNOWN_PRESENCE,
    LoginCause,
    PeripheralReason,
    ProbeReason,
    capitalized,
    device_names,
)

Severity = Literal["critical", "warning"]
Lang = Literal["id", "en"]
#: ``Presence.reason`` of a class the inventory expects and the agent has no rule for.
NOT_CONFIGURED: Final = PeripheralReason.NOT_CONFIGURED.value


class Problem(NamedTuple):
    code: str
    subject: str = ""
    #: Collector clock when it was first seen (0.0: not known).
    since: float = 0.0
    severity: Severity = "critical"
    #: The agent's reason (peripheral, probe, check) or the offline reason.
    reason: str = ""
    #: Login problems: a LoginCause value.
    cause: str = ""
    status_code: int | None = None
    #: cert_expiring: the certificate's notAfter (Unix seconds).
    expiry: float | None = None


def _presence_code(reason: str) -> str:
    if reason == NOT_CONFIGURED:
        return NOT_CONFIGURED
    if reason in UNKNOWN_PRESENCE:
        return "peripheral_unknown"
    if reason == PeripheralReason.DRIVER_FAILED:
        return "driver_failed"
    return "peripheral_missing"


def diagnose(view: StationView, now: float, stale_after_intervals: float) -> list[Problem]:
    """Every problem of the station, status first (empty: ready)."""
    out: list[Problem] = []
    status = station_status(view, now, stale_after_intervals)
    report = view.report
    if (
        status == "up"
        and report is not None
        and not report.failed_checks
        and all(p.present for p in view.presence)
        and all(p.up and p.reason != ProbeReason.CERT_EXPIRING for p in report.probes)
    ):
        return out  # the usual healthy station
    since = dict(view.since)
    if status == "never_reported":
        out.append(Problem("never_reported", since=view.known_since))
    elif status == "offline":
        out.append(Problem("offline", since=view.offline_since, reason=view.offline_reason))
    elif status == "stale" and view.report is not None:
        overdue = view.last_seen + stale_after_intervals * view.report.liveness_s
        out.append(Problem("stale", since=since.get("stale", overdue)))
    out.extend(
        Problem(
            _presence_code(p.reason),
            p.device_class,
            since.get(f"device:{p.device_class}", p.since),
            reason=p.reason,
        )
        for p in view.presence
        if not p.present
    )
    if view.report is not None:
        out.extend(_report_problems(view.report, since))
    return out


def _report_problems(report: Report, since: dict[str, float]) -> list[Problem]:
    out: list[Problem] = []
    for probe in report.probes:
        if not probe.up:
            out.append(
                Problem(
                    "login_failed",
                    probe.target,
                    since.get(f"login:{probe.target}", 0.0),
                    reason=probe.reason,
                    cause=probe.cause,
                    status_code=probe.status_code,
                )
            )
        elif probe.reason == ProbeReason.CERT_EXPIRING:
            out.append(
                Problem(
                    "cert_expiring",
                    probe.target,
                    since.get(f"cert:{probe.target}", 0.0),
                    "warning",
                    reason=probe.reason,
                    expiry=probe.cert_expiry_ts,
                )
            )
    out.extend(
        Problem("check_failed", name, since.get(f"check:{name}", 0.0), reason=why)
        for name, why in report.failed_checks
    )
    return out


def problem_series(view: StationView, now: float, stale: float) -> list[tuple[str, str, float]]:
    """``(code, subject, since)`` of every problem with a known start (the since metric)."""
    if (
        not view.since
        and view.online is not False
        and view.report is not None
        and all(p.present for p in view.presence)
        and station_status(view, now, stale) == "up"
    ):
        return []  # the usual healthy station
    return [(p.code, p.subject, p.since) for p in diagnose(view, now, stale) if p.since > 0]


def critical(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "critical"]


# --------------------------------------------------------------------------- words


def duration(seconds: float, lang: Lang) -> str:
    """``3 hari`` / ``3 days``: the largest whole unit."""
    seconds = max(0.0, seconds)
    units = (
        (86400, "hari", "day"),
        (3600, "jam", "hour"),
        (60, "menit", "minute"),
        (1, "detik", "second"),
    )
    for size, word_id, word_en in units:
        if seconds >= size or size == 1:
            n = int(seconds // size)
            if lang == "id":
                return f"{n} {word_id}"
            return f"{n} {word_en}{'' if n == 1 else 's'}"
    raise AssertionError("unreachable")  # pragma: no cover


def _http(p: Problem) -> str:
    return f" (HTTP {p.status_code})" if p.status_code is not None else f" ({p.reason})"


def _what(p: Problem, lang: Lang, now: float | None) -> str:
    """What is wrong, without "since"."""
    ident = lang == "id"
    dev_id, dev_en = device_names(p.subject)
    dev = dev_id if ident else dev_en
    why = f" ({p.reason})" if p.reason else ""
    if p.code == "offline":
        stopped = p.reason == "shutdown"
        if ident:
            return "offline (agen dihentikan)" if stopped else "offline (koneksi terputus)"
        return "offline (agent stopped)" if stopped else "offline (connection lost)"
    if p.code == "login_failed":
        what_id, _, what_en, _ = LOGIN_CAUSE_TEXT[_cause(p.cause)]
        return f"login {p.subject}: {what_id if ident else what_en}{_http(p)}"
    if p.code == "cert_expiring":
        left = duration((p.expiry or 0.0) - now, lang) if now and p.expiry else "?"
        if ident:
            return f"sertifikat login {p.subject} kedaluwarsa dalam {left}"
        return f"login certificate of {p.subject} expires in {left}"
    words: dict[str, tuple[str, str]] = {
        "never_reported": ("belum pernah melapor", "never reported"),
        "stale": ("tidak melapor lagi", "not reporting"),
        "peripheral_missing": (f"{dev} hilang", f"{dev} missing"),
        "driver_failed": (f"{dev} terpasang tetapi drivernya gagal", f"{dev} driver failed"),
        "peripheral_unknown": (
            f"{dev} tidak bisa diperiksa ({p.reason})",
            f"{dev} cannot be checked ({p.reason})",
        ),
        NOT_CONFIGURED: (
            f"{dev} belum dikonfigurasi (tidak ada aturan [[devices]])",
            f"{dev} not configured (no [[devices]] rule)",
        ),
        "check_failed": (f"pemeriksaan {p.subject} gagal{why}", f"check {p.subject} failed{why}"),
    }
    pair = words.get(p.code, (p.code, p.code))
    return pair[0] if ident else pair[1]


def text(p: Problem, lang: Lang, now: float | None = None) -> str:
    """What is wrong, one line, with "since" when ``now`` is given and the start is known."""
    out = _what(p, lang, now)
    if now is not None and p.since > 0 and p.code != "cert_expiring":
        age = duration(now - p.since, lang)
        out += f" sejak {age}" if lang == "id" else f" for {age}"
    return out


def _cause(value: str) -> LoginCause:
    try:
        cause = LoginCause(value)
    except ValueError:
        return LoginCause.UNEXPECTED
    return LoginCause.UNEXPECTED if cause is LoginCause.OK else cause


def hint(p: Problem, lang: Lang) -> str:
    """What to do about it (one sentence)."""
    ident = lang == "id"
    code = p.code
    if code == "login_failed":
        _, do_id, _, do_en = LOGIN_CAUSE_TEXT[_cause(p.cause)]
        return capitalized(do_id if ident else do_en) + "."
    if code == "peripheral_missing":
        if p.subject == "camera":
            return (
                "Periksa kabel USB dan pastikan kamera menyala (kamera yang mati hilang dari USB)."
                if ident
                else "Check the USB cable and that the camera is on (a camera switched off "
                "leaves USB)."
            )
        return (
            "Periksa kabel USB dan daya perangkat; setelah petir/lonjakan listrik perangkat bisa "
            "rusak."
            if ident
            else "Check the USB cable and the device's power; after lightning or a power surge "
            "the device may be broken."
        )
    if code == "driver_failed":
        return (
            "Cabut lalu colok lagi perangkat dan nyalakan ulang PC; bila tetap gagal, pasang ulang "
            "drivernya."
            if ident
            else "Unplug and replug the device and restart the PC; if it still fails, reinstall "
            "its driver."
        )
    if code == "peripheral_unknown":
        return (
            "Agen tidak bisa membaca USB: hubungi teknisi TI."
            if ident
            else "The agent cannot read USB: call IT."
        )
    if code == NOT_CONFIGURED:
        return (
            "Masalah konfigurasi, bukan perangkat: tambahkan aturan [[devices]] untuk kelas ini "
            "di agent.toml stasiun (lihat docs/agent.md) lalu mulai ulang agen."
            if ident
            else "A configuration problem, not hardware: add a [[devices]] rule for this class "
            "to the station's agent.toml (see docs/agent.md) and restart the agent."
        )
    if code == "never_reported":
        return (
            "Agen belum pernah melapor: pasang/nyalakan agen, atau perbaiki PC/perangkat yang "
            "rusak; warga mungkin sedang dialihkan ke kecamatan lain."
            if ident
            else "The agent has never reported: install/start it, or repair the broken PC or "
            "kit; residents may be being sent to another kecamatan."
        )
    if code in ("offline", "stale"):
        return (
            "PC mati, agen berhenti, atau jaringan putus: hubungi operator di kecamatan."
            if ident
            else "The PC is off, the agent stopped, or the network is down: call the operator."
        )
    if code == "cert_expiring":
        return (
            "Login masih berjalan; minta pengelola server memperbarui sertifikat sebelum "
            "kedaluwarsa."
            if ident
            else "Login still works; ask the server admins to renew the certificate before it "
            "expires."
        )
    return "Hubungi teknisi TI." if ident else "Call IT."


def as_json(p: Problem, now: float) -> dict[str, object]:
    """One problem for ``/api/stations``."""
    return {
        "code": p.code,
        "subject": p.subject,
        "severity": p.severity,
        "since": p.since or None,
        "reason": p.reason,
        "cause": p.cause or None,
        "status_code": p.status_code,
        "summary_id": text(p, "id"),
        "summary_en": text(p, "en"),
        "text_id": text(p, "id", now),
        "text_en": text(p, "en", now),
        "hint_id": hint(p, "id"),
        "hint_en": hint(p, "en"),
    }
