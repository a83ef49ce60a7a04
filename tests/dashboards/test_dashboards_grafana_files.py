"""Grafana provisioning files and dashboards, validated as Grafana 11.2 reads them.

No Grafana can run here; see dash_grafana_schema for what is checked and where it comes from.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from dash_grafana_schema import (
    secret_settings,
    validate_alert_rules,
    validate_contact_points,
    validate_dashboard_providers,
    validate_datasources,
    validate_mute_timings,
    validate_policies,
)

from pantau.dashboards._panels import DATASOURCE_UID
from pantau.dashboards.alerts import default_alerts
from pantau.dashboards.build import DASHBOARD_DIR, GRAFANA, render

VAR_RE = re.compile(r"\$\{([A-Za-z_][\w.]*)(?::\w+)?\}|\$([A-Za-z_]\w*)|\[\[(\w+)\]\]")


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return render()


def _yaml(files: dict[str, str], name: str) -> Any:
    return yaml.safe_load(files[f"{GRAFANA}/{name}"])


def _dashboards(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {
        Path(rel).stem: json.loads(text)
        for rel, text in files.items()
        if rel.startswith(DASHBOARD_DIR + "/")
    }


# --------------------------------------------------------------------------- alerting files


def test_alert_rules_follow_the_file_provisioning_format(files: dict[str, str]) -> None:
    doc = _yaml(files, "alerting/pantau-rules.yaml")
    cps = _yaml(files, "alerting/pantau-contact-points.yaml")
    assert validate_alert_rules(doc, contact_points={c["name"] for c in cps["contactPoints"]}) == []
    titles = [r["title"] for g in doc["groups"] for r in g["rules"]]
    assert titles == [a.name for a in default_alerts()]
    for group in doc["groups"]:
        for rule in group["rules"]:
            # Rule-level fields of the file format, not the ruler API's grafana_alert wrapper.
            assert {
                "uid",
                "title",
                "condition",
                "data",
                "noDataState",
                "execErrState",
                "for",
            } <= set(rule)
            assert "grafana_alert" not in json.dumps(rule)
            assert rule["data"][0]["datasourceUid"] == DATASOURCE_UID


def test_alert_rule_queries_are_the_prometheus_rule_queries(files: dict[str, str]) -> None:
    doc = _yaml(files, "alerting/pantau-rules.yaml")
    prom = yaml.safe_load(files["prometheus/rules/pantau.rules.yml"])
    prom_rules = {r["alert"]: r for g in prom["groups"] for r in g["rules"]}
    for group in doc["groups"]:
        for rule in group["rules"]:
            query = rule["data"][0]["model"]["expr"]
            threshold = rule["data"][2]["model"]["conditions"][0]["evaluator"]
            op = {"lt": "<", "gt": ">"}[threshold["type"]]
            value = threshold["params"][0]
            value_text = str(int(value)) if float(value).is_integer() else repr(value)
            if rule["labels"]["component"] == "station":
                # Grafana cannot inhibit: like the Prometheus rule, its query leaves out a blind
                # collector's series
                assert "unless on(job, instance) (pantau_collector_blind == 1)" in query, query
            assert prom_rules[rule["title"]]["expr"] == f"({query}) {op} {value_text}"
            assert prom_rules[rule["title"]]["labels"] == rule["labels"]
            assert prom_rules[rule["title"]]["for"] == rule["for"]


def test_texts_are_bilingual_and_name_kecamatan(files: dict[str, str]) -> None:
    doc = _yaml(files, "alerting/pantau-rules.yaml")
    for group in doc["groups"]:
        for rule in group["rules"]:
            notes = rule["annotations"]
            assert set(notes) == {"summary", "description", "summary_en", "description_en"}
            if rule["labels"]["component"] == "station":
                assert "Kecamatan {{ $labels.kecamatan }}" in notes["summary"]
                assert "{{ $labels.station }}" in notes["summary"]
            # Grafana's value variable, not Prometheus' $value.
            assert "$value " not in json.dumps(notes)
            assert "$value}" not in json.dumps(notes)
    missing = next(
        r for g in doc["groups"] for r in g["rules"] if r["title"] == "PantauPeripheralMissing"
    )
    assert (
        'eq $labels.device_class "fingerprint" }}Pemindai sidik jari'
        in missing["annotations"]["summary"]
    )


def test_validator_rejects_grafanalibs_ruler_api_shape() -> None:
    """grafanalib 0.7.1 AlertRulev9 emits {grafana_alert: {...}}: the validator must say no."""
    import grafanalib.core as g

    rulev9 = g.AlertRulev9(
        title="x",
        uid="x",
        condition="B",
        triggers=[
            g.Target(expr="up", refId="A", datasource="pantau-prometheus"),
            g.AlertExpression(refId="B", expression="A", expressionType=g.EXP_TYPE_CLASSIC),
        ],
    ).to_json_data()
    assert "grafana_alert" in rulev9
    doc = {
        "apiVersion": 1,
        "groups": [{"name": "g", "folder": "f", "interval": "1m", "rules": [rulev9]}],
    }
    problems = validate_alert_rules(doc)
    assert any("grafana_alert" in p for p in problems)
    assert any("missing required 'data'" in p for p in problems)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: r.update(condition="Z"), "is not a refId"),
        (lambda r: r.update(noDataState="Fine"), "noDataState"),
        (lambda r: r.update(execErrState="Fail"), "execErrState"),
        (lambda r: r.update({"for": "5 minutes"}), "not a duration"),
        (lambda r: r.pop("uid"), "missing required 'uid'"),
        (lambda r: r.update(uid="x" * 41), "1-40"),
        (lambda r: r.update(titel="typo"), "unknown key 'titel'"),
        (lambda r: r["data"][0].pop("relativeTimeRange"), "relativeTimeRange"),
        (lambda r: r["data"][1]["model"].update(expression="C"), "not an earlier refId"),
        (
            lambda r: r["data"][2]["model"]["conditions"][0]["evaluator"].update(type="bigger"),
            "evaluator.type",
        ),
        (lambda r: r["labels"].update(team="$TEAM"), "env-interpolated"),
        (lambda r: r["data"][0]["model"].pop("expr"), "needs expr"),
        # Keys of later Grafana versions: 11.2 would silently drop them.
        (lambda r: r.update(keepFiringFor="5m"), "not supported by Grafana 11.2.0"),
        (lambda r: r.update(missing_series_evals_to_resolve=3), "not supported by Grafana 11.2.0"),
        (
            lambda r: r.update(
                notification_settings={"receiver": "pantau-it", "active_time_intervals": ["x"]}
            ),
            "not supported by Grafana 11.2.0",
        ),
        (lambda r: r["data"][1]["model"].update(reducer="avg"), "model.reducer"),
        (lambda r: r["data"][1]["model"].update(settings={"mode": "dropNaN"}), "settings.mode"),
        (
            lambda r: r["data"][2]["model"]["conditions"][0]["evaluator"].update(type="gte"),
            "not supported by Grafana 11.2.0",
        ),
        (
            lambda r: r["data"][2]["model"]["conditions"][0]["evaluator"].update(
                type="within_range", params=[1]
            ),
            "within_range needs 2",
        ),
        (
            lambda r: r.update(notification_settings={"receiver": "nobody"}),
            "not a provisioned contact point",
        ),
        (lambda r: r.update(notification_settings={"group_wait": "30s"}), "'receiver'"),
        (lambda r: r.update(record={"metric": "pantau:x"}), "missing required 'from'"),
        (lambda r: r.update(record={"metric": "m", "from": "Q"}), "record.from"),
    ],
)
def test_rule_validator_catches_each_mistake(
    files: dict[str, str], mutate: Any, expected: str
) -> None:
    doc = copy.deepcopy(_yaml(files, "alerting/pantau-rules.yaml"))
    mutate(doc["groups"][0]["rules"][0])
    problems = validate_alert_rules(doc, contact_points={"pantau-it", "pantau-webhook"})
    assert any(expected in p for p in problems), problems


def test_rule_group_interval_is_a_multiple_of_the_base_interval(files: dict[str, str]) -> None:
    doc = copy.deepcopy(_yaml(files, "alerting/pantau-rules.yaml"))
    for interval in ("25s", "0s", "5s"):
        doc["groups"][0]["interval"] = interval
        assert any("base interval" in p for p in validate_alert_rules(doc)), interval
    doc["groups"][0]["interval"] = "1m"
    assert validate_alert_rules(doc) == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.update(noDataState="KeepLast", execErrState="KeepLast"),
        lambda r: r.update(noDataState="NoData", execErrState="Alerting"),
        lambda r: r["data"][1]["model"].update(reducer="median"),
        lambda r: r["data"][1]["model"].update(reducer="Max", settings={"mode": "dropNN"}),
        lambda r: r["data"][2]["model"]["conditions"][0]["evaluator"].update(
            type="outside_range", params=[0, 1]
        ),
        lambda r: r.update(isPaused=True, dasboardUid=r.pop("dashboardUid")),
        lambda r: r.update(
            notification_settings={
                "receiver": "pantau-webhook",
                "group_by": ["alertname"],
                "group_wait": "30s",
                "mute_time_intervals": ["luar-jam-kerja-wib"],
            }
        ),
        lambda r: (r.pop("condition"), r.update(record={"metric": "pantau:missing", "from": "A"})),
    ],
)
def test_rule_validator_accepts_what_grafana_accepts(files: dict[str, str], mutate: Any) -> None:
    """Grafana 11.2 features (KeepLast, median, ranges, routing, recording rules) are valid."""
    doc = copy.deepcopy(_yaml(files, "alerting/pantau-rules.yaml"))
    mutate(doc["groups"][0]["rules"][0])
    assert validate_alert_rules(doc, contact_points={"pantau-it", "pantau-webhook"}) == []


def test_contact_points_policies_and_mute_timings(files: dict[str, str]) -> None:
    cps = _yaml(files, "alerting/pantau-contact-points.yaml")
    mutes = _yaml(files, "alerting/pantau-mute-timings.yaml")
    policies = _yaml(files, "alerting/pantau-policies.yaml")
    assert validate_contact_points(cps) == []
    assert validate_mute_timings(mutes) == []
    cp_names = {cp["name"] for cp in cps["contactPoints"]}
    mute_names = {mt["name"] for mt in mutes["muteTimes"]}
    assert validate_policies(policies, cp_names, mute_names) == []
    assert mute_names == {"luar-jam-kerja-wib", "luar-jam-kerja-wita", "luar-jam-kerja-wit"}
    locations = {i["location"] for mt in mutes["muteTimes"] for i in mt["time_intervals"]}
    assert locations == {"Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"}
    types = {r["type"] for cp in cps["contactPoints"] for r in cp["receivers"]}
    assert types == {"telegram", "email", "webhook"}
    # Every secret-looking setting comes from the environment, never a literal.
    for key, value in secret_settings(cps).items():
        assert re.fullmatch(r"\$[A-Z_]+", value), f"{key} = {value!r} is not an env reference"
    # Every policy's mute timing is used by some route, and every mute timing is used.
    used = set(re.findall(r"luar-jam-kerja-\w+", json.dumps(policies)))
    assert used == mute_names


@pytest.mark.parametrize(
    ("path", "mutate", "expected"),
    [
        (
            "policies",
            lambda d: d["policies"][0]["routes"][1].update(receiver="nobody"),
            "not a provisioned contact point",
        ),
        (
            "policies",
            lambda d: d["policies"][0]["routes"][1].update(mute_time_intervals=["night"]),
            "not a provisioned mute timing",
        ),
        (
            "policies",
            lambda d: d["policies"][0].update(mute_time_intervals=["luar-jam-kerja-wib"]),
            "root policy",
        ),
        (
            "policies",
            lambda d: d["policies"][0]["routes"][0].update(object_matchers=[["a", "==", "b"]]),
            "[label, op, value]",
        ),
        (
            "mutes",
            lambda d: d["muteTimes"][0]["time_intervals"][1]["times"][0].update(start_time="8:00"),
            "bad HH:MM",
        ),
        (
            "mutes",
            lambda d: d["muteTimes"][0]["time_intervals"][0].update(location="Asia/Jakrta"),
            "unknown time zone",
        ),
        (
            "mutes",
            lambda d: d["muteTimes"][0]["time_intervals"][0].update(weekdays=["sabtu"]),
            "weekdays",
        ),
        (
            "cps",
            lambda d: d["contactPoints"][0]["receivers"][0]["settings"].pop("bottoken"),
            "requires 'bottoken'",
        ),
        (
            "cps",
            lambda d: d["contactPoints"][0]["receivers"][0].pop("uid"),
            "missing required 'uid'",
        ),
        # Grafana's Telegram key is disable_notifications (plural): the singular is ignored.
        (
            "cps",
            lambda d: d["contactPoints"][0]["receivers"][0]["settings"].update(
                disable_notification=True
            ),
            "unknown key 'disable_notification'",
        ),
        (
            "cps",
            lambda d: d["contactPoints"][0]["receivers"][0]["settings"].update(
                disable_notifications="yes"
            ),
            "not a boolean",
        ),
        (
            "cps",
            lambda d: d["contactPoints"][0]["receivers"][0]["settings"].update(
                parse_mode="Markdown2"
            ),
            "parse_mode",
        ),
        (
            "cps",
            lambda d: d["contactPoints"][1]["receivers"][0]["settings"].update(
                tlsConfig={"insecureSkipVerify": True}
            ),
            "not supported by Grafana 11.2.0",
        ),
        (
            "cps",
            lambda d: d["contactPoints"][1]["receivers"][0]["settings"].update(
                username="u", password="p"
            ),
            "only one is permitted",
        ),
        (
            "policies",
            lambda d: d["policies"][0]["routes"][1].update(active_time_intervals=["office"]),
            "not supported by Grafana 11.2.0",
        ),
    ],
)
def test_routing_validators_catch_each_mistake(
    files: dict[str, str], path: str, mutate: Any, expected: str
) -> None:
    cps = copy.deepcopy(_yaml(files, "alerting/pantau-contact-points.yaml"))
    mutes = copy.deepcopy(_yaml(files, "alerting/pantau-mute-timings.yaml"))
    policies = copy.deepcopy(_yaml(files, "alerting/pantau-policies.yaml"))
    mutate({"cps": cps, "mutes": mutes, "policies": policies}[path])
    problems = (
        validate_contact_points(cps)
        + validate_mute_timings(mutes)
        + validate_policies(
            policies, {"pantau-it", "pantau-webhook"}, {m["name"] for m in mutes["muteTimes"]}
        )
    )
    assert any(expected in p for p in problems), problems


def test_contact_point_validator_accepts_grafana_11_2_settings(files: dict[str, str]) -> None:
    cps = copy.deepcopy(_yaml(files, "alerting/pantau-contact-points.yaml"))
    cps["contactPoints"][0]["receivers"][0]["settings"].update(
        disable_notifications=True,
        disable_web_page_preview=True,
        protect_content=False,
        message_thread_id="42",
        parse_mode="MarkdownV2",
    )
    cps["contactPoints"][1]["receivers"][0]["settings"].update(maxAlerts="10", title="t")
    assert validate_contact_points(cps) == []


def test_datasource_and_dashboard_provider(files: dict[str, str]) -> None:
    ds = _yaml(files, "datasources/pantau.yaml")
    assert validate_datasources(ds) == []
    assert ds["datasources"][0]["uid"] == DATASOURCE_UID
    prov = _yaml(files, "dashboards/pantau.yaml")
    assert validate_dashboard_providers(prov) == []
    # The provider's path is where the dashboards directory is mounted in the container.
    assert prov["providers"][0]["options"]["path"].endswith("/dashboards/pantau")


# --------------------------------------------------------------------------- dashboards


def _vars_in(text: str) -> set[str]:
    found = set()
    for braced, bare, old in VAR_RE.findall(text):
        name = (braced or bare or old).split(".")[0]
        if not name.startswith("__"):
            found.add(name)
    return found


def dashboard_problems(board: dict[str, Any]) -> list[str]:
    problems = []
    defined = [v["name"] for v in board["templating"]["list"]]
    for i, var in enumerate(board["templating"]["list"]):
        if var["type"] == "query":
            used = _vars_in(json.dumps(var["query"]))
            if not used <= set(defined[:i]):
                problems.append(
                    f"variable {var['name']} uses later/undefined {used - set(defined[:i])}"
                )
            if var.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"variable {var['name']} does not use $datasource")
    ids = [p.get("id") for p in board["panels"]]
    if len(set(ids)) != len(ids) or not all(isinstance(i, int) for i in ids):
        problems.append(f"panel ids not unique integers: {ids}")
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        if panel.get("datasource") != {"type": "prometheus", "uid": "${datasource}"}:
            problems.append(f"{where}: datasource {panel.get('datasource')}")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no targets")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs) or not all(refs):
            problems.append(f"{where}: refIds {refs}")
        for t in targets:
            if not t.get("expr"):
                problems.append(f"{where}: target {t.get('refId')} has no expr")
            if t.get("datasource") != panel.get("datasource"):
                problems.append(f"{where}: target {t.get('refId')} datasource differs")
        undefined = _vars_in(json.dumps(panel)) - set(defined)
        if undefined:
            problems.append(f"{where}: undefined variables {undefined}")
        steps = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps")
        if not isinstance(steps, list) or not steps or steps[0].get("value") is not None:
            problems.append(f"{where}: thresholds.steps must start with a base step: {steps!r}")
        pos = panel.get("gridPos") or {}
        if pos.get("x", 0) + pos.get("w", 0) > 24 or pos.get("w", 0) <= 0 or pos.get("h", 0) <= 0:
            problems.append(f"{where}: gridPos {pos}")
        for x in range(pos.get("x", 0), pos.get("x", 0) + pos.get("w", 0)):
            for y in range(pos.get("y", 0), pos.get("y", 0) + pos.get("h", 0)):
                if (x, y) in cells:
                    problems.append(f"{where}: overlaps another panel at {(x, y)}")
                    break
                cells.add((x, y))
    return problems


def test_dashboards_are_sane(files: dict[str, str]) -> None:
    boards = _dashboards(files)
    assert set(boards) == {
        "pantau-fleet-overview",
        "pantau-station-detail",
        "pantau-collector-health",
        "pantau-availability",
    }
    uids = {b["uid"] for b in boards.values()}
    assert len(uids) == 4
    for name, board in boards.items():
        assert dashboard_problems(board) == [], name
        names = [v["name"] for v in board["templating"]["list"]]
        assert names[0] == "datasource"
        if name != "pantau-collector-health":
            assert names[1:4] == ["provinsi", "kabkota", "kecamatan"]
        for link in board["links"]:
            assert link["url"].split("/")[2] in uids


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b["panels"][1].update(id=b["panels"][0]["id"]), "ids not unique"),
        (lambda b: b["panels"][0].update(targets=[]), "no targets"),
        (lambda b: b["panels"][0].update(datasource=None), "datasource"),
        (
            lambda b: b["panels"][0]["targets"][0].update(expr='up{x="$nowhere"}'),
            "undefined variables",
        ),
        (lambda b: b["panels"][0]["gridPos"].update(x=20), "gridPos"),
    ],
)
def test_dashboard_sanity_catches_each_mistake(
    files: dict[str, str], mutate: Any, expected: str
) -> None:
    board = copy.deepcopy(_dashboards(files)["pantau-fleet-overview"])
    mutate(board)
    assert any(expected in p for p in dashboard_problems(board))


def test_status_grid_names_what_is_missing(files: dict[str, str]) -> None:
    fleet = _dashboards(files)["pantau-fleet-overview"]
    grid = next(p for p in fleet["panels"] if p["type"] == "table" and "x" in p["title"])
    assert grid["transformations"][0]["id"] == "groupingToMatrix"
    texts = {
        o["matcher"]["options"]: o["properties"][0]["value"][0]["options"]["0"]
        for o in grid["fieldConfig"]["overrides"]
        if o["properties"][0]["id"] == "mappings"
    }
    assert texts["fingerprint"] == {
        "text": "Pemindai sidik jari hilang / fingerprint scanner missing",
        "color": "red",
        "index": 0,
    }
    assert texts["camera"]["text"].startswith("Kamera hilang")
    assert set(texts) == {"online", "login", "fingerprint", "iris", "camera", "signature"}
    assert grid["fieldConfig"]["defaults"]["custom"]["cellOptions"] == {"type": "color-background"}
    timeline = next(p for p in fleet["panels"] if p["type"] == "state-timeline")
    assert "Readiness" in timeline["title"]


def test_alert_rules_link_to_existing_panels(files: dict[str, str]) -> None:
    boards = {b["uid"]: b for b in _dashboards(files).values()}
    doc = _yaml(files, "alerting/pantau-rules.yaml")
    for group in doc["groups"]:
        for rule in group["rules"]:
            board = boards[rule["dashboardUid"]]
            panel = next(p for p in board["panels"] if p["id"] == rule["panelId"])
            alert = next(a for a in default_alerts() if a.name == rule["title"])
            assert panel["title"] == alert.panel
