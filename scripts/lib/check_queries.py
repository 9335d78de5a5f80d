#!/usr/bin/python3
"""Checks the observability kit against what the services really export.

    check_queries.py SCRAPE.prom... -- ALERTS.yml DASHBOARD.json [--live http://HOST:PORT]

SCRAPE.prom are /metrics texts scraped from running services. For every query
of the alert rules and of the dashboard's panels:
  - every metric it names (rmon_*, tq_*, pm_*) is a sample name a service
    exported (histograms: NAME_bucket, NAME_sum, NAME_count);
  - every label it matches on exists on that metric, and an equality match on
    a label with a fixed set of values (state, reason, op, ...) names a value
    the service exported;
  - it names at least one metric (a misspelled prefix cannot pass unnoticed);
  - the dashboard's queries parse as PromQL: `promtool check rules` on a
    temporary file that records each one (Grafana's $__ variables replaced).
With --live, a real Prometheus scraping the services (scripts/lib/stack.sh
stack_prometheus) loaded every rule and evaluates each without error, and
runs every dashboard query without error.
Also: every alert has a unit test that expects it to fire
(deploy/prometheus/alerts_test.yml). Exit status 1 with each problem named.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml  # Debian: python3-yaml

OURS = re.compile(r"\b((?:rmon|tq|pm)_[a-zA-Z0-9_]+)\b(\s*\{[^}]*\})?")
MATCHER = re.compile(r"""([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"([^"]*)"|'([^']*)')""")
# by (...), without (...), on (...), ignoring (...), group_left (...), group_right (...)
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
# A regex matcher's value that is only alternatives of plain values: each is checked.
PLAIN_ALTERNATIVES = re.compile(r"^[A-Za-z0-9_.:-]+(\|[A-Za-z0-9_.:-]+)*$")
# Series Prometheus itself writes for each target.
PROMETHEUS_OWN = re.compile(r"\bup\s*\{")
PROMETHEUS_OWN_SELECTOR = re.compile(r"\bup\s*(\{[^}]*\})")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s")
# Labels every scraped series gets, and labels whose values are configured
# (group and pool names), not enumerated by the code.
TARGET_LABELS = {"job", "instance"}
CONFIGURED = {"group", "pool"}
JOBS = set()  # the scrape jobs of deploy/prometheus/prometheus.yml


def scraped(paths):
    labels = {}  # metric -> {label: set(values)}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = SAMPLE.match(line)
                if not m:
                    continue
                entry = labels.setdefault(m.group(1), {})
                for name, _, dq, sq in MATCHER.findall(m.group(2) or ""):
                    entry.setdefault(name, set()).add(dq or sq)
    return labels


def check_query(where, expr, metrics, problems):
    found = OURS.findall(expr)
    for selector in PROMETHEUS_OWN_SELECTOR.findall(expr):
        for label, op, dq, sq in MATCHER.findall(selector):
            value = dq or sq
            values = value.split("|") if op in ("=~", "!~") and PLAIN_ALTERNATIVES.match(value) else [value]
            for v in values if label == "job" else []:
                if v not in JOBS:
                    problems.append(f"{where}: job \"{v}\" is not a scrape job of prometheus.yml")
    if not found and not PROMETHEUS_OWN.search(expr):
        problems.append(f"{where}: names none of the services' metrics: {expr}")
    labels_seen = set(TARGET_LABELS)
    for name, selector in found:
        if name not in metrics:
            problems.append(f"{where}: {name} is not exported by any service")
            continue
        labels_seen |= set(metrics[name])
        for label, op, dq, sq in MATCHER.findall(selector or ""):
            value = dq or sq
            values = value.split("|") if op in ("=~", "!~") and PLAIN_ALTERNATIVES.match(value) else \
                [value] if op in ("=", "!=") else []
            if label == "job":
                for v in values:
                    if v not in JOBS:
                        problems.append(f"{where}: job \"{v}\" is not a scrape job of prometheus.yml")
                continue
            if label in TARGET_LABELS:
                continue
            known = metrics[name].get(label)
            if known is None:
                problems.append(f"{where}: {name} has no label {label}")
                continue
            for v in values:
                if v not in known and label not in CONFIGURED:
                    problems.append(f"{where}: {name}{{{label}=\"{v}\"}} is never exported "
                                    f"(values: {', '.join(sorted(known))})")
    for grouping in GROUPING.findall(expr):
        for label in filter(None, (x.strip() for x in grouping.split(","))):
            if label not in labels_seen:
                problems.append(f"{where}: groups or matches on label {label}, which none of its "
                                f"metrics has")


