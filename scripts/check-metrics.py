#!/usr/bin/env python3
"""Checks that template.yaml's dashboard and alarms name only metrics the agent publishes.

The agent's per-turn metrics are written by shared/src/telemetry/emf.rs in CloudWatch's
embedded metric format; its `METRICS` table lists each metric with each dimension set it is
published with (the crate's tests check the records publish exactly that table). This script
reads that table and the template and fails, naming each problem, when:

- a dashboard widget or an alarm names a metric of the agent's namespace that the table does
  not have, or with dimensions it is not published with (SEARCH expressions included);
- the namespace is not the MetricsNamespace parameter, or the parameter's default is not
  emf.rs's DEFAULT_NAMESPACE, or a session function is not given it as METRICS_NAMESPACE;
- a Lambda metric is not one of Lambda's, or not by FunctionName of a function of the template;
- an SQS metric (an alarm on a dead-letter queue) is not one this check knows, or not by
  QueueName of a queue of the template;
- the dashboard body is not valid JSON.

Run by scripts/validate.sh; needs PyYAML (in the venv, with cfn-lint).
"""

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
EMF = ROOT / "shared/src/telemetry/emf.rs"
TEMPLATE = ROOT / "template.yaml"
OURS = "${MetricsNamespace}"
LAMBDA_METRICS = {"Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions"}
SQS_METRICS = {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"}
SESSION_FUNCTIONS = ("SessionHandlerFunction", "SessionStreamFunction")


def emf_table():
    """(name -> set of dimension tuples, DEFAULT_NAMESPACE) from emf.rs."""
    source = EMF.read_text()
    dims_names = dict(re.findall(r'pub const (\w+): &str = "(\w+)";', source))
    metrics = {
        const: name
        for const, name, _unit in re.findall(
            r'pub const (\w+): Metric = metric\("(\w+)", "([\w/]+)"\);', source
        )
    }
    sets = {}
    for const, body in re.findall(r"const (DIMS_\w+): &\[&str\] = &\[([^\]]*)\];", source):
        sets[const] = tuple(dims_names[d.strip().split("::")[-1]] for d in body.split(",") if d.strip())
    table_src = re.search(r"pub const METRICS: &\[MetricSpec\] = &\[(.*?)\];", source, re.S)
    if not table_src:
        sys.exit(f"{EMF}: METRICS table not found")
    table = {}
    for metric_const, dims_const in re.findall(r"spec\((\w+), (DIMS_\w+)\)", table_src.group(1)):
        table.setdefault(metrics[metric_const], set()).add(sets[dims_const])
    default = re.search(r'pub const DEFAULT_NAMESPACE: &str = "([^"]+)";', source).group(1)
    if not table:
        sys.exit(f"{EMF}: METRICS table is empty")
    return table, default


def value_queue(value):
    """The resource of `!GetAtt <resource>.QueueName` (or None)."""
    if isinstance(value, dict) and isinstance(value.get("Fn::GetAtt"), str):
        resource, _, attribute = value["Fn::GetAtt"].partition(".")
        return resource if attribute == "QueueName" else None
    return None


class Loader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


Loader.add_multi_constructor("!", _tag)


def main():
    table, default_namespace = emf_table()
    template = yaml.load(TEMPLATE.read_text(), Loader=Loader)
    params = template["Parameters"]
    resources = template["Resources"]
    functions = {
        name for name, res in resources.items() if res["Type"] == "AWS::Serverless::Function"
    }
    queues = {name for name, res in resources.items() if res["Type"] == "AWS::SQS::Queue"}
    problems = []

    def check_ours(where, name, dims):
        if name not in table:
            problems.append(f"{where}: {name} is not a metric emf.rs publishes")
        elif tuple(dims) not in table[name]:
            problems.append(
                f"{where}: {name} is not published with dimensions {list(dims)} "
                f"(it is with {sorted(map(list, table[name]))})"
            )

    def check_lambda(where, name, dims, value):
        if name not in LAMBDA_METRICS:
            problems.append(f"{where}: {name} is not a Lambda metric this check knows")
        if list(dims) != ["FunctionName"] or value not in functions:
            problems.append(f"{where}: {name} must be by FunctionName of a function of the template")

    # The namespace: one parameter, emf.rs's default, passed to both session functions.
    if params.get("MetricsNamespace", {}).get("Default") != default_namespace:
        problems.append(f"MetricsNamespace's default must be emf.rs's DEFAULT_NAMESPACE {default_namespace!r}")
    for function in SESSION_FUNCTIONS:
        env = resources[function]["Properties"]["Environment"]["Variables"]
        if env.get("METRICS_NAMESPACE") != {"Ref": "MetricsNamespace"}:
            problems.append(f"{function}: METRICS_NAMESPACE must be !Ref MetricsNamespace")

    # The dashboards.
    dashboards = [n for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    if not dashboards:
        problems.append("no AWS::CloudWatch::Dashboard")
    for name in dashboards:
        body = resources[name]["Properties"]["DashboardBody"]
        body = body["Fn::Sub"] if isinstance(body, dict) else body
        body = body[0] if isinstance(body, list) else body
        # Numbers substituted outside strings: their parameter's default.
        for param, spec in params.items():
            if spec.get("Type") == "Number":
                body = body.replace("${%s}" % param, str(spec.get("Default", 0)))
        try:
            dashboard = json.loads(body)
        except json.JSONDecodeError as err:
            problems.append(f"{name}: DashboardBody is not JSON: {err}")
            continue
        seen = 0
        for i, widget in enumerate(dashboard.get("widgets", [])):
            where = f"{name} widget {i} ({widget.get('properties', {}).get('title', '')})"
            for row in widget.get("properties", {}).get("metrics", []):
                fields = [f for f in row if not isinstance(f, dict)]
                options = [f for f in row if isinstance(f, dict)]
                if fields:
                    namespace, metric, rest = fields[0], fields[1], fields[2:]
                    keys, values = rest[0::2], rest[1::2]
                    seen += 1
                    if namespace == OURS:
                        check_ours(where, metric, keys)
                        for value in values:
                            if not re.fullmatch(r"\$\{(\w+)\}", value) or value[2:-1] not in SESSION_FUNCTIONS:
                                problems.append(f"{where}: {metric} by {value}, not a session function")
                    elif namespace == "AWS/Lambda":
                        check_lambda(where, metric, keys, values[0][2:-1] if values else "")
                    else:
                        problems.append(f"{where}: namespace {namespace} is neither {OURS} nor AWS/Lambda")
                for option in options:
                    expression = option.get("expression", "")
                    for schema, terms in re.findall(r"SEARCH\('\{((?:\$\{\w+\}|[^}])*)\}([^']*)'", expression):
                        parts = [p.strip().strip('"') for p in schema.split(",")]
                        if parts[0] != OURS:
                            problems.append(f"{where}: SEARCH in namespace {parts[0]}, not {OURS}")
                            continue
                        names = re.findall(r'MetricName="(\w+)"', terms)
                        if not names:
                            problems.append(f"{where}: SEARCH names no MetricName")
                        for metric in names:
                            seen += 1
                            check_ours(where, metric, parts[1:])
        if not seen:
            problems.append(f"{name}: names no metric")

    # The alarms.
    for name, res in resources.items():
        if res["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = res["Properties"]
        stats = [props] if "MetricName" in props else [
            m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m
        ]
        if not stats:
            problems.append(f"{name}: names no metric")
        for metric in stats:
            keys = [d["Name"] for d in metric.get("Dimensions", [])]
            values = [d["Value"] for d in metric.get("Dimensions", [])]
            if metric["Namespace"] == {"Ref": "MetricsNamespace"}:
                check_ours(name, metric["MetricName"], keys)
            elif metric["Namespace"] == "AWS/Lambda":
                ref = values[0].get("Ref", "") if values and isinstance(values[0], dict) else ""
                check_lambda(name, metric["MetricName"], keys, ref)
            elif metric["Namespace"] == "AWS/SQS":
                if metric["MetricName"] not in SQS_METRICS:
                    problems.append(f"{name}: {metric['MetricName']} is not an SQS metric this check knows")
                value = values[0] if values else None
                if keys != ["QueueName"] or value_queue(value) not in queues:
                    problems.append(f"{name}: {metric['MetricName']} must be by QueueName of a queue of the template (!GetAtt <queue>.QueueName)")
            else:
                problems.append(f"{name}: namespace {metric['Namespace']} is neither !Ref MetricsNamespace, AWS/Lambda nor AWS/SQS")
        actions = props.get("AlarmActions")
        if actions != {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}:
            problems.append(f"{name}: AlarmActions must be the AlarmTopicArn when it is set")

    for problem in problems:
        print(f"check-metrics: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"check-metrics: the dashboard and alarms name only metrics emf.rs publishes ({sum(map(len, table.values()))} in its table)")


if __name__ == "__main__":
    main()
