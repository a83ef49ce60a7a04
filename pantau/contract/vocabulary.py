"""The words every part of pantau shares: device classes and their names, reasons, limits.

One table per concept, imported everywhere (agent reports, collector labels, dashboard and alert
texts, the board, provisioning, the simulator); nothing here is repeated elsewhere. A new device
class name, probe reason or rejection reason is one edit here (plus its hint or text where one is
shown). The Klaten reference fleet is :mod:`pantau.contract.klaten`.

Standard library only, and no other pantau module: every layer may import it.
"""

from __future__ import annotations

import enum
from typing import Final, Literal

# --------------------------------------------------------------------------- device classes

#: Names of the usual device classes, lower case: (Bahasa Indonesia, English). Texts capitalise
#: the first letter where a sentence starts. Configured classes outside this table are allowed;
#: texts then use the raw class name (:func:`device_names`).
DEVICE_NAMES: Final[dict[str, tuple[str, str]]] = {
    "fingerprint": ("pemindai sidik jari", "fingerprint scanner"),
    "iris": ("pemindai iris", "iris scanner"),
    "camera": ("kamera", "camera"),
    "signature": ("alat tanda tangan (signature pad)", "signature pad"),
}
#: The kit of an e-KTP recording station, in display order (the collector's default, the
#: reference fleet's classes).
DEVICE_CLASSES: Final[tuple[str, ...]] = tuple(DEVICE_NAMES)
#: A device class is a label value: lower-case letters, digits and ``_``, starting with a letter.
DEVICE_CLASS_PATTERN: Final = r"^[a-z][a-z0-9_]{0,31}$"
#: Bound on distinct device classes (in one agent config, in one inventory): each is a label value
#: on every station's series.
MAX_DEVICE_CLASSES: Final = 16


def device_names(device_class: str) -> tuple[str, str]:
    """(Indonesian, English) name of ``device_class``; the class itself when it has no name."""
    return DEVICE_NAMES.get(device_class, (device_class, device_class))


def capitalized(text: str) -> str:
    """First letter upper case, the rest unchanged (``str.capitalize`` lowers the rest)."""
    return text[:1].upper() + text[1:]


# --------------------------------------------------------------------------- peripheral reasons


class PeripheralReason(enum.StrEnum):
    """``Peripheral.reason`` of an absent class (empty when present)."""

    MISSING = "missing"  # looked, and the expected device is not on USB
    LIBUSB_UNAVAILABLE = "libusb_unavailable"  # could not look: no libusb
    CHECK_FAILED = "check_failed"  # could not look: the USB check failed
    #: on USB, but its driver failed: Windows Device Manager shows a problem code (10, 28, 43,
    #: ...); Linux: no kernel driver bound to any interface, for a rule with ``needs_driver``
    DRIVER_FAILED = "driver_failed"
    #: Expected (by the inventory, ``station.expects``) but the config has no ``[[devices]]``
    #: rule for the class: nobody looks for it. A configuration problem, not hardware.
    NOT_CONFIGURED = "not_configured"


#: Reasons that mean "could not look" (or nobody looks: not configured), not "missing": no
#: presence change is inferred from them.
UNKNOWN_PRESENCE: Final = frozenset(
    {
        PeripheralReason.LIBUSB_UNAVAILABLE,
        PeripheralReason.CHECK_FAILED,
        PeripheralReason.NOT_CONFIGURED,
    }
)


# --------------------------------------------------------------------------- probe reasons


class ProbeReason(enum.StrEnum):
    """``Probe.reason``: ``ok`` or why a login-service probe failed."""

    OK = "ok"
    DNS = "dns"  # the name does not resolve
    REFUSED = "refused"  # nothing listens (TCP RST)
    TIMEOUT = "timeout"  # no answer in time (filtered, hung server, dead link)
    UNREACHABLE = "unreachable"  # no route to the network or host
    RESET = "reset"  # the connection was cut while talking
    TLS = "tls"  # handshake failed (protocol, cipher, not yet valid, ...)
    CERT_EXPIRED = "cert_expired"  # the server's certificate is past notAfter
    CERT_UNTRUSTED = "cert_untrusted"  # signed by no CA the station trusts (self-signed, ...)
    CERT_HOSTNAME = "cert_hostname"  # the certificate is for another name
    #: Valid, but expires within min_cert_days: a warning, the probe is still up.
    CERT_EXPIRING = "cert_expiring"
    HTTP_STATUS = "http_status"  # answered with an unexpected status
    HTTP_PROTOCOL = "http_protocol"  # answered something that is not HTTP
    ERROR = "error"  # anything else (the agent's log has the detail)


