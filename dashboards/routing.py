"""Who gets which alert, and when: one definition rendered as Grafana contact points, notification
policies and mute timings (file provisioning) and as an Alertmanager configuration.

Routing keys are the static labels of :mod:`pantau.dashboards.alerts`:

- ``hours="office"`` alerts (a peripheral missing, login unreachable, station offline, never
  reported) matter only when the office is open: a camera switched off at night is not a fault.
  They are muted outside Mon-Fri 08:00-16:00 *local time*, chosen by the station's ``provinsi``
  (WIB / WITA / WIT; provinces not listed, e.g. slugs, fall back to WIB).
- ``hours="always"`` alerts (reboots, disk, clock, collector and broker) are never muted.

Every alert also goes to the webhook (e.g. a ticketing system), unmuted.

A collector that cannot see never decides a station's fate: every station alert's query leaves
out the series of a blind collector (:func:`pantau.dashboards.alerts._replicas`), in the
Prometheus and the Grafana rules alike (Grafana has no inhibition). On top, while a collector is
blind (``PantauCollectorBlind``) or down (``PantauCollectorDown``), Alertmanager inhibits the
station alerts (:func:`inhibit_rules`): one fault, one notification, not a page per station.

Secrets never appear here: Grafana interpolates ``$VAR`` from its environment in provisioning
files. Alertmanager 0.25 does not, so its file carries ``$VAR`` placeholders for the Telegram
token to be substituted at deploy time (or switch to ``bot_token_file`` on Alertmanager >= 0.26)
and reads the SMTP password from a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from pantau.dashboards.alerts import BLINDING_ALERTS


@dataclass(frozen=True)
class Zone:
    name: str  # wib, wita, wit
    location: str  # IANA time zone
    provinsi: tuple[str, ...]  # Kemendagri province codes in the zone

    @property
    def mute_timing(self) -> str:
        return f"luar-jam-kerja-{self.name}"


def _codes(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: Indonesia's three time zones with the province codes (Kemendagri) in each.
ZONES: Final = (
    Zone("wib", "Asia/Jakarta", _codes("11 12 13 14 15 16 17 18 19 21 31 32 33 34 35 36 61 62")),
    Zone("wita", "Asia/Makassar", _codes("51 52 53 63 64 65 71 72 73 74 75 76")),
    Zone("wit", "Asia/Jayapura", _codes("81 82 91 92 93 94 95 96")),
)
#: Zone for provinces not listed (slugs, new codes).
DEFAULT_ZONE: Final = "wib"

OFFICE_DAYS: Final = "monday:friday"
OFFICE_START: Final = "08:00"
OFFICE_END: Final = "16:00"

RECEIVER_IT: Final = "pantau-it"
RECEIVER_WEBHOOK: Final = "pantau-webhook"
GROUP_BY: Final = ("alertname", "kabkota", "kecamatan")
GROUP_WAIT: Final = "30s"
GROUP_INTERVAL: Final = "5m"
REPEAT_INTERVAL: Final = "4h"

#: Example destinations (replace per deployment); secrets come from the environment.
EMAIL_TO: Final = "it-dispendukcapil@example.org"
EMAIL_FROM: Final = "pantau@example.org"
SMTP_HOST: Final = "smtp.example.org:587"
SMTP_USER: Final = "pantau@example.org"
SMTP_PASSWORD_FILE: Final = "/etc/alertmanager/secrets/smtp_password"  # noqa: S105 (a path)
TELEGRAM_CHAT_ID_EXAMPLE: Final = -1001234567890
WEBHOOK_URL: Final = "http://pantau-webhook:8080/alerts"


def _outside_office_hours(location: str) -> list[dict[str, Any]]:
    """Time intervals (Prometheus time_interval format) outside Mon-Fri 08:00-16:00 local."""
    return [
        {"weekdays": ["saturday", "sunday"], "location": location},
        {
            "times": [
                {"start_time": "00:00", "end_time": OFFICE_START},
                {"start_time": OFFICE_END, "end_time": "24:00"},
            ],
            "weekdays": [OFFICE_DAYS],
            "location": location,
        },
    ]


def _zone_routes(style: str) -> list[dict[str, Any]]:
    """Child routes for ``hours=office`` alerts, one per zone (default zone last, catch-all)."""
    routes = []
    ordered = [z for z in ZONES if z.name != DEFAULT_ZONE] + [
        z for z in ZONES if z.name == DEFAULT_ZONE
    ]
    for zone in ordered:
        matchers: list[tuple[str, str, str]] = [("hours", "=", "office")]
        if zone.name != DEFAULT_ZONE:
            matchers.append(("provinsi", "=~", "|".join(zone.provinsi)))
        route: dict[str, Any] = {"receiver": RECEIVER_IT}
        if style == "grafana":
            route["object_matchers"] = [list(mt) for mt in matchers]
        else:
            route["matchers"] = [f'{k}{op}"{v}"' for k, op, v in matchers]
        route["mute_time_intervals"] = [zone.mute_timing]
        routes.append(route)
    return routes


def _route_tree(style: str) -> dict[str, Any]:
    webhook: dict[str, Any] = {"receiver": RECEIVER_WEBHOOK, "continue": True}
    if style == "grafana":
        webhook["object_matchers"] = [["severity", "=~", "critical|warning"]]
    else:
        webhook["matchers"] = ['severity=~"critical|warning"']
    return {
        "receiver": RECEIVER_IT,
        "group_by": list(GROUP_BY),
        "group_wait": GROUP_WAIT,
        "group_interval": GROUP_INTERVAL,
        "repeat_interval": REPEAT_INTERVAL,
        "routes": [webhook, *_zone_routes(style)],
    }


# --------------------------------------------------------------------------- Grafana

_MESSAGE = '{{ template "default.message" . }}'


def grafana_contact_points() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "contactPoints": [
            {
                "orgId": 1,
                "name": RECEIVER_IT,
                "receivers": [
                    {
                        "uid": "pantau-it-telegram",
                        "type": "telegram",
                        "settings": {
                            "bottoken": "$TELEGRAM_BOT_TOKEN",
                            "chatid": "$TELEGRAM_CHAT_ID",
                            "message": _MESSAGE,
                        },
                        "disableResolveMessage": False,
                    },
                    {
                        "uid": "pantau-it-email",
                        "type": "email",
                        "settings": {
                            "addresses": "$PANTAU_ALERT_EMAILS",
                            "singleEmail": True,
                            "subject": '{{ template "default.title" . }}',
                        },
                        "disableResolveMessage": False,
                    },
                ],
            },
            {
                "orgId": 1,
                "name": RECEIVER_WEBHOOK,
                "receivers": [
                    {
                        "uid": "pantau-webhook",
                        "type": "webhook",
                        "settings": {
                            "url": "$PANTAU_WEBHOOK_URL",
                            "httpMethod": "POST",
                            "authorization_scheme": "Bearer",
                            "authorization_credentials": "$PANTAU_WEBHOOK_TOKEN",
                        },
                        "disableResolveMessage": False,
                    }
                ],
            },
        ],
    }


def grafana_policies() -> dict[str, Any]:
    return {"apiVersion": 1, "policies": [{"orgId": 1, **_route_tree("grafana")}]}


def grafana_mute_timings() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "muteTimes": [
            {"orgId": 1, "name": z.mute_timing, "time_intervals": _outside_office_hours(z.location)}
            for z in ZONES
        ],
    }


# --------------------------------------------------------------------------- Alertmanager


def inhibit_rules() -> list[dict[str, Any]]:
    """Alertmanager ``inhibit_rules``: a blind or down collector holds back station alerts.

    Fleet-wide (no ``equal``): station alerts are aggregated over collector replicas and carry no
    ``instance`` to match a collector by. Precise per collector is the query gate; this is the
    guarantee of one page for one fault. With several collectors (shards, replicas), one blind
    collector thus also holds back the others' station alerts until it sees again (its own alert
    pages meanwhile); replicas therefore get :func:`alertmanager_config` without it.
    """
    return [
        {
            "source_matchers": [f'alertname=~"{"|".join(BLINDING_ALERTS)}"'],
            "target_matchers": ['component="station"'],
        }
    ]


def alertmanager_config(*, replicas: bool = False) -> dict[str, Any]:
    """The Alertmanager config; ``replicas=True``: for collector replicas serving the same
    stations (docs/scale.md), without the fleet-wide :func:`inhibit_rules`.

    With replicas, one dead or blind replica must not hold back the station alerts that the
    others, which see, still raise: the query gate already leaves a blind replica's series out,
    and a dead one's vanish. When every replica is blind or down, no station alert can fire
    anyway (nothing is left to evaluate), and each replica's own alert pages.
    """
    return {
        "route": _route_tree("alertmanager"),
        **({} if replicas else {"inhibit_rules": inhibit_rules()}),
        "receivers": [
            {
                "name": RECEIVER_IT,
                "telegram_configs": [
                    {
                        # Alertmanager 0.25 has no bot_token_file: substitute at deploy time.
                        "bot_token": "$TELEGRAM_BOT_TOKEN",
                        "chat_id": TELEGRAM_CHAT_ID_EXAMPLE,
                        "parse_mode": "",
                        "send_resolved": True,
                    }
                ],
                "email_configs": [
                    {
                        "to": EMAIL_TO,
                        "from": EMAIL_FROM,
                        "smarthost": SMTP_HOST,
                        "auth_username": SMTP_USER,
                        "auth_password_file": SMTP_PASSWORD_FILE,
                        "send_resolved": True,
                    }
                ],
            },
            {
                "name": RECEIVER_WEBHOOK,
                "webhook_configs": [{"url": WEBHOOK_URL, "send_resolved": True}],
            },
        ],
        "time_intervals": [
            {"name": z.mute_timing, "time_intervals": _outside_office_hours(z.location)}
            for z in ZONES
        ],
    }
