"""The three Grafana dashboards: Fleet overview, Station detail, Collector health.

Several collector replicas may export the same stations (docs/scale.md): every per-station
query aggregates over them (``max`` of each replica's verdict, one series per station), so counts
are not doubled and one dead or lagging replica changes nothing.

Titles are bilingual (Bahasa Indonesia / English). "Ready" means a station is up, every expected
peripheral is present and every login probe is up: the minimum over those series per station is
1 exactly when it is ready, which also makes a never-reported station (only ``up 0``) not ready.
"""

from __future__ import annotations

from typing import Any, Final

import grafanalib.core as g

from pantau.dashboards import metrics as m
from pantau.dashboards._panels import (
    CONNECTED_MAP,
    DATASOURCE,
    GREEN,
    LOGIN_MAP,
    ORANGE,
    PRESENT_MAP,
    READY_MAP,
    RED,
    REGION,
    UP_MAP,
    dashboard,
    dashboard_link,
    datasource_variable,
    hide_columns,
    layout,
    query_variable,
    region_variables,
    target,
    value_map,
)

FLEET_UID: Final = "pantau-fleet"
STATION_UID: Final = "pantau-station"
COLLECTOR_UID: Final = "pantau-collector"
FLEET_SLUG: Final = "pantau-fleet-overview"
STATION_SLUG: Final = "pantau-station-detail"
#: A grid cell of a class the inventory expects and the agent's config has no rule for.
NOT_CONFIGURED_CELL: Final = ("Belum diatur / Not configured", ORANGE)
COLLECTOR_SLUG: Final = "pantau-collector-health"


def readiness(region: str = REGION) -> str:
    """Per station: 1 if up, all peripherals configured and present and all login probes up,
    else 0."""
    names = "|".join((m.STATION_UP, m.PERIPHERAL_PRESENT, m.PERIPHERAL_CONFIGURED, m.LOGIN_UP))
    return f'max by (station) (min by (station, instance) ({{__name__=~"{names}",{region}}}))'


def status_grid(region: str = REGION) -> str:
    """Per station and column (online, login, each device class): 1 OK, 0 at fault, 2 not
    configured (the inventory expects the class, the agent has no rule for it)."""
    return (
        f"max by (station, device_class) (min by (station, device_class, instance) ("
        f"{m.PERIPHERAL_PRESENT}{{{region}}}"
        f" or ({m.PERIPHERAL_CONFIGURED}{{{region}}} == 0) + 2"
        f' or label_replace({m.LOGIN_UP}{{{region}}}, "device_class", "login", "", "")'
        f' or label_replace({m.STATION_UP}{{{region}}}, "device_class", "online", "", "")))'
    )


def never_reported(region: str = REGION) -> str:
    """Inventory stations no replica has a report of (one row per station, not per replica)."""
    return (
        f"max by ({', '.join(m.STATION_LABELS)}) ({m.STATION_UP}{{{region}}} == 0"
        f' and on(station) {m.STATION_INFO}{{inventory="yes",{region}}}'
        f" unless on(station) {m.STATION_LAST_REPORT} > 0)"
    )


def broken_longest(region: str = REGION) -> str:
    """Every current problem with its age in days, oldest first (the "broken since" table)."""
    labels = ", ".join((*m.STATION_LABELS, "problem", "subject"))
    return (
        f"sort_desc(min by ({labels}) "
        f'((time() - {m.STATION_PROBLEM_SINCE}{{problem!="cert_expiring",{region}}}) / 86400))'
    )


def _links() -> list[dict[str, Any]]:
    return [
        dashboard_link("Armada / Fleet overview", FLEET_UID, FLEET_SLUG),
        dashboard_link("Stasiun / Station detail", STATION_UID, STATION_SLUG),
        dashboard_link("Collector", COLLECTOR_UID, COLLECTOR_SLUG),
    ]


def _station_link() -> dict[str, Any]:
    return {
        "title": "Detail stasiun / Station detail",
        "url": f"/d/{STATION_UID}/{STATION_SLUG}?${{__url_time_range}}&var-station=${{__value.raw}}",
    }


# --------------------------------------------------------------------------- fleet overview


def _grid_overrides() -> list[dict[str, Any]]:
    """Per column value mappings: a red cell says what is missing."""
    columns = {
        "online": ("Offline", "Online"),
        "login": ("Login gagal / Login down", "Login OK"),
    }
    for cls, (name_id, name_en) in m.DEVICE_NAMES.items():
        columns[cls] = (f"{name_id.capitalize()} hilang / {name_en} missing", "OK")
    overrides: list[dict[str, Any]] = [
        {
            "matcher": {"id": "byName", "options": column},
            "properties": [
                {
                    "id": "mappings",
                    "value": value_map({0: (bad, RED), 1: (good, GREEN), 2: NOT_CONFIGURED_CELL}),
                }
            ],
        }
        for column, (bad, good) in columns.items()
    ]
    overrides.append(
        {
            "matcher": {"id": "byName", "options": "station\\device_class"},
            "properties": [
                {"id": "displayName", "value": "Stasiun / Station"},
                {"id": "links", "value": [_station_link()]},
                {"id": "custom.cellOptions", "value": {"type": "auto"}},
            ],
        }
    )
    return overrides


