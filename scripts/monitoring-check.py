#!/usr/bin/env python3
"""Offline checks of the operator files no Kubernetes schema covers (run by scripts/k8s-check.sh).

- deploy/kubernetes/monitoring/prometheusrule.yaml: a PrometheusRule is the Prometheus
  Operator's CRD, absent from the Kubernetes schemas kubernetes-validate bundles, so its
  structure is checked here: every rule has alert, expr, for, labels.severity and a summary,
  and the alerts the operators expect are there.
- deploy/grafana/switchboard.json: parses as a dashboard, every panel has its queries.
- In both, every metric and label an expression names is one the services export: the names
  are read from the code (services/telemetry/src/metrics), so a renamed metric fails here
  instead of leaving a silent panel or an alert that can never fire.
"""
import json
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy/kubernetes/monitoring/prometheusrule.yaml"
DASHBOARD = ROOT / "deploy/grafana/switchboard.json"
METRICS = ROOT / "services/telemetry/src/metrics"
# Series Prometheus makes itself, and labels every scrape or histogram adds.
PROMETHEUS_SERIES = {"up"}
PROMETHEUS_LABELS = {"job", "instance", "le", "__name__"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "Inf", "NaN"}
SEVERITIES = {"critical", "warning", "info"}
# What each expected alert must watch: the metric its expression has to use.
EXPECTED_ALERTS = {
    "SwitchboardBreakerOpen": "breaker_state",
    "SwitchboardRequestsLagGrowing": "offsets_committed_total",
    "SwitchboardDeadLetters": "dead_lettered_total",
    "SwitchboardHigh5xxRate": "http_requests_total",
}

errors = []


def fail(msg):
    errors.append(msg)


def without_tests(text):
    """The source before its unit tests, so metrics registered only by tests do not count."""
    return text.split("#[cfg(test)]", 1)[0]


def exported_series():
    """Series names the code exports, as Prometheus sees them (OpenMetrics suffixes included)."""
    source = without_tests((METRICS / "mod.rs").read_text())
    inner = re.search(r"struct Inner \{(.*?)\n\}", source, re.S)
    if not inner:
        sys.exit("monitoring-check: struct Inner not found in services/telemetry/src/metrics/mod.rs")
    kinds = {}
    for field, ty in re.findall(r"^\s*(\w+): (.+),\s*$", inner.group(1), re.M):
        kinds[field] = "histogram" if "Histogram" in ty else "counter" if "Counter" in ty else "gauge" if "Gauge" in ty else "other"
    series = set()
    call = re.compile(r'register(_with_unit)?\(\s*"(\w+)",\s*"[^"]*",\s*(?:Unit::(\w+),\s*)?([\w.]+)', re.S)
    sources = [source] + [without_tests(p.read_text()) for p in (ROOT / "services").rglob("*.rs")
                          if "/tests/" not in str(p) and p != METRICS / "mod.rs"]
    for text in sources:
        for _, name, unit, value in call.findall(text):
            if unit:
                name += "_" + unit.lower()
            field = value.removeprefix("inner.").removesuffix(".clone")
            kind = kinds.get(field, "info" if value == "build_info" else "unknown")
            if kind == "counter":
                series.add(name + "_total")
            elif kind == "histogram":
                series.update(name + s for s in ("_bucket", "_sum", "_count"))
            elif kind == "info":
                series.add(name + "_info")
            elif kind == "gauge":
                series.add(name)
            else:  # registered outside the shared families: its type is not known here
                series.update({name, name + "_total"})
    if not series:
        sys.exit("monitoring-check: no metric registrations found in the code")
    return series


def exported_labels():
    text = without_tests((METRICS / "labels.rs").read_text())
    labels = set()
    for body in re.findall(r"struct \w+Labels \{(.*?)\}", text, re.S):
        labels.update(re.findall(r"(\w+):", body))
    labels.update(re.findall(r'\("(\w+)"\.to_owned\(\)', (METRICS / "mod.rs").read_text()))  # build_info's
    return labels | PROMETHEUS_LABELS