def promql_problems(exprs):
    """The PromQL parse errors of `exprs`, by promtool."""
    rules = []
    for i, e in enumerate(exprs):
        e = re.sub(r"\$__\w+", "1m", e)  # Grafana's interval variables
        rules.append({"record": f"rmon:dashboard_query_{i}", "expr": e})
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
        f.flush()
        run = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
    if run.returncode == 0:
        return []
    return [f"dashboard queries do not parse: {run.stdout.strip()} {run.stderr.strip()}"]


def api(base, path, **params):
    url = f"{base}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:  # a refused query: its error is in the body
        return json.load(e)


def live_problems(base, rules, exprs):
    """What a real Prometheus says of the rules and the dashboard's queries."""
    problems = []
    # Until every rule has been evaluated at least once (a few seconds).
    deadline = time.monotonic() + 30
    while True:
        loaded = [r for g in api(base, "rules")["data"]["groups"] for r in g["rules"]]
        evaluated = [r for r in loaded if not r.get("lastEvaluation", "").startswith("0001")]
        if len(evaluated) == len(rules) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    names = {r["name"] for r in loaded}
    for r in rules:
        if r["alert"] not in names:
            problems.append(f"live: Prometheus did not load alert {r['alert']}")
    for r in loaded:
        if r.get("health") != "ok":
            problems.append(f"live: alert {r['name']} is {r.get('health')}: {r.get('lastError')}")
    for e in exprs:
        reply = api(base, "query", query=e)
        if reply.get("status") != "success":
            problems.append(f"live: query failed ({reply.get('error')}): {e}")
    return problems


def main(argv):
    if "--" not in argv:
        sys.exit(__doc__)
    cut = argv.index("--")
    metrics = scraped(argv[:cut])
    rules_path, dashboard_path = argv[cut + 1:cut + 3]
    live = argv[cut + 4] if argv[cut + 3:cut + 4] == ["--live"] else None
    problems = []
    queries = 0

    with open(os.path.join(os.path.dirname(rules_path), "prometheus.yml"), encoding="utf-8") as f:
        JOBS.update(job["job_name"] for job in yaml.safe_load(f)["scrape_configs"])
    with open(rules_path, encoding="utf-8") as f:
        rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]
    for r in rules:
        check_query(f"alert {r['alert']}", r["expr"], metrics, problems)
        queries += 1

    tests_path = os.path.join(os.path.dirname(rules_path), "alerts_test.yml")
    with open(tests_path, encoding="utf-8") as f:
        tests = yaml.safe_load(f)["tests"]
    fired = {c["alertname"] for t in tests for c in t.get("alert_rule_test", []) if c.get("exp_alerts")}
    silent = {c["alertname"] for t in tests for c in t.get("alert_rule_test", []) if not c.get("exp_alerts")}
    for r in rules:
        if r["alert"] not in fired:
            problems.append(f"alert {r['alert']}: no test in {tests_path} expects it to fire")
        if r["alert"] not in silent:
            problems.append(f"alert {r['alert']}: no test in {tests_path} expects it silent")

    with open(dashboard_path, encoding="utf-8") as f:
        dashboard = json.load(f)
    panels = []
    for panel in dashboard["panels"]:  # a collapsed row holds its panels
        panels += [panel] + panel.get("panels", [])
    for panel in panels:
        for target in panel.get("targets", []):
            check_query(f"panel '{panel['title']}' {target['refId']}", target["expr"], metrics, problems)
            queries += 1

    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    problems += promql_problems(exprs)
    if live:
        problems += live_problems(live, rules, exprs)

    for p in problems:
        print(f"check-queries: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"check-queries: {len(rules)} alerts and {queries - len(rules)} dashboard queries name only "
          f"exported metrics, labels and values and parse; every alert is tested firing and silent"
          + (f"; Prometheus at {live} loaded and evaluated every rule and ran every query" if live else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