def fleet_overview() -> dict[str, Any]:
    ready = g.Stat(
        title="Stasiun siap / Stations ready",
        description="Online, semua perangkat ada, login OK / online, all peripherals present, login up",
        dataSource=DATASOURCE,
        targets=[
            target(f"count({readiness()} == 1) or vector(0)", "A", "Siap / Ready"),
            target(
                f"count(max by (station) ({m.STATION_UP}{{{REGION}}})) or vector(0)", "B", "Total"
            ),
        ],
        reduceCalc="lastNotNull",
        graphMode="none",
        textMode="value_and_name",
    )
    offline = g.Stat(
        title="Stasiun offline / Stations offline",
        dataSource=DATASOURCE,
        targets=[
            target(
                f"count(max by (station) ({m.STATION_UP}{{{REGION}}}) == 0) or vector(0)",
                "A",
                "Offline",
            )
        ],
        reduceCalc="lastNotNull",
        graphMode="none",
        thresholds=[{"color": GREEN, "value": None}, {"color": RED, "value": 1}],
        colorMode="background",
    )
    missing = g.Stat(
        title="Perangkat hilang per jenis / Missing per device class",
        description="Jumlah stasiun yang kehilangan perangkat / stations missing the device",
        dataSource=DATASOURCE,
        targets=[
            target(
                f"sum by (device_class) (1 - max by (station, device_class) "
                f"({m.PERIPHERAL_PRESENT}{{{REGION}}}))",
                "A",
                "{{device_class}}",
            )
        ],
        reduceCalc="lastNotNull",
        graphMode="none",
        textMode="value_and_name",
        colorMode="background",
        thresholds=[{"color": GREEN, "value": None}, {"color": RED, "value": 1}],
    )
    grid = g.Table(
        title="Status stasiun x perangkat / Station x device status",
        description=(
            "Sel merah menyebut yang hilang; klik stasiun untuk detail. "
            "A red cell names what is missing; click a station for its detail."
        ),
        dataSource=DATASOURCE,
        targets=[target(status_grid(), "A", instant=True)],
        transformations=[
            {
                "id": "groupingToMatrix",
                "options": {
                    "columnField": "device_class",
                    "rowField": "station",
                    "valueField": "Value",
                },
            }
        ],
        overrides=_grid_overrides(),
        displayMode="color-background",
        filterable=True,
        extraJson={
            "fieldConfig": {
                "defaults": {
                    "custom": {"cellOptions": {"type": "color-background"}},
                    "mappings": value_map({0: ("Hilang / Missing", RED), 1: ("OK", GREEN)}),
                }
            }
        },
    )
    timeline = g.StateTimeline(
        title="Kesiapan dari waktu ke waktu / Readiness over time",
        dataSource=DATASOURCE,
        targets=[target(readiness(), "A", "{{station}}")],
        mappings=READY_MAP,
        showValue="never",
        extraJson={"fieldConfig": {"defaults": {"links": [_timeline_station_link()]}}},
    )
    never = g.Table(
        title="Belum pernah melapor / Never reported (inventaris / inventory)",
        description="Di inventaris tetapi agen belum pernah melapor / in the inventory, agent never reported",
        dataSource=DATASOURCE,
        targets=[target(never_reported(), "A", instant=True)],
        transformations=[hide_columns("Time", "Value", "__name__", "job", "instance")],
        overrides=[
            {
                "matcher": {"id": "byName", "options": "station"},
                "properties": [{"id": "links", "value": [_station_link()]}],
            }
        ],
    )
    longest = g.Table(
        title="Rusak paling lama / Broken longest",
        description=(
            "Setiap masalah yang sedang terjadi dan sudah berapa hari, yang terlama di atas. "
            "Every current problem and for how many days, oldest first."
        ),
        dataSource=DATASOURCE,
        targets=[target(broken_longest(), "A", instant=True)],
        transformations=[
            hide_columns("Time", "__name__", "job", "instance", "provinsi"),
            {"id": "sortBy", "options": {"sort": [{"field": "Value", "desc": True}]}},
        ],
        overrides=[
            {
                "matcher": {"id": "byName", "options": "station"},
                "properties": [{"id": "links", "value": [_station_link()]}],
            },
            {
                "matcher": {"id": "byName", "options": "Value"},
                "properties": [
                    {"id": "displayName", "value": "Hari / Days"},
                    {"id": "decimals", "value": 1},
                ],
            },
        ],
    )
    panels = layout(
        [
            [(ready, 8, 5), (offline, 4, 5), (missing, 12, 5)],
            [(grid, 24, 12)],
            [(longest, 24, 8)],
            [(timeline, 24, 10)],
            [(never, 24, 7)],
        ]
    )
    return dashboard(
        uid=FLEET_UID,
        title="pantau: Armada / Fleet overview",
        description="Kesiapan semua stasiun perekaman e-KTP / readiness of every e-KTP recording station",
        variables=[datasource_variable(), *region_variables()],
        panels=panels,
        links=_links(),
    )


