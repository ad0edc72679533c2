#!/usr/bin/env python3
"""The eval runner (`make eval`, and the `eval` step of `make test`): docs/evals.md.

For each scenario of the scenarios file it creates a session, sends the message
(POST /sessions/{id}/messages), reads the turn's trace (GET /sessions/{id}/trace) and stored
messages (GET /sessions/{id}), scores tool choice, facts, groundedness, cost and latency
(evals/scoring.py), deletes the session, and writes OUT/report.md, OUT/results.json and
OUT/cost_latency.png. Exits 1 when the overall score is under the minimum or a scenario broke
its cost or latency ceiling, 2 when the scenarios file or the arguments are wrong.

Standard library only, but for matplotlib (the chart; without it the report says so).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict
from typing import Any, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import scoring  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
REQUEST_TIMEOUT_S = 300


class ScenarioError(Exception):
    pass


# ---- the scenarios file --------------------------------------------------------------------

FIELDS = {
    "id": str,
    "message": str,
    "expected_tools": list,
    "forbidden_tools": list,
    "facts": list,
    "max_cost_usd": (int, float),
    "max_latency_ms": (int, float),
    "model": str,
    "description": str,
}
REQUIRED = ("id", "message", "expected_tools", "facts", "max_cost_usd")


def load_scenarios(path: str) -> list[dict[str, Any]]:
    """The scenarios of a .json (or, with PyYAML, .yaml) file: a list, or {"scenarios": [...]},
    each checked (required fields, types, unique ids)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml  # type: ignore
        except ImportError as e:
            raise ScenarioError(f"{path}: reading YAML needs PyYAML ({e}); use a .json file") from e
        data = yaml.safe_load(text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ScenarioError(f"{path}: not JSON: {e}") from e
    if isinstance(data, dict):
        data = data.get("scenarios")
    if not isinstance(data, list) or not data:
        raise ScenarioError(f"{path}: expected a non-empty list of scenarios (or {{\"scenarios\": [...]}})")
    seen = set()
    for i, s in enumerate(data):
        where = f"{path}: scenario {i + 1}"
        if not isinstance(s, dict):
            raise ScenarioError(f"{where}: not an object")
        for name in REQUIRED:
            if name not in s:
                raise ScenarioError(f"{where}: missing '{name}'")
        for name, value in s.items():
            if name not in FIELDS:
                raise ScenarioError(f"{where}: unknown field '{name}' (known: {', '.join(FIELDS)})")
            if isinstance(value, bool) or not isinstance(value, FIELDS[name]):
                raise ScenarioError(f"{where}: '{name}' has the wrong type")
            if FIELDS[name] is list and not all(isinstance(x, str) for x in value):
                raise ScenarioError(f"{where}: '{name}' must be a list of strings")
        if s["id"] in seen:
            raise ScenarioError(f"{where}: duplicate id '{s['id']}'")
        if not s["message"].strip():
            raise ScenarioError(f"{where}: empty message")
        overlap = set(s["expected_tools"]) & set(s.get("forbidden_tools", []))
        if overlap:
            raise ScenarioError(f"{where}: {sorted(overlap)} both expected and forbidden")
        seen.add(s["id"])
    return data


# ---- the API -------------------------------------------------------------------------------


class Api:
    def __init__(self, base: str, user: str, token: Optional[str]):
        self.base = base.rstrip("/")
        self.headers = {"x-user-id": user, "accept": "application/json"}
        if token:
            self.headers["authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None
        headers = dict(self.headers)
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            parsed = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            parsed = raw.decode("utf-8", "replace")
        return status, parsed


def problem(status: int, body: Any) -> str:
    detail = body.get("detail") or body.get("title") if isinstance(body, dict) else body
    return f"HTTP {status}: {detail}"


def result_text(content: list[Any]) -> str:
    """A stored tool result's content as text (JSON compact, as the model saw it)."""
    parts = []
    for item in content or []:
        if isinstance(item, dict) and "text" in item:
            parts.append(str(item["text"]))
        elif isinstance(item, dict) and "json" in item:
            parts.append(json.dumps(item["json"], separators=(",", ":")))
    return "\n".join(parts)


def turn_evidence(trace: Optional[dict], messages: list[dict], turn: int) -> dict[str, Any]:
    """The tools called and their results in one turn: from the trace's tool steps (with their
    `result` text when the trace has it), else from the turn's stored messages."""
    steps = (trace or {}).get("steps") or []
    tool_steps = [s for s in steps if s.get("kind") == "tool"]
    in_turn = [m for m in messages if m.get("turn") == turn]
    blocks = [b for m in in_turn for b in (m.get("content") or []) if isinstance(b, dict)]
    if trace is not None:
        called = [s.get("name", "") for s in tool_steps]
    else:
        called = [b.get("name", "") for b in blocks if b.get("type") == "tool_use"]
    if tool_steps and all(isinstance(s.get("result"), str) for s in tool_steps):
        results, source = [s["result"] for s in tool_steps], "trace tool results"
    else:
        results = [result_text(b.get("content")) for b in blocks if b.get("type") == "tool_result"]
        source = "stored tool results"
    return {"called": called, "results": results, "results_source": source}


def run_scenario(api: Api, s: dict[str, Any], min_score: float, keep: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": s["id"], "message": s["message"], "expected_tools": s["expected_tools"],
                           "forbidden_tools": s.get("forbidden_tools", []), "facts": s["facts"],
                           "max_cost_usd": s["max_cost_usd"], "max_latency_ms": s.get("max_latency_ms")}
    error = None
    answer, cost, latency, turn, session = "", None, None, None, None
    trace, messages, latency_source = None, [], "wall"
    status, body = api.call("POST", "/sessions")
    if status != 201 or not isinstance(body, dict):
        error = "create session: " + problem(status, body)
    else:
        session = body["session_id"]
        request = {"message": s["message"]}
        if s.get("model"):
            request["model"] = s["model"]
        start = time.monotonic()
        status, body = api.call("POST", f"/sessions/{session}/messages", request)
        wall_ms = (time.monotonic() - start) * 1000
        latency = wall_ms
        if status != 200 or not isinstance(body, dict):
            error = "send message: " + problem(status, body)
        else:
            answer = body.get("answer") or ""
            turn = body.get("turn")
            cost = (body.get("cost") or {}).get("total_usd")
            out["stop_reason"] = body.get("stop_reason")
            out["models"] = body.get("models")
            out["usage"] = body.get("usage")
            status, traces = api.call("GET", f"/sessions/{session}/trace?limit=100")
            if status == 200 and isinstance(traces, dict):
                trace = next((t for t in traces.get("turns") or [] if t.get("turn") == turn), None)
            status, stored = api.call("GET", f"/sessions/{session}?limit=500")
            if status == 200 and isinstance(stored, dict):
                messages = stored.get("messages") or []
            if trace and isinstance(trace.get("duration_ms"), (int, float)):
                latency, latency_source = float(trace["duration_ms"]), "trace"
            out["wall_ms"] = round(wall_ms, 1)
            if body.get("stop_reason") not in (None, "end_turn"):
                error = f"turn ended with stop_reason {body.get('stop_reason')}"
        if not keep:
            api.call("DELETE", f"/sessions/{session}")
    evidence = turn_evidence(trace, messages, turn) if turn is not None else {
        "called": [], "results": [], "results_source": "none"}
    tools = scoring.score_tools(s["expected_tools"], evidence["called"], s.get("forbidden_tools", []))
    facts, missing = scoring.score_facts(answer, s["facts"])
    trace_grounded = (trace or {}).get("groundedness")
    grounded = scoring.score_groundedness(
        answer, evidence["results"], prompt=s["message"],
        trace_value=trace_grounded if isinstance(trace_grounded, (int, float)) else None,
        results_source=evidence["results_source"], tool_names=evidence["called"])
    v = scoring.verdict(tools, facts, missing, grounded, cost, s["max_cost_usd"], latency,
                        s.get("max_latency_ms"), min_score, error)
    out.update({
        "session_id": session, "turn": turn, "answer": answer, "tools_called": evidence["called"],
        "tool": asdict(tools) | {"score": tools.score}, "facts_score": facts, "missing_facts": missing,
        "groundedness": asdict(grounded), "cost_usd": cost, "latency_ms": latency,
        "latency_source": latency_source, "score": v.score, "passed": v.passed, "reasons": v.reasons,
        "cost_ok": v.cost_ok, "latency_ok": v.latency_ok, "error": error,
        "trace_has_tool_results": evidence["results_source"] == "trace tool results",
        "trace_has_groundedness": isinstance(trace_grounded, (int, float)),
    })
    return out


# ---- the report ----------------------------------------------------------------------------


def chart(results: list[dict[str, Any]], path: str) -> Optional[str]:
    """A PNG of cost and latency per scenario, their ceilings marked; the reason when none."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return f"matplotlib is not installed ({e}); scripts/install-tools.sh installs it"
    ids = [r["id"] for r in results]
    rows = range(len(ids))
    fig, (ax_cost, ax_lat) = plt.subplots(1, 2, figsize=(11, 0.55 * len(ids) + 1.8), sharey=True)
    colors = ["#2e7d32" if r["passed"] else "#c62828" for r in results]
    costs = [r["cost_usd"] or 0.0 for r in results]
    ax_cost.barh(rows, costs, color=colors)
    ax_cost.scatter([r["max_cost_usd"] for r in results], rows, marker="|", s=300, color="black",
                    label="ceiling", zorder=3)
    ax_cost.set_xlabel("cost (USD)")
    ax_cost.set_title("cost per scenario")
    ax_cost.legend(loc="lower right", fontsize=8)
    ax_cost.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
    latencies = [r["latency_ms"] or 0.0 for r in results]
    ax_lat.barh(rows, latencies, color=colors)
    ceilings = [(i, r["max_latency_ms"]) for i, r in enumerate(results) if r.get("max_latency_ms")]
    if ceilings:
        ax_lat.scatter([c for _, c in ceilings], [i for i, _ in ceilings], marker="|", s=300,
                       color="black", label="ceiling", zorder=3)
        ax_lat.legend(loc="lower right", fontsize=8)
    ax_lat.set_xlabel("latency (ms)")
    ax_lat.set_title("latency per scenario")
    for i, (c, l) in enumerate(zip(costs, latencies)):
        ax_cost.annotate(f" ${c:.4f}", (c, i), va="center", fontsize=8)
        ax_lat.annotate(f" {l:.0f} ms", (l, i), va="center", fontsize=8)
    ax_cost.set_yticks(list(rows), ids)
    ax_cost.invert_yaxis()
    for ax in (ax_cost, ax_lat):
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlim(left=0)
    fig.suptitle("green: passed, red: failed", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def fmt(value: Optional[float], spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_report(out_dir: str, results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    os.makedirs(out_dir, exist_ok=True)
    chart_name = "cost_latency.png"
    no_chart = chart(results, os.path.join(out_dir, chart_name))
    lines = [
        "# Eval report",
        "",
        f"- API: `{meta['api_url']}`",
        f"- scenarios: `{meta['scenarios']}` ({len(results)})",
        f"- model: {meta['models']}",
        f"- run at: {meta['started_at']} ({meta['elapsed_s']:.1f} s)",
        f"- overall score: **{meta['overall']:.2f}** (minimum {meta['min_score']:.2f}); "
        f"{meta['passed']}/{len(results)} scenarios passed; result: **{'PASS' if meta['ok'] else 'FAIL'}**",
        f"- groundedness from: {meta['grounded_sources']}",
        "",
        "| scenario | tools expected | tools called | tool P / R | tools | facts | grounded | cost USD (ceiling) | latency ms (ceiling) | score | result |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        t = r["tool"]
        expected = ", ".join(r["expected_tools"]) or "none"
        if r["forbidden_tools"]:
            expected += " (not " + ", ".join(r["forbidden_tools"]) + ")"
        g = r["groundedness"]
        lines.append("| " + " | ".join([
            f"`{r['id']}`",
            cell(expected),
            cell(", ".join(r["tools_called"]) or "none"),
            f"{t['precision']:.2f} / {t['recall']:.2f}",
            f"{t['score']:.2f}",
            f"{r['facts_score']:.2f}",
            fmt(g["score"]),
            f"{fmt(r['cost_usd'], '.6f')} ({r['max_cost_usd']:g})" + ("" if r["cost_ok"] else " **over**"),
            f"{fmt(r['latency_ms'], '.0f')} ({fmt(r['max_latency_ms'], 'g')})" + ("" if r["latency_ok"] else " **over**"),
            f"{r['score']:.2f}",
            "pass" if r["passed"] else "**FAIL**",
        ]) + " |")
    total_cost = sum(r["cost_usd"] or 0.0 for r in results)
    latencies = [r["latency_ms"] for r in results if r["latency_ms"] is not None]
    lines += [
        f"| **total** | | | | | | | {total_cost:.6f} | mean {fmt(sum(latencies) / len(latencies) if latencies else None, '.0f')} "
        f"| **{meta['overall']:.2f}** | {meta['passed']}/{len(results)} |",
        "",
        "Scores are in [0, 1]: *tools* is the F1 of the tools called against those expected (0 when a "
        "forbidden tool was called), *facts* the share of the required facts in the answer, *grounded* "
        "the share of the answer's numbers and named entities found in the tool results (n/a: no tool "
        "results); a scenario's score is their mean. See docs/evals.md.",
        "",
    ]
    if no_chart:
        lines += [f"(No chart: {no_chart}.)", ""]
    else:
        lines += [f"![cost and latency per scenario]({chart_name})", ""]
    lines += ["## Scenarios", ""]
    for r in results:
        g = r["groundedness"]
        lines += [
            f"### `{r['id']}`: {'pass' if r['passed'] else 'FAIL'} ({r['score']:.2f})",
            "",
            f"- message: {cell(r['message'])}",
            f"- answer: {cell(r['answer'][:600]) or '(none)'}",
            f"- stop reason: {r.get('stop_reason')}; latency from: {r['latency_source']}; "
            f"groundedness from: {g['source']}"
            + (f"; claims checked: {', '.join(g['claims'][:12])}" if g["claims"] else ""),
        ]
        if r["reasons"]:
            lines.append("- why: " + cell("; ".join(r["reasons"])))
        lines.append("")
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    with open(os.path.join(out_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "scenarios": results}, f, indent=2)
    return path


# ---- main ----------------------------------------------------------------------------------


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Run the eval scenarios against an API (docs/evals.md).")
    parser.add_argument("--api-url", default=os.environ.get("EVAL_API_URL") or os.environ.get("E2E_API_URL"),
                        help="the API's base URL (env EVAL_API_URL, else E2E_API_URL)")
    parser.add_argument("--scenarios", default=os.environ.get("EVAL_SCENARIOS", os.path.join(HERE, "scenarios.json")))
    parser.add_argument("--out", default=os.environ.get("EVAL_OUT", os.path.join(REPO, "target", "eval")))
    parser.add_argument("--min-score", type=float, default=float(os.environ.get("EVAL_MIN_SCORE", "0.8")))
    parser.add_argument("--user", default=os.environ.get("EVAL_USER", "eval"), help="x-user-id of a local stack")
    parser.add_argument("--only", default=os.environ.get("EVAL_ONLY", ""), help="comma-separated scenario ids")
    parser.add_argument("--keep-sessions", action="store_true", default=os.environ.get("EVAL_KEEP_SESSIONS") == "1")
    args = parser.parse_args(argv)
    if not args.api_url:
        print("eval: no API URL: pass --api-url or set EVAL_API_URL (make eval starts a local stack)", file=sys.stderr)
        return 2
    if not 0.0 <= args.min_score <= 1.0:
        print(f"eval: EVAL_MIN_SCORE must be in [0, 1], not {args.min_score}", file=sys.stderr)
        return 2
    try:
        scenarios = load_scenarios(args.scenarios)
    except (OSError, ScenarioError) as e:
        print(f"eval: {e}", file=sys.stderr)
        return 2
    if args.only:
        wanted = {x.strip() for x in args.only.split(",") if x.strip()}
        unknown = wanted - {s["id"] for s in scenarios}
        if unknown:
            print(f"eval: no scenario {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        scenarios = [s for s in scenarios if s["id"] in wanted]
    api = Api(args.api_url, args.user, os.environ.get("EVAL_TOKEN"))
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    start = time.monotonic()
    results = []
    for s in scenarios:
        try:
            r = run_scenario(api, s, args.min_score, args.keep_sessions)
        except (urllib.error.URLError, OSError) as e:
            print(f"eval: {args.api_url} does not answer: {e}", file=sys.stderr)
            return 1
        results.append(r)
        print(f"  {'pass' if r['passed'] else 'FAIL'} {r['id']:<22} score {r['score']:.2f}  "
              f"tools {r['tool']['score']:.2f} facts {r['facts_score']:.2f} grounded {fmt(r['groundedness']['score'])}  "
              f"cost ${fmt(r['cost_usd'], '.6f')}  latency {fmt(r['latency_ms'], '.0f')} ms"
              + (f"  ({'; '.join(r['reasons'])})" if r["reasons"] else ""))
    score = scoring.overall([r["score"] for r in results])
    over_ceiling = [r["id"] for r in results if not (r["cost_ok"] and r["latency_ok"])]
    sources = sorted({r["groundedness"]["source"] for r in results})
    models = sorted({m for r in results for m in (r.get("models") or [])}) or ["unknown"]
    meta = {
        "api_url": args.api_url, "scenarios": os.path.relpath(args.scenarios, REPO), "started_at": started_at,
        "elapsed_s": time.monotonic() - start, "overall": score, "min_score": args.min_score,
        "passed": sum(r["passed"] for r in results), "over_ceiling": over_ceiling,
        "grounded_sources": ", ".join(sources), "models": ", ".join(models),
        "ok": score >= args.min_score and not over_ceiling,
    }
    path = write_report(args.out, results, meta)
    print(f"eval: overall score {score:.2f} (minimum {args.min_score:.2f}), {meta['passed']}/{len(results)} passed"
          + (f", over a ceiling: {', '.join(over_ceiling)}" if over_ceiling else "")
          + f"; report {os.path.relpath(path)}")
    if any(r["tools_called"] for r in results) and not any(r["trace_has_tool_results"] for r in results):
        print("eval: the trace has no tool results: groundedness was checked against the stored tool results",
              file=sys.stderr)
    return 0 if meta["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
