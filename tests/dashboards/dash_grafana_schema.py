"""Validators for Grafana provisioning files, written from Grafana's documentation.

No Grafana server can run here (TESTING.md), so these check what Grafana's file provisioning
reads, as documented in "Create and manage alerting resources using file provisioning" and
"Provisioning Grafana" (datasources, dashboard providers), and as the provisioning types in
grafana/grafana ``pkg/services/provisioning/alerting`` read them (AlertRuleGroupV1, AlertRuleV1,
QueryV1, ContactPointV1, ReceiverV1, MuteTimeV1, NotificationPolicyV1):

- unknown keys are reported (Grafana would silently ignore them: a typo loses a setting);
- required keys, types, enumerations (noDataState, execErrState), durations and references
  (condition -> a refId, policies -> contact points and mute timings) are checked;
- the ruler-API shape grafanalib's AlertRulev9 emits (``grafana_alert: {...}``) is rejected.

Each validator returns a list of human-readable problems; empty means valid.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

DURATION_RE = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
UID_RE = re.compile(r"^[a-zA-Z0-9\-_]{1,40}$")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
ENV_REF_RE = re.compile(r"\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)")

NO_DATA_STATES = {"NoData", "Alerting", "OK"}
EXEC_ERR_STATES = {"Error", "Alerting", "OK"}
MATCH_OPS = {"=", "!=", "=~", "!~"}
EXPRESSION_TYPES = {"math", "reduce", "resample", "classic_conditions", "threshold", "sql"}
THRESHOLD_TYPES = {"gt", "lt", "within_range", "outside_range", "gte", "lte", "eq", "ne"}
REDUCERS = {"last", "mean", "min", "max", "sum", "count"}

ALERTING_FILE_KEYS = {
    "apiVersion",
    "groups",
    "deleteRules",
    "contactPoints",
    "deleteContactPoints",
    "policies",
    "resetPolicies",
    "templates",
    "deleteTemplates",
    "muteTimes",
    "deleteMuteTimes",
}
GROUP_KEYS = {"orgId", "name", "folder", "interval", "rules"}
RULE_KEYS = {
    "uid",
    "title",
    "condition",
    "data",
    "dashboardUid",
    "panelId",
    "noDataState",
    "execErrState",
    "for",
    "keepFiringFor",
    "annotations",
    "labels",
    "isPaused",
    "notification_settings",
    "record",
}
QUERY_KEYS = {"refId", "queryType", "relativeTimeRange", "datasourceUid", "model"}
CONTACT_POINT_KEYS = {"orgId", "name", "receivers"}
RECEIVER_KEYS = {"uid", "type", "settings", "disableResolveMessage"}
#: Required settings per integration type (documented "<string, required>").
RECEIVER_REQUIRED = {
    "telegram": {"bottoken", "chatid"},
    "email": {"addresses"},
    "webhook": {"url"},
    "prometheus-alertmanager": {"url"},
    "slack": {"recipient"},
}
RECEIVER_ALLOWED = {
    "telegram": {"bottoken", "chatid", "message", "parse_mode", "disable_notification"},
    "email": {"addresses", "singleEmail", "message", "subject"},
    "webhook": {
        "url",
        "httpMethod",
        "username",
        "password",
        "authorization_scheme",
        "authorization_credentials",
        "maxAlerts",
        "title",
        "message",
    },
}
POLICY_KEYS = {
    "orgId",
    "receiver",
    "group_by",
    "matchers",
    "object_matchers",
    "mute_time_intervals",
    "active_time_intervals",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "continue",
    "routes",
}
MUTE_TIME_KEYS = {"orgId", "name", "time_intervals"}
TIME_INTERVAL_KEYS = {"times", "weekdays", "days_of_month", "months", "years", "location"}


def _unknown(obj: Mapping[str, Any], allowed: set[str], where: str) -> list[str]:
    return [f"{where}: unknown key {k!r}" for k in obj if k not in allowed]


def _require(obj: Mapping[str, Any], keys: Iterable[str], where: str) -> list[str]:
    return [f"{where}: missing required {k!r}" for k in keys if obj.get(k) in (None, "", [])]


def _is_str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _header(doc: Any, where: str) -> list[str]:
    if not isinstance(doc, dict):
        return [f"{where}: not a mapping"]
    problems = _unknown(doc, ALERTING_FILE_KEYS, where)
    if doc.get("apiVersion") != 1:
        problems.append(f"{where}: apiVersion must be 1")
    return problems


# --------------------------------------------------------------------------- alert rules


def validate_alert_rules(doc: Any, where: str = "rules") -> list[str]:
    problems = _header(doc, where)
    if problems and not isinstance(doc, dict):
        return problems
    uids: set[str] = set()
    for gi, group in enumerate(doc.get("groups") or []):
        gw = f"{where}.groups[{gi}]"
        problems += _unknown(group, GROUP_KEYS, gw)
        problems += _require(group, ("name", "folder", "interval", "rules"), gw)
        if not DURATION_RE.match(str(group.get("interval", ""))):
            problems.append(f"{gw}.interval: not a duration: {group.get('interval')!r}")
        if not isinstance(group.get("orgId", 1), int):
            problems.append(f"{gw}.orgId: not an integer")
        for ri, rule in enumerate(group.get("rules") or []):
            rw = f"{gw}.rules[{ri}]"
            problems += _validate_rule(rule, rw)
            uid = rule.get("uid")
            if uid in uids:
                problems.append(f"{rw}.uid: duplicate {uid!r}")
            uids.add(uid)
    return problems


def _validate_rule(rule: Any, rw: str) -> list[str]:
    if not isinstance(rule, dict):
        return [f"{rw}: not a mapping"]
    problems = _unknown(rule, RULE_KEYS, rw)
    if "grafana_alert" in rule:
        problems.append(f"{rw}: ruler-API shape (grafana_alert) is not the file format")
    problems += _require(rule, ("uid", "title", "condition", "data", "for"), rw)
    if not UID_RE.match(str(rule.get("uid", ""))):
        problems.append(f"{rw}.uid: must be 1-40 of [a-zA-Z0-9-_]")
    if not DURATION_RE.match(str(rule.get("for", ""))):
        problems.append(f"{rw}.for: not a duration: {rule.get('for')!r}")
    if rule.get("noDataState", "NoData") not in NO_DATA_STATES:
        problems.append(f"{rw}.noDataState: {rule.get('noDataState')!r} not in {NO_DATA_STATES}")
    if rule.get("execErrState", "Alerting") not in EXEC_ERR_STATES:
        problems.append(f"{rw}.execErrState: {rule.get('execErrState')!r} not in {EXEC_ERR_STATES}")
    for key in ("labels", "annotations"):
        if key in rule and not _is_str_map(rule[key]):
            problems.append(f"{rw}.{key}: must map strings to strings")
    # Labels are environment-interpolated by Grafana ($VAR): a '$' would vanish.
    for k, v in (rule.get("labels") or {}).items():
        if "$" in v:
            problems.append(f"{rw}.labels.{k}: '$' is env-interpolated in labels")
    for k, v in (rule.get("annotations") or {}).items():
        if "${" in v:
            problems.append(f"{rw}.annotations.{k}: '${{' is not a Go template")
    if "panelId" in rule and not isinstance(rule["panelId"], int):
        problems.append(f"{rw}.panelId: not an integer")
    if "panelId" in rule and "dashboardUid" not in rule:
        problems.append(f"{rw}: panelId without dashboardUid")
    refs: list[str] = []
    data = rule.get("data") or []
    if not isinstance(data, list):
        return [*problems, f"{rw}.data: not a list"]
    for qi, query in enumerate(data):
        qw = f"{rw}.data[{qi}]"
        problems += _validate_query(query, qw, refs)
        refs.append(query.get("refId", ""))
    if len(set(refs)) != len(refs):
        problems.append(f"{rw}.data: duplicate refId in {refs}")
    if rule.get("condition") not in refs:
        problems.append(f"{rw}.condition: {rule.get('condition')!r} is not a refId of data {refs}")
    return problems


def _validate_query(query: Any, qw: str, earlier: list[str]) -> list[str]:
    if not isinstance(query, dict):
        return [f"{qw}: not a mapping"]
    problems = _unknown(query, QUERY_KEYS, qw)
    problems += _require(query, ("refId", "datasourceUid", "model"), qw)
    rtr = query.get("relativeTimeRange")
    if not isinstance(rtr, dict) or set(rtr) != {"from", "to"}:
        problems.append(f"{qw}.relativeTimeRange: must be {{from, to}} (seconds)")
    elif not all(isinstance(rtr[k], int) and rtr[k] >= 0 for k in ("from", "to")):
        problems.append(f"{qw}.relativeTimeRange: from/to must be non-negative integers")
    elif rtr["from"] < rtr["to"]:
        problems.append(f"{qw}.relativeTimeRange: from must be >= to")
    model = query.get("model")
    if not isinstance(model, dict):
        return [*problems, f"{qw}.model: not a mapping"]
    if model.get("refId") != query.get("refId"):
        problems.append(f"{qw}.model.refId: differs from refId")
    if query.get("datasourceUid") == "__expr__":
        problems += _validate_expression(model, qw, earlier)
    else:
        if not model.get("expr"):
            problems.append(f"{qw}.model.expr: a Prometheus query needs expr")
        ds = model.get("datasource") or {}
        if ds.get("uid") != query.get("datasourceUid"):
            problems.append(f"{qw}.model.datasource.uid: differs from datasourceUid")
    return problems


def _validate_expression(model: dict[str, Any], qw: str, earlier: list[str]) -> list[str]:
    problems = []
    kind = model.get("type")
    if kind not in EXPRESSION_TYPES:
        return [f"{qw}.model.type: {kind!r} not an expression type"]
    if (model.get("datasource") or {}).get("uid") != "__expr__":
        problems.append(f"{qw}.model.datasource: expressions use uid __expr__")
    if kind in {"reduce", "threshold", "resample"} and model.get("expression") not in earlier:
        problems.append(
            f"{qw}.model.expression: {model.get('expression')!r} is not an earlier refId"
        )
    if kind == "reduce" and model.get("reducer") not in REDUCERS:
        problems.append(f"{qw}.model.reducer: {model.get('reducer')!r}")
    if kind == "threshold":
        conds = model.get("conditions") or []
        if len(conds) != 1:
            problems.append(f"{qw}.model.conditions: threshold needs exactly one")
        for cond in conds:
            ev = cond.get("evaluator") or {}
            if ev.get("type") not in THRESHOLD_TYPES:
                problems.append(f"{qw}.model.conditions.evaluator.type: {ev.get('type')!r}")
            params = ev.get("params")
            if not isinstance(params, list) or not params:
                problems.append(f"{qw}.model.conditions.evaluator.params: a non-empty list")
            elif not all(isinstance(p, int | float) for p in params):
                problems.append(f"{qw}.model.conditions.evaluator.params: numbers only")
    if kind == "math" and not model.get("expression"):
        problems.append(f"{qw}.model.expression: math needs an expression")
    return problems


# --------------------------------------------------------------------------- contact points


def validate_contact_points(doc: Any, where: str = "contactPoints") -> list[str]:
    problems = _header(doc, where)
    uids: set[str] = set()
    for ci, cp in enumerate(doc.get("contactPoints") or []):
        cw = f"{where}.contactPoints[{ci}]"
        problems += _unknown(cp, CONTACT_POINT_KEYS, cw)
        problems += _require(cp, ("name", "receivers"), cw)
        for ri, rec in enumerate(cp.get("receivers") or []):
            rw = f"{cw}.receivers[{ri}]"
            problems += _unknown(rec, RECEIVER_KEYS, rw)
            problems += _require(rec, ("uid", "type", "settings"), rw)
            if rec.get("uid") in uids:
                problems.append(f"{rw}.uid: duplicate {rec.get('uid')!r}")
            uids.add(rec.get("uid"))
            kind = rec.get("type")
            settings = rec.get("settings") or {}
            if not isinstance(settings, dict):
                problems.append(f"{rw}.settings: not a mapping")
                continue
            for key in RECEIVER_REQUIRED.get(kind, set()):
                if not settings.get(key):
                    problems.append(f"{rw}.settings: {kind} requires {key!r}")
            if kind in RECEIVER_ALLOWED:
                problems += _unknown(settings, RECEIVER_ALLOWED[kind], f"{rw}.settings")
            if "disableResolveMessage" in rec and not isinstance(
                rec["disableResolveMessage"], bool
            ):
                problems.append(f"{rw}.disableResolveMessage: not a boolean")
    return problems


def secret_settings(doc: Any) -> dict[str, str]:
    """``"cp/uid.key" -> value`` for every setting that looks secret (token, password, ...)."""
    out = {}
    for cp in doc.get("contactPoints") or []:
        for rec in cp.get("receivers") or []:
            for key, value in (rec.get("settings") or {}).items():
                if re.search(r"token|password|credentials|secret|url|chatid|addresses", key, re.I):
                    out[f"{cp.get('name')}/{rec.get('uid')}.{key}"] = str(value)
    return out


# --------------------------------------------------------------------------- mute timings


def validate_mute_timings(doc: Any, where: str = "muteTimes") -> list[str]:
    problems = _header(doc, where)
    names: set[str] = set()
    for mi, mt in enumerate(doc.get("muteTimes") or []):
        mw = f"{where}.muteTimes[{mi}]"
        problems += _unknown(mt, MUTE_TIME_KEYS, mw)
        problems += _require(mt, ("name", "time_intervals"), mw)
        if mt.get("name") in names:
            problems.append(f"{mw}.name: duplicate {mt.get('name')!r}")
        names.add(mt.get("name"))
        for ti, interval in enumerate(mt.get("time_intervals") or []):
            problems += validate_time_interval(interval, f"{mw}.time_intervals[{ti}]")
    return problems


def validate_time_interval(interval: Any, iw: str) -> list[str]:
    """Prometheus/Alertmanager ``time_interval`` (Grafana mute timings use the same)."""
    if not isinstance(interval, dict):
        return [f"{iw}: not a mapping"]
    problems = _unknown(interval, TIME_INTERVAL_KEYS, iw)
    for ti, t in enumerate(interval.get("times") or []):
        if set(t) != {"start_time", "end_time"}:
            problems.append(f"{iw}.times[{ti}]: needs exactly start_time and end_time")
            continue
        start, end = t["start_time"], t["end_time"]
        if not (TIME_RE.match(start) and TIME_RE.match(end)) or start == "24:00":
            problems.append(f"{iw}.times[{ti}]: bad HH:MM {start!r}-{end!r}")
        elif start >= end:
            problems.append(f"{iw}.times[{ti}]: start {start} not before end {end}")
    for wi, day in enumerate(interval.get("weekdays") or []):
        parts = str(day).split(":")
        if len(parts) > 2 or any(p not in WEEKDAYS for p in parts):
            problems.append(f"{iw}.weekdays[{wi}]: {day!r}")
    loc = interval.get("location")
    if loc is not None:
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(loc)
        except (KeyError, ValueError):
            problems.append(f"{iw}.location: unknown time zone {loc!r}")
    return problems


# --------------------------------------------------------------------------- policies


def validate_policies(
    doc: Any, contact_points: set[str], mute_timings: set[str], where: str = "policies"
) -> list[str]:
    problems = _header(doc, where)
    policies = doc.get("policies") or []
    if not policies:
        problems.append(f"{where}.policies: empty")
    for pi, root in enumerate(policies):
        pw = f"{where}.policies[{pi}]"
        problems += _require(root, ("receiver",), pw)
        if root.get("mute_time_intervals"):
            problems.append(f"{pw}: the root policy cannot have mute timings")
        for key in ("matchers", "object_matchers"):
            if root.get(key):
                problems.append(f"{pw}: the root policy cannot have {key}")
        problems += _validate_route(root, pw, contact_points, mute_timings, root=True)
    return problems


def _validate_route(
    route: Any, rw: str, contact_points: set[str], mute_timings: set[str], *, root: bool = False
) -> list[str]:
    if not isinstance(route, dict):
        return [f"{rw}: not a mapping"]
    allowed = POLICY_KEYS if root else POLICY_KEYS - {"orgId"}
    problems = _unknown(route, allowed, rw)
    receiver = route.get("receiver")
    if receiver is not None and receiver not in contact_points:
        problems.append(f"{rw}.receiver: {receiver!r} is not a provisioned contact point")
    for key in ("group_wait", "group_interval", "repeat_interval"):
        if key in route and not DURATION_RE.match(str(route[key])):
            problems.append(f"{rw}.{key}: not a duration")
    for name in route.get("mute_time_intervals") or []:
        if name not in mute_timings:
            problems.append(f"{rw}.mute_time_intervals: {name!r} is not a provisioned mute timing")
    for mi, matcher in enumerate(route.get("object_matchers") or []):
        if (
            not isinstance(matcher, list)
            or len(matcher) != 3
            or matcher[1] not in MATCH_OPS
            or not all(isinstance(x, str) for x in matcher)
        ):
            problems.append(f"{rw}.object_matchers[{mi}]: must be [label, op, value]")
        elif matcher[1] in {"=~", "!~"}:
            try:
                re.compile(matcher[2])
            except re.error:
                problems.append(f"{rw}.object_matchers[{mi}]: bad regex")
    if "continue" in route and not isinstance(route["continue"], bool):
        problems.append(f"{rw}.continue: not a boolean")
    for ci, child in enumerate(route.get("routes") or []):
        problems += _validate_route(child, f"{rw}.routes[{ci}]", contact_points, mute_timings)
    return problems


# --------------------------------------------------------------------------- datasources and providers

DATASOURCE_KEYS = {
    "name",
    "type",
    "uid",
    "access",
    "url",
    "orgId",
    "isDefault",
    "editable",
    "jsonData",
    "secureJsonData",
    "basicAuth",
    "basicAuthUser",
    "user",
    "database",
    "withCredentials",
    "version",
}
PROVIDER_KEYS = {
    "name",
    "orgId",
    "folder",
    "folderUid",
    "type",
    "disableDeletion",
    "allowUiUpdates",
    "updateIntervalSeconds",
    "options",
}


def validate_datasources(doc: Any, where: str = "datasources") -> list[str]:
    problems = [] if doc.get("apiVersion") == 1 else [f"{where}: apiVersion must be 1"]
    problems += _unknown(doc, {"apiVersion", "datasources", "deleteDatasources", "prune"}, where)
    defaults = 0
    for di, ds in enumerate(doc.get("datasources") or []):
        dw = f"{where}.datasources[{di}]"
        problems += _unknown(ds, DATASOURCE_KEYS, dw)
        problems += _require(ds, ("name", "type", "access", "url"), dw)
        if ds.get("access") not in {"proxy", "direct"}:
            problems.append(f"{dw}.access: proxy or direct")
        defaults += bool(ds.get("isDefault"))
    if defaults > 1:
        problems.append(f"{where}: more than one isDefault")
    return problems


def validate_dashboard_providers(doc: Any, where: str = "providers") -> list[str]:
    problems = [] if doc.get("apiVersion") == 1 else [f"{where}: apiVersion must be 1"]
    problems += _unknown(doc, {"apiVersion", "providers"}, where)
    for pi, prov in enumerate(doc.get("providers") or []):
        pw = f"{where}.providers[{pi}]"
        problems += _unknown(prov, PROVIDER_KEYS, pw)
        problems += _require(prov, ("name", "type", "options"), pw)
        if prov.get("type") != "file":
            problems.append(f"{pw}.type: file")
        if not (prov.get("options") or {}).get("path"):
            problems.append(f"{pw}.options.path: required")
    return problems