def _timeline_station_link() -> dict[str, Any]:
    return {
        "title": "Detail stasiun / Station detail",
        "url": f"/d/{STATION_UID}/{STATION_SLUG}?${{__url_time_range}}&var-station=${{__field.labels.station}}",
    }


# --------------------------------------------------------------------------- station detail

ST: Final = 'station="$station"'


def station_detail() -> dict[str, Any]:
    presence = g.StateTimeline(
        title="Perangkat dari waktu ke waktu / Peripheral presence over time",
        dataSource=DATASOURCE,
        targets=[
            target(
                f"max by (device_class) ({m.PERIPHERAL_PRESENT}{{{ST}}})", "A", "{{device_class}}"
            )
        ],
        mappings=PRESENT_MAP,
        showValue="never",
    )
    online = g.StateTimeline(
        title="Online",
        dataSource=DATASOURCE,
        targets=[target(f"max({m.STATION_UP}{{{ST}}})", "A", "online")],
        mappings=UP_MAP,
        showValue="never",
    )
    last_report = g.Stat(
        title="Laporan terakhir / Last report (s ago)",
        dataSource=DATASOURCE,
        targets=[target(f"time() - max({m.STATION_LAST_REPORT}{{{ST}}})", "A", "detik / seconds")],
        format="s",
        reduceCalc="lastNotNull",
        graphMode="none",
    )
    login = g.StateTimeline(
        title="Login",
        dataSource=DATASOURCE,
        targets=[target(f"max by (target) ({m.LOGIN_UP}{{{ST}}})", "A", "{{target}}")],
        mappings=LOGIN_MAP,
        showValue="never",
    )
    login_duration = g.TimeSeries(
        title="Durasi probe login / Login probe duration",
        dataSource=DATASOURCE,
        targets=[target(f"max by (target) ({m.LOGIN_DURATION}{{{ST}}})", "A", "{{target}}")],
        unit="s",
    )
    login_reason = g.Table(
        title="Alasan probe login / Login probe reason",
        dataSource=DATASOURCE,
        targets=[
            target(f"max without (job, instance) ({m.LOGIN_PROBE_INFO}{{{ST}}})", "A", instant=True)
        ],
        transformations=[
            hide_columns("Time", "Value", "__name__", "job", "instance", *m.STATION_LABELS)
        ],
    )
    cpu_mem = g.TimeSeries(
        title="CPU & memori / CPU & memory",
        dataSource=DATASOURCE,
        targets=[
            target(f"max({m.HOST_CPU}{{{ST}}})", "A", "CPU"),
            target(
                f"1 - max({m.HOST_MEM_AVAILABLE}{{{ST}}}) / max({m.HOST_MEM_TOTAL}{{{ST}}})",
                "B",
                "memori terpakai / memory used",
            ),
        ],
        unit="percentunit",
    )
    disk = g.TimeSeries(
        title="Disk kosong / Disk free",
        dataSource=DATASOURCE,
        targets=[
            target(
                f"max by (mount) ({m.HOST_DISK_FREE}{{{ST}}} / {m.HOST_DISK_SIZE}{{{ST}}})",
                "A",
                "{{mount}}",
            )
        ],
        unit="percentunit",
    )
    reboots = g.Stat(
        title="Nyala ulang 24 jam / Reboots in 24 h",
        description="Banyak nyala ulang: listrik/petir? / many reboots: power or lightning?",
        dataSource=DATASOURCE,
        targets=[target(f"max(changes({m.HOST_BOOT}{{{ST}}}[24h]))", "A", "reboot")],
        reduceCalc="lastNotNull",
        graphMode="none",
        thresholds=[{"color": GREEN, "value": None}, {"color": RED, "value": 3}],
    )
    boot = g.Stat(
        title="Boot terakhir / Last boot",
        dataSource=DATASOURCE,
        targets=[target(f"max({m.HOST_BOOT}{{{ST}}}) * 1000", "A", "boot")],
        format="dateTimeAsIso",
        reduceCalc="lastNotNull",
        graphMode="none",
    )
    skew = g.TimeSeries(
        title="Selisih jam / Clock skew",
        description="Jam agen dikurangi jam collector / agent clock minus collector clock",
        dataSource=DATASOURCE,
        targets=[target(f"max({m.HOST_CLOCK_SKEW}{{{ST}}})", "A", "skew")],
        unit="s",
    )
    info = g.Table(
        title="Versi agen / Agent version",
        dataSource=DATASOURCE,
        targets=[
            target(f"max without (job, instance) ({m.STATION_INFO}{{{ST}}})", "A", instant=True)
        ],
        transformations=[hide_columns("Time", "Value", "__name__", "job", "instance")],
    )
    events = g.TimeSeries(
        title="Kejadian / Events",
        dataSource=DATASOURCE,
        targets=[
            target(
                f"max by (kind) (sum by (kind, instance) "
                f"(increase({m.STATION_EVENTS}{{{ST}}}[$__interval])))",
                "A",
                "{{kind}}",
            )
        ],
        drawStyle="bars",
    )
    panels = layout(
        [
            [(presence, 24, 8)],
            [(online, 12, 4), (last_report, 4, 4), (reboots, 4, 4), (boot, 4, 4)],
            [(login, 8, 6), (login_duration, 8, 6), (login_reason, 8, 6)],
            [(cpu_mem, 8, 7), (disk, 8, 7), (skew, 8, 7)],
            [(info, 12, 6), (events, 12, 6)],
        ]
    )
    station = query_variable(
        "station",
        "Stasiun / Station",
        f"label_values({m.STATION_UP}{{{REGION}}}, station)",
        include_all=False,
    )
    return dashboard(
        uid=STATION_UID,
        title="pantau: Stasiun / Station detail",
        description="Satu stasiun perekaman / one recording station",
        variables=[datasource_variable(), *region_variables(), station],
        panels=panels,
        links=_links(),
    )


