"""Validators for Grafana provisioning files, following Grafana's provisioning source.

No Grafana can run here, so these check what Grafana's file provisioning reads, for exactly the
Grafana version pantau deploys (``GRAFANA_VERSION``, 11.2.0: deploy/compose.yaml runs it). Each
table below names the Go source it follows, in grafana/grafana unless said otherwise, as of
Grafana 11.2 (and in grafana/alerting, the notifier library Grafana 11.2 vendors, as of its
August 2024 state, the 11.2 branch cut):

- alert rules: pkg/services/provisioning/alerting/rules_types.go (AlertRuleGroupV1,
  AlertRuleV1, QueryV1, NotificationSettingsV1, RecordV1); states from
  pkg/services/ngalert/models/alert_rule.go (NoDataStateFromString, ErrStateFromString, both
  with ``KeepLast`` since 11.0); the group interval from models.ValidateRuleGroupInterval (a
  non-zero multiple of the scheduler's 10 s base interval);
- expressions: pkg/expr/mathexp/reduce.go (GetSupportedReduceFuncs: ``median`` since 11.2, names
  compared case-insensitively), pkg/expr/threshold.go (supportedThresholdFuncs: ``gt``, ``lt``,
  ``within_range``, ``outside_range``; ``eq``/``ne``/``gte``/``lte`` and the ``*_included`` ranges
  came later);
- contact points: pkg/services/provisioning/alerting/contact_point_types.go (ContactPointV1,
  ReceiverV1), settings per integration from grafana/alerting receivers/<type>/config.go:
  telegram (``disable_notifications``, plural; ``parse_mode`` Markdown|MarkdownV2|HTML|None),
  email, webhook (no ``tlsConfig``/``hmacConfig``/``headers`` yet: added from October 2024);
- policies: pkg/services/provisioning/alerting/notification_policy_types.go (NotificationPolicyV1
  inlining the ngalert API's Route: pkg/services/ngalert/api/tooling/definitions);
- mute timings: pkg/services/provisioning/alerting/mute_times_types.go (MuteTimeV1, Prometheus
  time_interval syntax).

The grafana/grafana repository is too large to bring here whole, so its 11.2.0 tag could not be
checked out; the 11.2 state of the files above was established from their stored versions, the
release notes (CHANGELOG.md: "Support median in reduce expressions" is an 11.2.0 entry) and the
grafana/alerting history (webhook TLS, 2024-10-21; route active time intervals, 2024-08-09).

Keys introduced by later Grafana versions (``keepFiringFor``,
``missing_series_evals_to_resolve``, ``active_time_intervals``, webhook ``tlsConfig`` ...) are
reported as such: Grafana 11.2 ignores them silently, and that loss is what these checks
exist to catch. Unknown keys are reported (a typo loses a setting); required keys, types,
enumerations, durations and references (condition -> a refId, policies -> contact points and
mute timings) are checked; the ruler-API shape grafanalib's AlertRulev9 emits
(``grafana_alert: {...}``) is rejected.

Each validator returns a list of human-readable problems; empty means valid.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pantau.dashboards._grafana_json import GRAFANA_VERSION

DURATION_RE = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
UID_RE = re.compile(r"^[a-zA-Z0-9\-_]{1,40}$")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
ENV_REF_RE = re.compile(r"\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_DURATION_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
    "y": 31536000,
}

#: models.NoDataStateFromString / ErrStateFromString (KeepLast: Grafana 11.0+).
NO_DATA_STATES = {"NoData", "Alerting", "OK", "KeepLast"}
EXEC_ERR_STATES = {"Error", "Alerting", "OK", "KeepLast"}
#: The ngalert scheduler's default base interval ([unified_alerting] base_interval).
BASE_INTERVAL_SECONDS = 10
MATCH_OPS = {"=", "!=", "=~", "!~"}
EXPRESSION_TYPES = {"math", "reduce", "resample", "classic_conditions", "threshold", "sql"}
#: pkg/expr/threshold.go supportedThresholdFuncs (11.2), with the number of params each takes.
THRESHOLD_TYPES = {"gt": 1, "lt": 1, "within_range": 2, "outside_range": 2}
#: pkg/expr/mathexp/reduce.go GetSupportedReduceFuncs (11.2: median added).
REDUCERS = {"sum", "mean", "min", "max", "count", "last", "median"}
#: Reduce expression settings.mode (pkg/expr/commands.go: strict when empty).
REDUCE_MODES = {"", "dropNN", "replaceNN"}

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
#: AlertRuleV1 in Grafana 11.2 (``dasboardUid``: the grandfathered misspelling, still read).
RULE_KEYS = {
    "uid",
    "title",
    "condition",
    "data",
    "dasboardUid",
    "dashboardUid",
    "panelId",
    "noDataState",
    "execErrState",
    "for",
    "annotations",
    "labels",
    "isPaused",
    "notification_settings",
    "record",
}
#: Keys of later Grafana versions that 11.2 does not read (silently dropped there).
LATER_KEYS = {
    "keepFiringFor": "Grafana 12 (keep firing / Recovering state)",
    "missing_series_evals_to_resolve": "Grafana 12",
    # The notifier library parses it on routes from 2024-08-09 but applied it only from
    # 2024-09-06 (grafana/alerting cdc634f2): Grafana 11.3.
    "active_time_intervals": "Grafana 11.3",
    "tlsConfig": "Grafana 11.4 (webhook TLS)",
    "hmacConfig": "Grafana 12 (webhook HMAC signing)",
    "headers": "Grafana 12 (webhook extra headers)",
    "payload": "Grafana 12 (webhook payload template)",
}
QUERY_KEYS = {"refId", "queryType", "relativeTimeRange", "datasourceUid", "model"}
#: NotificationSettingsV1 in Grafana 11.2 (simplified routing).
NOTIFICATION_SETTINGS_KEYS = {
    "receiver",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "mute_time_intervals",
}
#: RecordV1 in Grafana 11.2 (``targetDatasourceUid`` came later).
RECORD_KEYS = {"metric", "from"}
CONTACT_POINT_KEYS = {"orgId", "name", "receivers"}
RECEIVER_KEYS = {"uid", "type", "settings", "disableResolveMessage"}
#: Required settings per integration type (grafana/alerting receivers/<type>/config.go).
RECEIVER_REQUIRED = {
    "telegram": {"bottoken", "chatid"},
    "email": {"addresses"},
    "webhook": {"url"},
    "prometheus-alertmanager": {"url"},
    "slack": {"recipient"},
}
#: Every setting each integration reads (same source; all other keys are ignored by Grafana).
RECEIVER_ALLOWED = {
    "telegram": {
        "bottoken",
        "chatid",
        "message_thread_id",
        "message",
        "parse_mode",
        "disable_web_page_preview",
        "protect_content",
        "disable_notifications",
    },
    "email": {"addresses", "singleEmail", "message", "subject"},
    "webhook": {
        "url",
        "httpMethod",
        "maxAlerts",
        "authorization_scheme",
        "authorization_credentials",
        "username",
        "password",
        "title",
        "message",
    },
}
#: telegram SupportedParseMode (compared case-insensitively).
TELEGRAM_PARSE_MODES = {"markdown", "markdownv2", "html", "none"}
#: The Route of the ngalert API as Grafana 11.2 reads it (match/match_re: deprecated, read).
POLICY_KEYS = {
    "orgId",
    "receiver",
    "group_by",
    "matchers",
    "object_matchers",
    "match",
    "match_re",
    "mute_time_intervals",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "continue",
    "routes",
}
MUTE_TIME_KEYS = {"orgId", "name", "time_intervals"}
TIME_INTERVAL_KEYS = {"times", "weekdays", "days_of_month", "months", "years", "location"}


def duration_seconds(text: str) -> float | None:
    """A Prometheus duration (``1h30m``) in seconds, or None when it is not one."""
    if not DURATION_RE.match(text):
        return None
    return sum(int(n) * _DURATION_SECONDS[u] for n, u in _DURATION_PART.findall(text))


def _unknown(obj: Mapping[str, Any], allowed: set[str], where: str) -> list[str]:
    out = []
    for key in obj:
        if key in allowed:
            continue
        if key in LATER_KEYS:
            out.append(
                f"{where}: {key!r} is not supported by Grafana {GRAFANA_VERSION} "
                f"(added in {LATER_KEYS[key]})"
            )
        else:
            out.append(f"{where}: unknown key {key!r}")
    return out


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


def validate_alert_rules(
    doc: Any, where: str = "rules", contact_points: set[str] | None = None
) -> list[str]:
    """``contact_points``: provisioned contact point names that notification_settings may name."""
    problems = _header(doc, where)
    if problems and not isinstance(doc, dict):
        return problems
    uids: set[str] = set()
    for gi, group in enumerate(doc.get("groups") or []):
        gw = f"{where}.groups[{gi}]"
        problems += _unknown(group, GROUP_KEYS, gw)
        problems += _require(group, ("name", "folder", "interval", "rules"), gw)
        seconds = duration_seconds(str(group.get("interval", "")))
        if seconds is None:
            problems.append(f"{gw}.interval: not a duration: {group.get('interval')!r}")
        elif seconds <= 0 or seconds % BASE_INTERVAL_SECONDS:
            problems.append(
                f"{gw}.interval: {group.get('interval')!r} must be a non-zero multiple of the "
                f"scheduler's {BASE_INTERVAL_SECONDS}s base interval"
            )
        if not isinstance(group.get("orgId", 1), int):
            problems.append(f"{gw}.orgId: not an integer")
        for ri, rule in enumerate(group.get("rules") or []):
            rw = f"{gw}.rules[{ri}]"
            problems += _validate_rule(rule, rw, contact_points)
            uid = rule.get("uid")
            if uid in uids:
                problems.append(f"{rw}.uid: duplicate {uid!r}")
            uids.add(uid)
    return problems


def _validate_rule(rule: Any, rw: str, contact_points: set[str] | None) -> list[str]:
    if not isinstance(rule, dict):
        return [f"{rw}: not a mapping"]
    problems = _unknown(rule, RULE_KEYS, rw)
    if "grafana_alert" in rule:
        problems.append(f"{rw}: ruler-API shape (grafana_alert) is not the file format")
    # A recording rule (record) has no condition; an alert rule needs one.
    required = (
        ("uid", "title", "data", "for")
        if "record" in rule
        else ("uid", "title", "condition", "data", "for")
    )
    problems += _require(rule, required, rw)
    problems += _notification_settings(rule.get("notification_settings"), rw, contact_points)
    record = rule.get("record")
    if record is not None:
        if not isinstance(record, dict):
            problems.append(f"{rw}.record: not a mapping")
        else:
            problems += _unknown(record, RECORD_KEYS, f"{rw}.record")
            problems += _require(record, ("metric", "from"), f"{rw}.record")
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
    if "panelId" in rule and "dashboardUid" not in rule and "dasboardUid" not in rule:
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
    if "condition" in rule and rule.get("condition") not in refs:
        problems.append(f"{rw}.condition: {rule.get('condition')!r} is not a refId of data {refs}")
    if isinstance(record, dict) and record.get("from") not in refs:
        problems.append(f"{rw}.record.from: {record.get('from')!r} is not a refId of data {refs}")
    return problems


def _notification_settings(ns: Any, rw: str, contact_points: set[str] | None) -> list[str]:
    if ns is None:
        return []
    where = f"{rw}.notification_settings"
    if not isinstance(ns, dict):
        return [f"{where}: not a mapping"]
    problems = _unknown(ns, NOTIFICATION_SETTINGS_KEYS, where)
    problems += _require(ns, ("receiver",), where)
    if contact_points is not None and ns.get("receiver") not in contact_points:
        problems.append(
            f"{where}.receiver: {ns.get('receiver')!r} is not a provisioned contact point"
        )
    for key in ("group_wait", "group_interval", "repeat_interval"):
        if key in ns and not DURATION_RE.match(str(ns[key])):
            problems.append(f"{where}.{key}: not a duration")
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
    if kind == "reduce":
        if str(model.get("reducer", "")).lower() not in REDUCERS:
            problems.append(
                f"{qw}.model.reducer: {model.get('reducer')!r} not in {sorted(REDUCERS)}"
            )
        mode = (model.get("settings") or {}).get("mode", "")
        if mode not in REDUCE_MODES:
            problems.append(f"{qw}.model.settings.mode: {mode!r} not in {sorted(REDUCE_MODES)}")
    if kind == "threshold":
        conds = model.get("conditions") or []
        if len(conds) != 1:
            problems.append(f"{qw}.model.conditions: threshold needs exactly one")
        for cond in conds:
            ev = cond.get("evaluator") or {}
            kind_ = ev.get("type")
            if kind_ not in THRESHOLD_TYPES:
                problems.append(
                    f"{qw}.model.conditions.evaluator.type: {kind_!r} not supported by Grafana "
                    f"{GRAFANA_VERSION} ({sorted(THRESHOLD_TYPES)})"
                )
            params = ev.get("params")
            if not isinstance(params, list) or not params:
                problems.append(f"{qw}.model.conditions.evaluator.params: a non-empty list")
            elif not all(isinstance(p, int | float) and not isinstance(p, bool) for p in params):
                problems.append(f"{qw}.model.conditions.evaluator.params: numbers only")
            elif kind_ in THRESHOLD_TYPES and len(params) < THRESHOLD_TYPES[kind_]:
                problems.append(
                    f"{qw}.model.conditions.evaluator.params: {kind_} needs {THRESHOLD_TYPES[kind_]}"
                )
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
            problems += _integration_settings(kind, settings, f"{rw}.settings")
            if "disableResolveMessage" in rec and not isinstance(
                rec["disableResolveMessage"], bool
            ):
                problems.append(f"{rw}.disableResolveMessage: not a boolean")
    return problems


def _integration_settings(kind: Any, settings: dict[str, Any], sw: str) -> list[str]:
    """What each notifier's NewConfig/ValidateConfig rejects (grafana/alerting receivers)."""
    problems = []
    if kind == "telegram":
        mode = settings.get("parse_mode")
        if mode is not None and str(mode).lower() not in TELEGRAM_PARSE_MODES:
            problems.append(f"{sw}.parse_mode: {mode!r}: Markdown, MarkdownV2, HTML or None")
        chat = settings.get("chatid")
        if chat is not None and (isinstance(chat, bool) or not isinstance(chat, str | int)):
            problems.append(f"{sw}.chatid: a string or an integer")
        flags = ("disable_web_page_preview", "protect_content", "disable_notifications")
        problems += [
            f"{sw}.{key}: not a boolean"
            for key in flags
            if key in settings and not isinstance(settings[key], bool)
        ]
    if (
        kind == "email"
        and "singleEmail" in settings
        and not isinstance(settings["singleEmail"], bool)
    ):
        problems.append(f"{sw}.singleEmail: not a boolean")
    if kind == "webhook":
        basic = settings.get("username") and settings.get("password")
        if basic and settings.get("authorization_credentials"):
            problems.append(
                f"{sw}: both HTTP basic authentication and an Authorization header; only one is permitted"
            )
        if "maxAlerts" in settings and not str(settings["maxAlerts"]).isdigit():
            problems.append(f"{sw}.maxAlerts: not a number")
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