class LoginCause(enum.StrEnum):
    """Why login fails, in the terms a person acts on (``Probe.cause``; alert names follow it).

    Each cause sends someone else to do something else: the network people (``network``), whoever
    runs the server's certificates or the station's clock (``tls``), the login service's account
    administrators (``denied``: the service answered and refused the station, e.g. an account
    locked after a reinstall; not a network fault), the service's operators (``service_error``),
    or whoever configured the probe (``unexpected``).
    """

    OK = "ok"
    NETWORK = "network"  # dns, refused, timeout, unreachable, reset
    TLS = "tls"  # expired, untrusted, wrong name, handshake failed
    DENIED = "denied"  # HTTP 401/403: credentials wrong or account locked
    SERVICE_ERROR = "service_error"  # HTTP 5xx
    UNEXPECTED = "unexpected"  # any other answer (other HTTP status, not HTTP, a prober error)


_NETWORK_REASONS: Final = frozenset(
    {
        ProbeReason.DNS,
        ProbeReason.REFUSED,
        ProbeReason.TIMEOUT,
        ProbeReason.UNREACHABLE,
        ProbeReason.RESET,
    }
)
_TLS_REASONS: Final = frozenset(
    {
        ProbeReason.TLS,
        ProbeReason.CERT_EXPIRED,
        ProbeReason.CERT_UNTRUSTED,
        ProbeReason.CERT_HOSTNAME,
    }
)
#: HTTP statuses that mean "the service refused this station" (not reachability).
DENIED_STATUSES: Final = frozenset({401, 403})


#: Per cause: (what it is, what to do) in Bahasa Indonesia, then English. Shown by the board,
#: ``/api/stations``, the alerts and ``pantau-agent check``.
LOGIN_CAUSE_TEXT: Final[dict[LoginCause, tuple[str, str, str, str]]] = {
    LoginCause.NETWORK: (
        "server login tidak terjangkau lewat jaringan",
        "periksa kabel jaringan, modem dan VPN ke server regional",
        "login server unreachable over the network",
        "check the network cable, the modem and the VPN to the regional server",
    ),
    LoginCause.TLS: (
        "sertifikat/TLS server login bermasalah",
        "periksa tanggal dan jam PC; jika benar, sertifikat server (kedaluwarsa, tidak "
        "dipercaya, nama salah) harus diperbaiki pengelola server",
        "TLS problem with the login server",
        "check the PC's date and time; if right, the server's certificate (expired, untrusted, "
        "wrong name) must be fixed by its admins",
    ),
    LoginCause.DENIED: (
        "layanan login menolak stasiun ini",
        "bukan masalah jaringan: akun/kredensial stasiun ditolak (terkunci, kata sandi salah, "
        "atau belum didaftarkan ulang setelah instal ulang PC); hubungi admin layanan login "
        "untuk membuka atau mendaftarkan ulang akun",
        "the login service refuses this station",
        "not a network fault: the station's account or credentials are refused (locked, wrong "
        "password, or not re-registered after a reinstall); ask the login service's admins to "
        "unlock or re-register the account",
    ),
    LoginCause.SERVICE_ERROR: (
        "layanan login mengalami gangguan (error server)",
        "gangguan di sisi server: laporkan ke pengelola layanan login",
        "the login service has an error (server error)",
        "the fault is on the server side: report it to the login service's operators",
    ),
    LoginCause.UNEXPECTED: (
        "layanan login menjawab tidak seperti yang diharapkan",
        "periksa alamat dan pengaturan probe login, atau hubungi teknisi TI",
        "the login service gave an unexpected answer",
        "check the login probe's address and settings, or call IT",
    ),
}


def login_cause(reason: str, status_code: int | None = None) -> LoginCause:
    """The cause of a probe result from its reason and HTTP status (pure; agent and collector)."""
    if reason in (ProbeReason.OK, ProbeReason.CERT_EXPIRING):
        return LoginCause.OK
    if reason in _NETWORK_REASONS:
        return LoginCause.NETWORK
    if reason in _TLS_REASONS:
        return LoginCause.TLS
    if reason == ProbeReason.HTTP_STATUS and status_code is not None:
        if status_code in DENIED_STATUSES:
            return LoginCause.DENIED
        if 500 <= status_code <= 599:
            return LoginCause.SERVICE_ERROR
    return LoginCause.UNEXPECTED