def names_in(expr):
    """(series names, label names) a PromQL expression uses."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    labels = set()
    for matchers in re.findall(r"\{([^}]*)\}", e):
        labels.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    e = re.sub(r"\{[^}]*\}", " ", e)
    grouping = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)"
    for group in re.findall(grouping, e):
        labels.update(x.strip() for x in group.split(",") if x.strip())
    e = re.sub(grouping, " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\$\{?\w+\}?", " ", e)
    series = set()
    for name, call in re.findall(r"(?<![\w.])([A-Za-z_:][\w:]*)\s*(\()?", e):
        if not call and name not in KEYWORDS and name not in {"by", "without", "on", "ignoring", "group_left", "group_right"}:
            series.add(name)
    return series, labels


def check_expr(where, expr, series, labels):
    used, used_labels = names_in(expr)
    if not used:
        fail(f"{where}: names no metric: {expr}")
    for name in sorted(used - series - PROMETHEUS_SERIES):
        fail(f"{where}: metric {name} is not exported by the services")
    for label in sorted(used_labels - labels):
        fail(f"{where}: label {label} is on no exported metric")
    return used


def check_rules(series, labels):
    docs = [d for d in yaml.safe_load_all(RULES.read_text()) if d]
    if len(docs) != 1:
        return fail(f"{RULES.name}: {len(docs)} documents, expected one PrometheusRule")
    doc = docs[0]
    if doc.get("apiVersion") != "monitoring.coreos.com/v1" or doc.get("kind") != "PrometheusRule":
        fail(f"{RULES.name}: not a monitoring.coreos.com/v1 PrometheusRule")
    if not (doc.get("metadata") or {}).get("name"):
        fail(f"{RULES.name}: metadata.name missing")
    groups = (doc.get("spec") or {}).get("groups") or []
    if not groups:
        return fail(f"{RULES.name}: spec.groups is empty")
    seen = {}
    for g in groups:
        if not g.get("name") or not g.get("rules"):
            fail(f"{RULES.name}: a group without name or rules")
        for r in g.get("rules") or []:
            name = r.get("alert")
            if not name:
                fail(f"{RULES.name}: a rule without alert (recording rules are not expected here): {r}")
                continue
            if name in seen:
                fail(f"{RULES.name}: alert {name} twice")
            for key in ("expr", "for"):
                if not r.get(key) and r.get(key) != "0m":
                    fail(f"{RULES.name}: {name} has no {key}")
            if not re.fullmatch(r"\d+[smhdwy]", str(r.get("for", ""))):
                fail(f"{RULES.name}: {name}: 'for' is not a duration: {r.get('for')}")
            if (r.get("labels") or {}).get("severity") not in SEVERITIES:
                fail(f"{RULES.name}: {name}: labels.severity must be one of {sorted(SEVERITIES)}")
            if not (r.get("annotations") or {}).get("summary"):
                fail(f"{RULES.name}: {name} has no annotations.summary")
            seen[name] = check_expr(f"{RULES.name}: {name}", str(r.get("expr", "")), series, labels)
    for name, metric in EXPECTED_ALERTS.items():
        if name not in seen:
            fail(f"{RULES.name}: alert {name} is missing")
        elif metric not in seen[name]:
            fail(f"{RULES.name}: {name} does not use {metric}")
    kustomization = yaml.safe_load((RULES.parent / "kustomization.yaml").read_text())
    if RULES.name not in (kustomization.get("resources") or []):
        fail(f"{RULES.parent}/kustomization.yaml does not list {RULES.name}")
    return len(seen)


def check_dashboard(series, labels):
    try:
        dash = json.loads(DASHBOARD.read_text())
    except json.JSONDecodeError as e:
        return fail(f"{DASHBOARD.name}: not JSON: {e}")
    for key in ("title", "uid", "panels", "schemaVersion"):
        if key not in dash:
            fail(f"{DASHBOARD.name}: no {key}")
    queries = 0
    ids = set()
    for p in dash.get("panels", []):
        where = f"{DASHBOARD.name}: panel '{p.get('title')}'"
        if p.get("id") in ids:
            fail(f"{where}: id {p.get('id')} used twice")
        ids.add(p.get("id"))
        if "gridPos" not in p:
            fail(f"{where}: no gridPos")
        if p.get("type") == "row":
            continue
        targets = p.get("targets") or []
        if not targets:
            fail(f"{where}: no queries")
        for t in targets:
            queries += 1
            check_expr(where, t.get("expr", ""), series, labels)
    for var in (dash.get("templating") or {}).get("list", []):
        query = var.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", str(query or ""))
        if var.get("type") == "query":
            if not m:
                fail(f"{DASHBOARD.name}: variable {var.get('name')}: expected label_values(metric, label), got {query}")
                continue
            check_expr(f"{DASHBOARD.name}: variable {var.get('name')}", m.group(1), series, labels)
            if m.group(2) not in labels:
                fail(f"{DASHBOARD.name}: variable {var.get('name')}: label {m.group(2)} is on no exported metric")
    return queries


def main():
    series, labels = exported_series(), exported_labels()
    alerts = check_rules(series, labels)
    queries = check_dashboard(series, labels)
    if errors:
        for e in errors:
            print(f"monitoring-check: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"monitoring-check: {alerts} alerts and {queries} dashboard queries use only the "
          f"{len(series)} exported series and their labels")


if __name__ == "__main__":
    main()
