"""Every alert, defined once as data; rendered by :mod:`pantau.dashboards.prometheus_rules` and
:mod:`pantau.dashboards.grafana_alerting`.

An alert is a *value query* (PromQL returning one series per station/device/target), a comparison
(``<`` or ``>``) with a threshold, a ``for`` duration, a severity and static routing labels, and
texts in Bahasa Indonesia and English. The split into query + comparison is what lets one
definition become both a Prometheus rule (``(query) < 1``) and a Grafana rule (query A, reduce B,
threshold C), so the value shown in a notification is the same in both.

Texts use named placeholders, rendered into Go templates (Prometheus and Grafana share the
syntax) or, for the promtool test expectations, into concrete strings:

``{station} {provinsi} {kabkota} {kecamatan} {device_class} {target} {mount} {instance} {job}``
    the series' label
``{Device_id} {device_id} {Device_en} {device_en}``
    the device class's name (capitalised or not) in Bahasa Indonesia / English
``{value}``  the value, rounded to a whole number; ``{value_pct}`` the value as a percentage
``{for_id} {for_en}``
    the rule's ``for`` in words ("10 menit" / "10 minutes"), from the ``for`` actually rendered
    (a shortened ``for`` in tests and the demo says so): a text never claims a duration its
    ``for`` does not hold. Other durations in a text must be the query's own range.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from pantau.contract.vocabulary import PeripheralReason
from pantau.dashboards import DashboardsError
from pantau.dashboards import metrics as m

Severity = Literal["critical", "warning"]
Op = Literal["<", ">"]

_PLACEHOLDER_RE: Final = re.compile(r"\{(\w+)\}")
_LABEL_PLACEHOLDERS: Final = frozenset(
    {
        *m.STATION_LABELS,
        "device_class",
        "target",
        "mount",
        "instance",
        "job",
        "reason",
        "cause",
        "status",
        "problem",
        "subject",
    }
)
_DEVICE_PLACEHOLDERS: Final = frozenset({"Device_id", "device_id", "Device_en", "device_en"})
_VALUE_PLACEHOLDERS: Final = frozenset({"value", "value_pct"})
PLACEHOLDERS: Final = _LABEL_PLACEHOLDERS | _DEVICE_PLACEHOLDERS | _VALUE_PLACEHOLDERS


@dataclass(frozen=True)
class Expect:
    """One alert expected to fire in a promtool case: its series labels and value."""

    labels: Mapping[str, str]
    value: float = 0.0


@dataclass(frozen=True)
class Case:
    """A promtool unit-test scenario: input series (at ``interval``) and what fires when.

    ``checks`` are ``(eval_time, expected firing alerts)``; an empty tuple means nothing fires
    (before the fault, while pending, after it resolves).
    """

    series: tuple[tuple[str, str], ...]
    checks: tuple[tuple[str, tuple[Expect, ...]], ...]
    interval: str = "1m"


@dataclass(frozen=True)
class Alert:
    name: str
    group: Literal["stations", "collector"]
    query: str
    op: Op
    threshold: float
    for_: str
    severity: Severity
    summary_id: str
    description_id: str
    summary_en: str
    description_en: str
    case: Case
    #: Static labels beyond ``severity`` (``component``, ``hours``) used by routing.
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Dashboard and panel (by title) the notification links to (Grafana ``dashboardUid``).
    dashboard_uid: str = ""
    panel: str = ""

    @property
    def expr(self) -> str:
        """The Prometheus alerting expression."""
        return f"({self.query}) {self.op} {_num(self.threshold)}"

    def all_labels(self) -> dict[str, str]:
        return {**self.labels, "severity": self.severity}

    def texts(self, for_: str | None = None) -> dict[str, str]:
        """Annotation key -> text with placeholders (Bahasa Indonesia first: recipients' language).

        ``{for_id}``/``{for_en}`` become ``for_`` (default: the alert's own ``for``) in words.
        """
        words_id, words_en = for_words(self.for_ if for_ is None else for_)
        texts = {
            "summary": self.summary_id,
            "description": self.description_id,
            "summary_en": self.summary_en,
            "description_en": self.description_en,
        }
        return {
            k: v.replace("{for_id}", words_id).replace("{for_en}", words_en)
            for k, v in texts.items()
        }


_UNITS: Final = {
    "s": ("detik", "second"),
    "m": ("menit", "minute"),
    "h": ("jam", "hour"),
    "d": ("hari", "day"),
}
_FOR_RE: Final = re.compile(r"^(\d+)([smhd])$")


def for_words(duration: str) -> tuple[str, str]:
    """``10m`` -> (``10 menit``, ``10 minutes``); a Prometheus duration of one unit."""
    match = _FOR_RE.match(duration)
    if match is None:
        raise DashboardsError(f"for {duration!r}: use one unit (30s, 10m, 1h, 7d)")
    n, unit = int(match.group(1)), match.group(2)
    word_id, word_en = _UNITS[unit]
    return f"{n} {word_id}", f"{n} {word_en}{'' if n == 1 else 's'}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


# --------------------------------------------------------------------------- text rendering


def _device_template(lang: int, capital: bool) -> str:
    branches = []
    for i, (cls, names) in enumerate(m.DEVICE_NAMES.items()):
        name = names[lang][0].upper() + names[lang][1:] if capital else names[lang]
        branches.append(
            f'{{{{ {"if" if i == 0 else "else if"} eq $labels.device_class "{cls}" }}}}{name}'
        )
    fallback = (
        ("Perangkat" if capital else "perangkat")
        if lang == 0
        else ("Device" if capital else "device")
    )
    return (
        "".join(branches) + f"{{{{ else }}}}{fallback} {{{{ $labels.device_class }}}}{{{{ end }}}}"
    )


def go_template(text: str, value_ref: str) -> str:
    """Render placeholders as a Go template; ``value_ref`` is ``$value`` (Prometheus) or e.g.
    ``$values.B.Value`` (Grafana)."""

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in _LABEL_PLACEHOLDERS:
            return f"{{{{ $labels.{key} }}}}"
        if key in _DEVICE_PLACEHOLDERS:
            return _device_template(0 if key.endswith("_id") else 1, key[0].isupper())
        if key == "value":
            return f'{{{{ printf "%.0f" {value_ref} }}}}'
        if key == "value_pct":
            return f"{{{{ humanizePercentage {value_ref} }}}}"
        raise DashboardsError(f"unknown placeholder {{{key}}}")

    return _PLACEHOLDER_RE.sub(sub, text)


def concrete_text(text: str, labels: Mapping[str, str], value: float) -> str:
    """Render placeholders with concrete values, as Go's templates above would."""

    def device(lang: int, capital: bool) -> str:
        cls = labels.get("device_class", "")
        if cls in m.DEVICE_NAMES:
            name = m.DEVICE_NAMES[cls][lang]
        else:
            name = ("perangkat " if lang == 0 else "device ") + cls
        return name[0].upper() + name[1:] if capital else name

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in _LABEL_PLACEHOLDERS:
            return labels.get(key, "")
        if key in _DEVICE_PLACEHOLDERS:
            return device(0 if key.endswith("_id") else 1, key[0].isupper())
        if key == "value":
            return f"{value:.0f}"
        if key == "value_pct":
            return f"{value * 100:.4g}%"
        raise DashboardsError(f"unknown placeholder {{{key}}}")

    return _PLACEHOLDER_RE.sub(sub, text)


# --------------------------------------------------------------------------- test fixtures


def station_series(metric: str, station: str, kecamatan: str, **extra: str) -> str:
    """A promtool input series of one Klaten station (provinsi 33, kabkota 3310)."""
    labels = {"station": station, "provinsi": "33", "kabkota": "3310", "kecamatan": kecamatan}
    labels.update(extra)
    return metric + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _st(station: str, kecamatan: str, **extra: str) -> dict[str, str]:
    return {
        "station": station,
        "provinsi": "33",
        "kabkota": "3310",
        "kecamatan": kecamatan,
        **extra,
    }


_JUW = ("3310-juwiring-01", "Juwiring")
_BAY = ("3310-bayat-01", "Bayat")
_CAW = ("3310-cawas-01", "Cawas")
_PED = ("3310-pedan-01", "Pedan")


# --------------------------------------------------------------------------- the alerts

#: The alert that fires while a collector cannot see (disconnected from the broker, or replaying).
BLIND_ALERT: Final = "PantauCollectorBlind"
#: While one of these fires, station alerts (``component="station"``) are held back by
#: Alertmanager's ``inhibit_rules`` (:func:`pantau.dashboards.routing.inhibit_rules`).
BLINDING_ALERTS: Final = (BLIND_ALERT, "PantauCollectorDown")
#: The labels of a collector's own series, by which a blind collector's station series are left
#: out of every station alert (:func:`_replicas`), in the Prometheus and the Grafana rules alike.
INHIBIT_EQUAL: Final = ("job", "instance")


def _replicas(how: Literal["max", "min"], query: str, *labels: str) -> str:
    """``query`` aggregated over collector replicas: one series per station (and ``labels``).

    Several collectors may serve the same stations at once (docs/scale.md); each exports every
    station, so a station alert without this fires once per replica. ``how`` picks the replica
    that is *least* alarming (``max`` where a low value alarms, ``min`` where a high one does):
    a station is reported only when every live replica agrees, so a replica that is behind (just
    restarted, rebuilding from retained messages) or dead never pages a station on its own.

    The series of a replica that is blind (``pantau_collector_blind``: disconnected from the
    broker, or replaying) are left out before aggregating: a collector that cannot see never
    decides a station's fate; the replicas that can see still do.
    """
    seeing = f"({query}) unless on({', '.join(INHIBIT_EQUAL)}) ({m.COLLECTOR_BLIND} == 1)"
    return f"{how} by ({', '.join((*m.STATION_LABELS, *labels))}) ({seeing})"


StationHours = {"component": "station", "hours": "office"}
StationAlways = {"component": "station", "hours": "always"}
CollectorAlways = {"component": "collector", "hours": "always"}


def _peripheral_missing() -> Alert:
    s = station_series
    return Alert(
        name="PantauPeripheralMissing",
        group="stations",
        # a device on USB whose driver failed is PantauPeripheralDriverFailed, not this
        query=_replicas(
            "max",
            f"{m.PERIPHERAL_PRESENT} and on(station) {m.STATION_UP} == 1"
            f" unless on(station, device_class) {_DRIVER_FAILED}",
            "device_class",
        ),
        op="<",
        threshold=1,
        for_="2m",
        severity="critical",
        labels=StationHours,
        dashboard_uid="pantau-station",
        panel="Perangkat dari waktu ke waktu / Peripheral presence over time",
        summary_id="{Device_id} tidak terdeteksi di Kecamatan {kecamatan} (stasiun {station})",
        description_id=(
            "{Device_id} di stasiun perekaman {station}, Kecamatan {kecamatan}, kabupaten/kota "
            "{kabkota}, tidak terhubung lewat USB. Perekaman e-KTP tidak bisa dilakukan. Periksa "
            "kabel USB dan daya perangkat (kamera yang dimatikan juga hilang dari USB)."
        ),
        summary_en="{Device_en} not detected in Kecamatan {kecamatan} (station {station})",
        description_en=(
            "The {device_en} of recording station {station}, Kecamatan {kecamatan}, kabupaten/kota "
            "{kabkota}, is not connected over USB. e-KTP recording is not possible. Check the USB "
            "cable and the device's power (a camera that is switched off also leaves USB)."
        ),
        case=Case(
            series=(
                (s(m.STATION_UP, *_JUW), "1x40"),
                (s(m.PERIPHERAL_PRESENT, *_JUW, device_class="fingerprint"), "1x10 0x10 1x20"),
                (s(m.PERIPHERAL_PRESENT, *_JUW, device_class="camera"), "1x40"),
                # the signature pad's driver failed: the other alert, not this one
                (s(m.PERIPHERAL_PRESENT, *_JUW, device_class="signature"), "1x10 0x10 1x20"),
                (_driver_failed_series(*_JUW, "signature"), "_x10 1x10 _x20"),
                # Bayat is offline: its stale "missing" must not page twice (StationOffline does).
                (s(m.STATION_UP, *_BAY), "0x40"),
                (s(m.PERIPHERAL_PRESENT, *_BAY, device_class="iris"), "0x40"),
            ),
            checks=(
                ("5m", ()),
                ("11m", ()),
                ("15m", (Expect(_st(*_JUW, device_class="fingerprint"), 0),)),
                ("25m", ()),
            ),
        ),
    )


_DRIVER_FAILED = f'{m.PERIPHERAL_PROBLEM}{{reason="{PeripheralReason.DRIVER_FAILED}"}}'


def _driver_failed_series(station: str, kecamatan: str, device_class: str) -> str:
    return station_series(
        m.PERIPHERAL_PROBLEM,
        station,
        kecamatan,
        device_class=device_class,
        reason=PeripheralReason.DRIVER_FAILED,
    )


def _peripheral_driver_failed() -> Alert:
    s = station_series
    return Alert(
        name="PantauPeripheralDriverFailed",
        group="stations",
        # 1 where the driver failed, 0 for every other reported class (the value query shows
        # the healthy ones too, as the other station alerts do)
        query=_replicas(
            "max",
            f"(max by ({', '.join((*m.STATION_LABELS, 'device_class'))}) ({_DRIVER_FAILED})"
            f" or {m.PERIPHERAL_PRESENT} * 0) and on(station) {m.STATION_UP} == 1",
            "device_class",
        ),
        op=">",
        threshold=0,
        for_="2m",
        severity="critical",
        labels=StationHours,
        dashboard_uid="pantau-station",
        panel="Perangkat dari waktu ke waktu / Peripheral presence over time",
        summary_id=(
            "{Device_id} terpasang tetapi drivernya gagal di Kecamatan {kecamatan} "
            "(stasiun {station})"
        ),
        description_id=(
            "{Device_id} di stasiun perekaman {station}, Kecamatan {kecamatan}, kabupaten/kota "
            "{kabkota}, terdeteksi di USB tetapi drivernya gagal (Device Manager menunjukkan kode "
            "masalah, mis. 10 atau 43). Perekaman e-KTP tidak bisa dilakukan. Cabut lalu colok "
            "lagi perangkat dan nyalakan ulang PC; bila tetap gagal, pasang ulang drivernya."
        ),
        summary_en=(
            "{Device_en} present but its driver failed in Kecamatan {kecamatan} (station {station})"
        ),
        description_en=(
            "The {device_en} of recording station {station}, Kecamatan {kecamatan}, kabupaten/kota "
            "{kabkota}, is on USB but its driver failed (Device Manager shows a problem code, e.g. "
            "10 or 43). e-KTP recording is not possible. Unplug and replug the device and restart "
            "the PC; if it still fails, reinstall its driver."
        ),
        case=Case(
            series=(
                (s(m.STATION_UP, *_JUW), "1x40"),
                (s(m.PERIPHERAL_PRESENT, *_JUW, device_class="signature"), "1x10 0x10 1x20"),
                (_driver_failed_series(*_JUW, "signature"), "_x10 1x10 _x20"),
                # a missing camera is the other alert
                (s(m.PERIPHERAL_PRESENT, *_JUW, device_class="camera"), "0x40"),
                (s(m.PERIPHERAL_PROBLEM, *_JUW, device_class="camera", reason="missing"), "1x40"),
                # Bayat is offline: StationOffline pages, not this
                (s(m.STATION_UP, *_BAY), "0x40"),
                (_driver_failed_series(*_BAY, "fingerprint"), "1x40"),
            ),
            checks=(
                ("5m", ()),
                ("11m", ()),
                (
                    "15m",
                    (Expect(_st(*_JUW, device_class="signature"), 1),),
                ),
                ("27m", ()),  # a vanished series counts for the 5 min lookback in promtool
            ),
        ),
    )


def _login_case(cause: str, status: str = "", reason: str = "http_status") -> Case:
    """Bayat's login fails with ``cause`` from minute 11 to 41; Juwiring's is fine; Cawas' probe
    fails for another cause (must not fire this alert); Pedan fails while offline (the offline
    alert covers it)."""
    s = station_series
    other = "network" if cause != "network" else "denied"
    info = m.LOGIN_PROBE_INFO
    ok = {"target": "enrollment", "reason": "ok", "cause": "ok"}
    bad = {"target": "enrollment", "reason": reason, "cause": cause}
    if status:  # an empty label value is no label at all
        bad["status"] = status
    return Case(
        series=(
            (s(m.STATION_UP, *_BAY), "1x60"),
            (s(info, *_BAY, **ok), "1x10 _x30 1x20"),
            (s(info, *_BAY, **bad), "_x10 1x30 _x20"),
            (s(m.STATION_UP, *_JUW), "1x60"),
            (s(info, *_JUW, **ok), "1x60"),
            (s(m.STATION_UP, *_CAW), "1x60"),
            (s(info, *_CAW, **{**bad, "cause": other}), "1x60"),
            (s(m.STATION_UP, *_PED), "0x60"),
            (s(info, *_PED, **bad), "1x60"),
        ),
        checks=(
            ("5m", ()),
            ("12m", ()),
            ("35m", (Expect(_st(*_BAY, **bad), 1),)),
            ("55m", ()),
        ),
    )


def _login_alert(
    name: str,
    cause: str,
    *,
    for_: str,
    severity: Severity,
    summary_id: str,
    description_id: str,
    summary_en: str,
    description_en: str,
    case: Case,
) -> Alert:
    """One alert per login cause: each sends someone else to do something else."""
    return Alert(
        name=name,
        group="stations",
        query=_replicas(
            "max",
            f'{m.LOGIN_PROBE_INFO}{{cause="{cause}"}} and on(station) {m.STATION_UP} == 1',
            "target",
            "reason",
            "cause",
            "status",
        ),
        op=">",
        threshold=0,
        for_=for_,
        severity=severity,
        labels=StationHours,
        dashboard_uid="pantau-station",
        panel="Login",
        summary_id=summary_id,
        description_id=description_id,
        summary_en=summary_en,
        description_en=description_en,
        case=case,
    )


def _login_unreachable() -> Alert:
    return _login_alert(
        "PantauLoginUnreachable",
        "network",
        for_="10m",
        severity="critical",
        summary_id="Layanan login {target} tidak terjangkau dari Kecamatan {kecamatan} (stasiun {station})",
        description_id=(
            "Stasiun perekaman {station} di Kecamatan {kecamatan} ({kabkota}) tidak dapat "
            "menghubungi layanan login {target} selama lebih dari {for_id} ({reason}): masalah "
            "jaringan. Operator tidak bisa login ke aplikasi ENROLLMENT KTP-el. Periksa kabel "
            "jaringan, modem dan VPN ke server regional."
        ),
        summary_en="Login service {target} unreachable from Kecamatan {kecamatan} (station {station})",
        description_en=(
            "Recording station {station} in Kecamatan {kecamatan} ({kabkota}) has not reached the "
            "login service {target} for more than {for_en} ({reason}): a network problem. "
            "Operators cannot log in to the enrollment application. Check the network cable, "
            "the modem and the VPN to the regional server."
        ),
        case=_login_case("network", reason="timeout"),
    )


def _login_refused() -> Alert:
    return _login_alert(
        "PantauLoginRefused",
        "denied",
        for_="5m",
        severity="critical",
        summary_id="Layanan login {target} menolak stasiun {station} di Kecamatan {kecamatan} (HTTP {status})",
        description_id=(
            "Layanan login {target} menjawab stasiun perekaman {station} (Kecamatan {kecamatan}, "
            "{kabkota}) dengan HTTP {status} selama lebih dari {for_id}. Ini bukan masalah "
            "jaringan: akun atau kredensial stasiun ditolak (terkunci, kata sandi salah, atau "
            "belum didaftarkan ulang setelah instal ulang PC). Hubungi admin layanan login untuk "
            "membuka atau mendaftarkan ulang akun stasiun."
        ),
        summary_en="Login service {target} refuses station {station} in Kecamatan {kecamatan} (HTTP {status})",
        description_en=(
            "The login service {target} has answered recording station {station} (Kecamatan "
            "{kecamatan}, {kabkota}) with HTTP {status} for more than {for_en}. This is not a "
            "network fault: the station's account or credentials are refused (locked, wrong "
            "password, or not re-registered after a reinstall of the PC). Ask the login "
            "service's admins to unlock or re-register the station's account."
        ),
        case=_login_case("denied", status="403"),
    )


def _login_tls() -> Alert:
    return _login_alert(
        "PantauLoginTlsProblem",
        "tls",
        for_="10m",
        severity="critical",
        summary_id="Sertifikat/TLS layanan login {target} bermasalah di Kecamatan {kecamatan} (stasiun {station}: {reason})",
        description_id=(
            "Stasiun perekaman {station} di Kecamatan {kecamatan} ({kabkota}) tidak bisa membuat "
            "koneksi aman ke layanan login {target} selama lebih dari {for_id} ({reason}: "
            "kedaluwarsa, tidak dipercaya, atau nama salah). Periksa tanggal dan jam PC; jika "
            "benar, pengelola server harus memperbaiki sertifikat."
        ),
        summary_en="TLS problem with login service {target} in Kecamatan {kecamatan} (station {station}: {reason})",
        description_en=(
            "Recording station {station} in Kecamatan {kecamatan} ({kabkota}) has not been able "
            "to open a secure connection to the login service {target} for more than {for_en} "
            "({reason}: expired, untrusted or wrong name). Check the PC's date and time; if "
            "right, the server's admins must fix the certificate."
        ),
        case=_login_case("tls", reason="cert_expired"),
    )


def _login_service_error() -> Alert:
    return _login_alert(
        "PantauLoginServiceError",
        "service_error",
        for_="10m",
        severity="critical",
        summary_id="Layanan login {target} error (HTTP {status}) untuk stasiun {station} di Kecamatan {kecamatan}",
        description_id=(
            "Layanan login {target} menjawab stasiun perekaman {station} (Kecamatan {kecamatan}, "
            "{kabkota}) dengan error server HTTP {status} selama lebih dari {for_id}. Gangguan di "
            "sisi server, bukan di stasiun: laporkan ke pengelola layanan login."
        ),
        summary_en="Login service {target} fails (HTTP {status}) for station {station} in Kecamatan {kecamatan}",
        description_en=(
            "The login service {target} has answered recording station {station} (Kecamatan "
            "{kecamatan}, {kabkota}) with server error HTTP {status} for more than {for_en}. The "
            "fault is on the server side, not at the station: report it to the login service's "
            "operators."
        ),
        case=_login_case("service_error", status="503"),
    )


def _login_unexpected() -> Alert:
    return _login_alert(
        "PantauLoginUnexpectedAnswer",
        "unexpected",
        for_="15m",
        severity="warning",
        summary_id="Layanan login {target} menjawab tidak terduga ke stasiun {station} di Kecamatan {kecamatan} ({reason} {status})",
        description_id=(
            "Layanan login {target} memberi jawaban yang tidak diharapkan ke stasiun perekaman "
            "{station} (Kecamatan {kecamatan}, {kabkota}) selama lebih dari {for_id} ({reason} "
            "{status}). Periksa alamat dan pengaturan probe login (expect_status), atau hubungi "
            "teknisi TI."
        ),
        summary_en="Login service {target} gives station {station} in Kecamatan {kecamatan} an unexpected answer ({reason} {status})",
        description_en=(
            "The login service {target} has given recording station {station} (Kecamatan "
            "{kecamatan}, {kabkota}) an unexpected answer for more than {for_en} ({reason} "
            "{status}). Check the login probe's address and settings (expect_status), or call IT."
        ),
        case=_login_case("unexpected", status="404"),
    )


def _login_cert_expiring() -> Alert:
    s = station_series
    day = 86400
    return Alert(
        name="PantauLoginCertExpiring",
        group="stations",
        query=_replicas("max", f"({m.LOGIN_CERT_EXPIRY} - time()) / 86400", "target"),
        op="<",
        threshold=14,
        for_="1h",
        severity="warning",
        labels=StationAlways,
        dashboard_uid="pantau-station",
        panel="Login",
        summary_id="Sertifikat layanan login {target} kedaluwarsa dalam {value} hari (dilihat dari stasiun {station}, Kecamatan {kecamatan})",
        description_id=(
            "Sertifikat TLS layanan login {target}, seperti dilihat stasiun {station} (Kecamatan "
            "{kecamatan}), kedaluwarsa dalam {value} hari. Login masih berjalan; minta pengelola "
            "server memperbaruinya sebelum semua stasiun tidak bisa login."
        ),
        summary_en="Certificate of login service {target} expires in {value} days (seen from station {station}, Kecamatan {kecamatan})",
        description_en=(
            "The TLS certificate of the login service {target}, as seen by station {station} "
            "(Kecamatan {kecamatan}), expires in {value} days. Login still works; ask the server's "
            "admins to renew it before every station is locked out."
        ),
        case=Case(
            series=(
                # (promtool's clock starts at 0.) Bayat's certificate expires at day 13: less
                # than 14 days left from the start; renewed (expiry day 400) after 2 hours.
                (s(m.LOGIN_CERT_EXPIRY, *_BAY, target="portal"), f"{13 * day}x120 {400 * day}x120"),
                (s(m.LOGIN_CERT_EXPIRY, *_JUW, target="portal"), f"{400 * day}x240"),
            ),
            checks=(
                ("30m", ()),  # pending: the for is 1 h
                ("90m", (Expect(_st(*_BAY, target="portal"), 12.9375),)),
                ("3h", ()),
            ),
        ),
    )


def _peripheral_not_configured() -> Alert:
    s = station_series
    return Alert(
        name="PantauPeripheralNotConfigured",
        group="stations",
        query=_replicas(
            "max", f"{m.PERIPHERAL_CONFIGURED} and on(station) {m.STATION_UP} == 1", "device_class"
        ),
        op="<",
        threshold=1,
        for_="15m",
        severity="warning",
        labels=StationHours,
        dashboard_uid="pantau-station",
        panel="Perangkat dari waktu ke waktu / Peripheral presence over time",
        summary_id="{Device_id} belum dikonfigurasi di stasiun {station} (Kecamatan {kecamatan})",
        description_id=(
            "Inventaris mengharapkan {device_id} di stasiun perekaman {station}, Kecamatan "
            "{kecamatan} ({kabkota}), tetapi konfigurasi agen tidak punya aturan [[devices]] "
            "untuknya, jadi tidak ada yang memeriksanya. Masalah konfigurasi, bukan perangkat "
            "hilang: tambahkan aturan di agent.toml stasiun (atau di template `pantau provision`)."
        ),
        summary_en="{Device_en} not configured at station {station} (Kecamatan {kecamatan})",
        description_en=(
            "The inventory expects a {device_en} at recording station {station}, Kecamatan "
            "{kecamatan} ({kabkota}), but the agent's config has no [[devices]] rule for it, so "
            "nothing looks for it. A configuration problem, not a missing device: add the rule "
            "to the station's agent.toml (or the `pantau provision` template)."
        ),
        case=Case(
            series=(
                (s(m.STATION_UP, *_JUW), "1x60"),
                (s(m.PERIPHERAL_CONFIGURED, *_JUW, device_class="iris"), "0x30 1x30"),
                (s(m.PERIPHERAL_CONFIGURED, *_JUW, device_class="camera"), "1x60"),
                (s(m.STATION_UP, *_BAY), "0x60"),
                (s(m.PERIPHERAL_CONFIGURED, *_BAY, device_class="iris"), "0x60"),
            ),
            checks=(
                ("10m", ()),
                ("20m", (Expect(_st(*_JUW, device_class="iris"), 0),)),
                ("45m", ()),
            ),
        ),
    )


def _broken_long() -> Alert:
    s = station_series
    day = 86400
    since = m.STATION_PROBLEM_SINCE
    return Alert(
        name="PantauStationBrokenLong",
        group="stations",
        query=_replicas(
            "min", f'(time() - {since}{{problem!="cert_expiring"}}) / 86400', "problem", "subject"
        ),
        op=">",
        threshold=7,
        for_="10m",
        severity="critical",
        labels=StationAlways,
        dashboard_uid="pantau-fleet",
        panel="Rusak paling lama / Broken longest",
        summary_id="Stasiun {station} di Kecamatan {kecamatan} bermasalah ({problem} {subject}) sejak {value} hari",
        description_id=(
            "Stasiun perekaman {station} di Kecamatan {kecamatan} ({kabkota}) bermasalah "
            "({problem} {subject}) sejak {value} hari dan belum diperbaiki. Warga mungkin "
            "dialihkan ke kecamatan lain: tetapkan penanggung jawab dan tenggat perbaikan."
        ),
        summary_en="Station {station} in Kecamatan {kecamatan} broken ({problem} {subject}) for {value} days",
        description_en=(
            "Recording station {station} in Kecamatan {kecamatan} ({kabkota}) has had a problem "
            "({problem} {subject}) for {value} days and it is not fixed. Residents may be sent to "
            "other kecamatan: name an owner and a deadline for the repair."
        ),
        case=Case(
            series=(
                # (promtool's clock starts at 0.) Cawas has never reported for 8 days (since -8 d);
                # its kit is repaired and it reports after 40 minutes.
                (s(since, *_CAW, problem="never_reported", subject=""), f"{-8 * day}x40"),
                # Juwiring's camera has been missing for 6 days: not yet a week.
                (s(since, *_JUW, problem="peripheral_missing", subject="camera"), f"{-6 * day}x60"),
                # A certificate warning never counts as broken.
                (s(since, *_BAY, problem="cert_expiring", subject="portal"), f"{-30 * day}x60"),
            ),
            checks=(
                ("5m", ()),  # pending: the for is 10 min
                ("20m", (Expect(_st(*_CAW, problem="never_reported"), 8.0138889),)),
                ("50m", ()),
            ),
        ),
    )


def _station_offline() -> Alert:
    s = station_series
    return Alert(
        name="PantauStationOffline",
        group="stations",
        query=_replicas("max", f"{m.STATION_UP} and on(station) {m.STATION_LAST_REPORT} > 0"),
        op="<",
        threshold=1,
        for_="5m",
        severity="critical",
        labels=StationHours,
        dashboard_uid="pantau-station",
        panel="Online",
        summary_id="Stasiun perekaman {station} di Kecamatan {kecamatan} offline",
        description_id=(
            "Stasiun perekaman {station} di Kecamatan {kecamatan} ({kabkota}) tidak melapor "
            "selama lebih dari {for_id}: PC mati, agen berhenti, atau jaringan putus."
        ),
        summary_en="Recording station {station} in Kecamatan {kecamatan} is offline",
        description_en=(
            "Recording station {station} in Kecamatan {kecamatan} ({kabkota}) has not reported "
            "for more than {for_en}: the PC is off, the agent stopped, or the network is down."
        ),
        case=Case(
            series=(
                (s(m.STATION_UP, *_CAW), "1x10 0x20 1x20"),
                (s(m.STATION_LAST_REPORT, *_CAW), "1000+60x10 1600x20 1660+60x20"),
                # a second collector replica agrees, and is dead from minute 16 to 21: one alert
                (s(m.STATION_UP, *_CAW, instance="collector-2:9108"), "1x10 0x5 _x5 0x9 1x20"),
                (s(m.STATION_UP, *_JUW), "1x50"),
                (s(m.STATION_LAST_REPORT, *_JUW), "1000+60x50"),
                # Juwiring's second replica is dead, then restarts and says 0 until it has the
                # retained state again: the live replica's 1 wins, no page
                (s(m.STATION_UP, *_JUW, instance="collector-2:9108"), "1x10 _x10 0x15 1x15"),
                (s(m.STATION_LAST_REPORT, *_JUW, instance="collector-2:9108"), "1000+60x50"),
                # Never reported: no last-report series; that is PantauStationNeverReported.
                (s(m.STATION_UP, *_PED), "0x50"),
            ),
            checks=(
                ("5m", ()),
                ("13m", ()),
                ("20m", (Expect(_st(*_CAW), 0),)),
                ("35m", ()),
            ),
        ),
    )


def _never_reported() -> Alert:
    s = station_series
    return Alert(
        name="PantauStationNeverReported",
        group="stations",
        query=_replicas(
            "max",
            f'{m.STATION_UP} and on(station) {m.STATION_INFO}{{inventory="yes"}} '
            f"unless on(station) {m.STATION_LAST_REPORT} > 0",
        ),
        op="<",
        threshold=1,
        for_="15m",
        severity="critical",  # as severe as a missing camera: it may have been broken for years
        labels=StationHours,
        dashboard_uid="pantau-fleet",
        panel="Belum pernah melapor / Never reported (inventaris / inventory)",
        summary_id="Stasiun {station} di Kecamatan {kecamatan} terdaftar di inventaris tetapi belum pernah melapor",
        description_id=(
            "Stasiun perekaman {station} (Kecamatan {kecamatan}, {kabkota}) ada di inventaris "
            "tetapi agen pantau belum pernah melapor. Pasang/aktifkan agen, atau perbaiki "
            "perangkat yang rusak."
        ),
        summary_en="Station {station} in Kecamatan {kecamatan} is in the inventory but never reported",
        description_en=(
            "Recording station {station} (Kecamatan {kecamatan}, {kabkota}) is in the inventory "
            "but its pantau agent has never reported. Install/start the agent, or repair the "
            "broken equipment."
        ),
        case=Case(
            series=(
                # Cawas' broken kit is repaired and its agent reports from minute 35.
                (s(m.STATION_UP, *_CAW), "0x35 1x5"),
                (s(m.STATION_INFO, *_CAW, agent_version="", os="", inventory="yes"), "1x40"),
                (s(m.STATION_LAST_REPORT, *_CAW), "_x35 3500+60x5"),
                # Pedan's agent starts at minute 25: from then on it has reported.
                (s(m.STATION_UP, *_PED), "0x25 1x15"),
                (
                    s(m.STATION_INFO, *_PED, agent_version="0.1.0", os="linux", inventory="yes"),
                    "1x40",
                ),
                (s(m.STATION_LAST_REPORT, *_PED), "_x25 2500+60x15"),
                # Juwiring reported and is merely offline now: that is PantauStationOffline.
                (s(m.STATION_UP, *_JUW), "0x40"),
                (
                    s(m.STATION_INFO, *_JUW, agent_version="0.1.0", os="linux", inventory="yes"),
                    "1x40",
                ),
                (s(m.STATION_LAST_REPORT, *_JUW), "1000x40"),
            ),
            checks=(
                ("10m", ()),
                ("20m", (Expect(_st(*_CAW), 0), Expect(_st(*_PED), 0))),
                ("30m", (Expect(_st(*_CAW), 0),)),
                ("38m", ()),
            ),
        ),
    )


def _repeated_reboots() -> Alert:
    s = station_series
    return Alert(
        name="PantauRepeatedReboots",
        group="stations",
        query=_replicas("max", f"changes({m.HOST_BOOT}[1h])"),
        op=">",
        threshold=2,
        for_="0s",
        severity="warning",
        labels=StationAlways,
        dashboard_uid="pantau-station",
        panel="Nyala ulang 24 jam / Reboots in 24 h",
        summary_id="PC stasiun {station} di Kecamatan {kecamatan} menyala ulang {value} kali dalam 1 jam",
        description_id=(
            "PC stasiun perekaman {station} di Kecamatan {kecamatan} ({kabkota}) menyala ulang "
            "{value} kali dalam satu jam terakhir. Kemungkinan gangguan listrik atau sambaran "
            "petir: periksa UPS, grounding dan stabilizer."
        ),
        summary_en="PC of station {station} in Kecamatan {kecamatan} rebooted {value} times in 1 hour",
        description_en=(
            "The PC of recording station {station} in Kecamatan {kecamatan} ({kabkota}) rebooted "
            "{value} times in the last hour. Likely power trouble or a lightning strike: check "
            "the UPS, grounding and stabiliser."
        ),
        case=Case(
            series=(
                (s(m.HOST_BOOT, *_JUW), "1000x10 2000 3000 4000 4000x80"),
                (s(m.HOST_BOOT, *_CAW), "1000x20 5000x73"),
            ),
            checks=(
                ("5m", ()),
                ("12m", ()),
                ("20m", (Expect(_st(*_JUW), 3),)),
                ("80m", ()),
            ),
        ),
    )


def _disk_almost_full() -> Alert:
    s = station_series
    return Alert(
        name="PantauDiskAlmostFull",
        group="stations",
        query=_replicas("max", f"{m.HOST_DISK_FREE} / {m.HOST_DISK_SIZE}", "mount"),
        op="<",
        threshold=0.1,
        for_="15m",
        severity="warning",
        labels=StationAlways,
        dashboard_uid="pantau-station",
        panel="Disk kosong / Disk free",
        summary_id="Disk {mount} stasiun {station} di Kecamatan {kecamatan} hampir penuh (sisa {value_pct})",
        description_id=(
            "Ruang kosong disk {mount} di stasiun perekaman {station}, Kecamatan {kecamatan} "
            "({kabkota}) tinggal {value_pct}. Data rekaman yang belum terkirim bisa gagal "
            "disimpan."
        ),
        summary_en="Disk {mount} of station {station} in Kecamatan {kecamatan} almost full ({value_pct} free)",
        description_en=(
            "Only {value_pct} of disk {mount} is free on recording station {station}, Kecamatan "
            "{kecamatan} ({kabkota}). Recordings not yet sent may fail to be stored."
        ),
        case=Case(
            series=(
                (s(m.HOST_DISK_FREE, *_JUW, mount="C:"), "300x10 50x30 300x20"),
                (s(m.HOST_DISK_SIZE, *_JUW, mount="C:"), "1000x60"),
                (s(m.HOST_DISK_FREE, *_BAY, mount="/"), "900x60"),
                (s(m.HOST_DISK_SIZE, *_BAY, mount="/"), "1000x60"),
            ),
            checks=(
                ("5m", ()),
                ("20m", ()),
                ("30m", (Expect(_st(*_JUW, mount="C:"), 0.05),)),
                ("45m", ()),
            ),
        ),
    )


def _clock_skew() -> Alert:
    s = station_series
    return Alert(
        name="PantauClockSkew",
        group="stations",
        query=_replicas("min", f"abs({m.HOST_CLOCK_SKEW})"),
        op=">",
        threshold=300,
        for_="15m",
        severity="warning",
        labels=StationAlways,
        dashboard_uid="pantau-station",
        panel="Selisih jam / Clock skew",
        summary_id="Jam PC stasiun {station} di Kecamatan {kecamatan} meleset {value} detik",
        description_id=(
            "Jam PC stasiun perekaman {station} di Kecamatan {kecamatan} ({kabkota}) berbeda "
            "{value} detik dari server. Baterai CMOS mungkin habis (setelah lonjakan listrik); "
            "login dan sertifikat bisa gagal. Setel jam dan sinkronisasi waktu (NTP)."
        ),
        summary_en="Clock of station {station} in Kecamatan {kecamatan} is off by {value} seconds",
        description_en=(
            "The PC clock of recording station {station} in Kecamatan {kecamatan} ({kabkota}) "
            "differs from the server by {value} seconds. The CMOS battery may be dead (after a "
            "power surge); logins and certificates can fail. Set the clock and enable time sync."
        ),
        case=Case(
            series=(
                (s(m.HOST_CLOCK_SKEW, *_CAW), "0x10 -3600x30 0x20"),
                (s(m.HOST_CLOCK_SKEW, *_JUW), "2x60"),
            ),
            checks=(
                ("5m", ()),
                ("20m", ()),
                ("30m", (Expect(_st(*_CAW), 3600),)),
                ("45m", ()),
            ),
        ),
    )


def _collector_down() -> Alert:
    inst = {"job": m.COLLECTOR_JOB, "instance": "collector-1:9108"}
    up = f'up{{job="{m.COLLECTOR_JOB}",instance="collector-1:9108"}}'
    other = 'up{job="node",instance="host:9100"}'
    return Alert(
        name="PantauCollectorDown",
        group="collector",
        query=f'up{{job="{m.COLLECTOR_JOB}"}}',
        op="<",
        threshold=1,
        for_="2m",
        severity="critical",
        labels=CollectorAlways,
        dashboard_uid="pantau-collector",
        panel="Scrape collector (up)",
        summary_id="Collector pantau {instance} tidak bisa di-scrape",
        description_id=(
            "Prometheus tidak bisa mengambil metrik dari collector pantau {instance} selama lebih "
            "dari {for_id}. Status seluruh stasiun tidak terlihat."
        ),
        summary_en="pantau collector {instance} cannot be scraped",
        description_en=(
            "Prometheus has not scraped the pantau collector {instance} for more than {for_en}. "
            "No station's state is visible."
        ),
        case=Case(
            series=((up, "1x5 0x10 1x10"), (other, "0x25")),
            checks=(("3m", ()), ("6m", ()), ("10m", (Expect(inst, 0),)), ("20m", ())),
        ),
    )


def _collector_blind() -> Alert:
    inst = {"job": m.COLLECTOR_JOB, "instance": "collector-1:9108"}
    series = f'{m.COLLECTOR_BLIND}{{job="{m.COLLECTOR_JOB}",instance="collector-1:9108"}}'
    return Alert(
        name=BLIND_ALERT,
        group="collector",
        query=m.COLLECTOR_BLIND,
        op=">",
        threshold=0,
        for_="2m",
        severity="critical",
        labels=CollectorAlways,
        dashboard_uid="pantau-collector",
        panel="MQTT terhubung / MQTT connected",
        summary_id="Collector pantau {instance} buta: status stasiun tidak terlihat",
        description_id=(
            "Collector pantau {instance} tidak bisa melihat stasiun selama lebih dari {for_id}: "
            "terputus dari broker MQTT (atau masih memutar ulang status tersimpan). Ini satu "
            "gangguan, bukan seluruh stasiun mati: peringatan per stasiun ditahan selama itu. "
            "Periksa broker (mosquitto/EMQX) dan jaringan ke collector."
        ),
        summary_en="pantau collector {instance} is blind: station status cannot be seen",
        description_en=(
            "The pantau collector {instance} has not been able to see the stations for more "
            "than {for_en}: it is disconnected from the MQTT broker (or still replaying retained "
            "state). This is one fault, not the whole fleet down: station alerts are held back "
            "meanwhile. Check the broker (mosquitto/EMQX) and the network to the collector."
        ),
        case=Case(
            series=(
                (series, "0x5 1x10 0x10"),
                (series.replace("collector-1", "collector-2"), "0x25"),
            ),
            checks=(("3m", ()), ("6m", ()), ("10m", (Expect(inst, 1),)), ("20m", ())),
        ),
    )


ALERT_FACTORIES: Final[tuple[Callable[[], Alert], ...]] = (
    _peripheral_missing,
    _peripheral_driver_failed,
    _peripheral_not_configured,
    _login_unreachable,
    _login_refused,
    _login_tls,
    _login_service_error,
    _login_unexpected,
    _login_cert_expiring,
    _station_offline,
    _never_reported,
    _broken_long,
    _repeated_reboots,
    _disk_almost_full,
    _clock_skew,
    _collector_down,
    _collector_blind,
)


def default_alerts() -> tuple[Alert, ...]:
    """The shipped alerts, in the order they appear in the generated files."""
    return tuple(factory() for factory in ALERT_FACTORIES)