# --------------------------------------------------------------------------- collector reasons

#: Why the collector dropped a message it could decode (besides the decode reasons of
#: :class:`pantau.contract.wire.Reason`): values of the ``reason`` label of
#: ``pantau_collector_reports_rejected_total``.
OVER_CAP: Final = "over_cap"  # a new station beyond the configured cap
STALE_SESSION: Final = "stale_session"  # a message of a superseded agent session
STALE_WILL: Final = "stale_will"  # the will of a session that is not the current one
#: A message not newer than one already applied for its session (and kind): the retained replay
#: after every reconnect, a QoS 1 redelivery, an out-of-order older state.
STALE_SEQ: Final = "stale_seq"
INTERNAL_ERROR: Final = "internal_error"  # a bug: the message is dropped, the collector lives on
FLEET_REJECT_REASONS: Final[tuple[str, ...]] = (
    OVER_CAP,
    STALE_SESSION,
    STALE_WILL,
    STALE_SEQ,
    INTERNAL_ERROR,
)

StationStatus = Literal["up", "offline", "stale", "never_reported"]
#: Every value of the ``state`` label of ``pantau_collector_stations``.
STATION_STATUSES: Final[tuple[StationStatus, ...]] = ("up", "offline", "stale", "never_reported")


# --------------------------------------------------------------------------- regions and time

#: Indonesia's time zones: name -> UTC offset in hours.
TIME_ZONES: Final[dict[str, int]] = {"WIB": 7, "WITA": 8, "WIT": 9}

#: Kemendagri province code -> (name, time zone). A station's local time comes from its province
#: (or the inventory's ``timezone`` column, for the few kabupaten a zone line crosses).
PROVINCES: Final[dict[str, tuple[str, str]]] = {
    "11": ("Aceh", "WIB"),
    "12": ("Sumatera Utara", "WIB"),
    "13": ("Sumatera Barat", "WIB"),
    "14": ("Riau", "WIB"),
    "15": ("Jambi", "WIB"),
    "16": ("Sumatera Selatan", "WIB"),
    "17": ("Bengkulu", "WIB"),
    "18": ("Lampung", "WIB"),
    "19": ("Kepulauan Bangka Belitung", "WIB"),
    "21": ("Kepulauan Riau", "WIB"),
    "31": ("DKI Jakarta", "WIB"),
    "32": ("Jawa Barat", "WIB"),
    "33": ("Jawa Tengah", "WIB"),
    "34": ("DI Yogyakarta", "WIB"),
    "35": ("Jawa Timur", "WIB"),
    "36": ("Banten", "WIB"),
    "51": ("Bali", "WITA"),
    "52": ("Nusa Tenggara Barat", "WITA"),
    "53": ("Nusa Tenggara Timur", "WITA"),
    "61": ("Kalimantan Barat", "WIB"),
    "62": ("Kalimantan Tengah", "WIB"),
    "63": ("Kalimantan Selatan", "WITA"),
    "64": ("Kalimantan Timur", "WITA"),
    "65": ("Kalimantan Utara", "WITA"),
    "71": ("Sulawesi Utara", "WITA"),
    "72": ("Sulawesi Tengah", "WITA"),
    "73": ("Sulawesi Selatan", "WITA"),
    "74": ("Sulawesi Tenggara", "WITA"),
    "75": ("Gorontalo", "WITA"),
    "76": ("Sulawesi Barat", "WITA"),
    "81": ("Maluku", "WIT"),
    "82": ("Maluku Utara", "WIT"),
    "91": ("Papua", "WIT"),
    "92": ("Papua Barat", "WIT"),
    "93": ("Papua Selatan", "WIT"),
    "94": ("Papua Tengah", "WIT"),
    "95": ("Papua Pegunungan", "WIT"),
    "96": ("Papua Barat Daya", "WIT"),
}


def province_name(code: str) -> str:
    """The province's name for a Kemendagri code (the code itself when unknown)."""
    return PROVINCES.get(code, (code, ""))[0]


def time_zone(provinsi: str, override: str = "") -> str:
    """``WIB``/``WITA``/``WIT`` of a station: ``override`` (the inventory's) if valid, else its
    province's; WIB when neither is known (the zone of most of the population)."""
    if override in TIME_ZONES:
        return override
    return PROVINCES.get(provinsi, ("", "WIB"))[1] or "WIB"