# --------------------------------------------------------------------------- collector health

INST: Final = 'instance=~"$instance"'


def collector_health() -> dict[str, Any]:
    mqtt = g.StateTimeline(
        title="MQTT terhubung / MQTT connected",
        dataSource=DATASOURCE,
        targets=[target(f"{m.COLLECTOR_MQTT}{{{INST}}}", "A", "{{instance}}")],
        mappings=CONNECTED_MAP,
        showValue="never",
    )
    up = g.StateTimeline(
        title="Scrape collector (up)",
        dataSource=DATASOURCE,
        targets=[target(f'up{{job="{m.COLLECTOR_JOB}",{INST}}}', "A", "{{instance}}")],
        mappings=UP_MAP,
        showValue="never",
    )
    ingest = g.TimeSeries(
        title="Laporan diterima / Reports received per second",
        dataSource=DATASOURCE,
        targets=[
            target(
                f"sum by (instance) (rate({m.COLLECTOR_REPORTS}{{{INST}}}[$__rate_interval]))",
                "A",
                "{{instance}}",
            )
        ],
        unit="reqps",
    )
    rejected = g.TimeSeries(
        title="Laporan ditolak per alasan / Rejections by reason",
        dataSource=DATASOURCE,
        targets=[
            target(
                f"sum by (reason) (rate({m.COLLECTOR_REJECTED}{{{INST}}}[$__rate_interval]))",
                "A",
                "{{reason}}",
            )
        ],
        unit="reqps",
    )
    scrape = g.TimeSeries(
        title="Durasi scrape / Scrape duration",
        dataSource=DATASOURCE,
        targets=[
            target(
                f'scrape_duration_seconds{{job="{m.COLLECTOR_JOB}",{INST}}}',
                "A",
                "{{instance}}",
            )
        ],
        unit="s",
    )
    stations = g.TimeSeries(
        title="Stasiun per keadaan / Stations by state",
        dataSource=DATASOURCE,
        targets=[target(f"{m.COLLECTOR_STATIONS}{{{INST}}}", "A", "{{state}}")],
    )
    panels = layout(
        [
            [(mqtt, 12, 5), (up, 12, 5)],
            [(ingest, 12, 8), (rejected, 12, 8)],
            [(scrape, 12, 8), (stations, 12, 8)],
        ]
    )
    instance = query_variable(
        "instance", "Collector", f"label_values({m.COLLECTOR_MQTT}, instance)"
    )
    return dashboard(
        uid=COLLECTOR_UID,
        title="pantau: Kesehatan collector / Collector health",
        description="Collector pantau, broker MQTT dan scrape / the pantau collector, MQTT and scrape",
        variables=[datasource_variable(), instance],
        panels=panels,
        links=_links(),
    )


def all_dashboards() -> dict[str, dict[str, Any]]:
    """File name (without .json) -> dashboard JSON."""
    from pantau.dashboards import availability

    return {
        FLEET_SLUG: fleet_overview(),
        STATION_SLUG: station_detail(),
        COLLECTOR_SLUG: collector_health(),
        availability.AVAILABILITY_SLUG: availability.dashboard(),
    }
