#!/usr/bin/env python3
"""Prints the benchmark results of bench/run.sh as Markdown tables, against the targets.

    python3 bench/summary.py [target/bench]

Reads coldstart.json (bench/coldstart.py), executor-coldstart.json
(bench/executor_coldstart.py), size.json (bench/size.sh) and the criterion estimates under
criterion/ (CRITERION_HOME of the cargo bench run). Missing parts are said to be missing, not
invented.
"""

import json
import os
import sys

COLD_START_TARGET_MS = 30.0
RSS_TARGET_MB = 40.0
TURN_TARGET_US = 100.0
EXECUTOR_COLD_START_TARGET_MS = 30.0
TOOL_OVERHEAD_TARGET_MS = 5.0

BENCHES = [
    ("turn/drive_turn", "state machine + driver (`drive_turn`), in-process model", TURN_TARGET_US),
    ("turn/agent_memory", "`Agent::send_message`, `MemorySessionStore`, in-process model", None),
    ("turn/agent_memory_bedrock_standin", "`Agent::send_message`, `MemorySessionStore`, `BedrockModel` -> stand-in (loopback)", None),
    ("parts/tool_specs", "part: `BuiltinTools::tool_specs()` (schemas generated per turn)", None),
    ("parts/memory_load_window", "part: `MemorySessionStore::load_window`, 40 messages", None),
    ("turn_dynamodb/agent_dynamodb", "`Agent::send_message`, `DynamoSessionStore` -> DynamoDB Local, in-process model", None),
    ("turn_dynamodb/agent_dynamodb_bedrock_standin", "`Agent::send_message`, `DynamoSessionStore` -> DynamoDB Local, `BedrockModel` -> stand-in", None),
]


def load(path):
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except FileNotFoundError:
        return None


def verdict(value, target):
    return "meets" if value < target else "MISSES"


def duration(ns):
    if ns < 1e3:
        return f"{ns:.0f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns / 1e6:.2f} ms"


def cold_start(results):
    print("## Cold start (release binary, local Runtime API)\n")
    if not results:
        print("No cold-start results (coldstart.json missing).\n")
        return
    metrics = {
        "spawn_to_response_ms": "spawn → response",
        "spawn_to_session_response_ms": "spawn → `POST /sessions` response",
        "spawn_to_turn_response_ms": "spawn → turn response",
        "turn_invocation_ms": "turn invocation (event queued → response)",
        "harness_spawn_ms": "harness: `Popen` until exec (included above)",
    }
    before, after = results.get("loadavg_before"), results.get("loadavg_after")
    if before and after:
        print(f"Load average (1 min) before {before[0]:.2f}, after {after[0]:.2f}.\n")
    print("| case | metric | min | median | p90 | max | target |")
    print("|---|---|---|---|---|---|---|")
    labels = {
        "tools": "first invocation `GET /tools`",
        "turn": "first invocation is a tool-using turn",
        "session-turn": "`POST /sessions`, then a turn",
        "rss-turns": "one process",
    }
    for result in results["results"]:
        case = result["case"]
        for name, stats in result.items():
            if not isinstance(stats, dict) or name.endswith("_kib"):
                continue
            target = ""
            if name == "spawn_to_response_ms":
                target = f"< {COLD_START_TARGET_MS:.0f} ms: {verdict(stats['median'], COLD_START_TARGET_MS)} (median)"
                if case == "turn":
                    target += ", DynamoDB Local + stand-in I/O included"
            cells = " | ".join(f"{stats[key]:.2f} ms" for key in ("min", "median", "p90", "max"))
            runs = f"{result['runs']} run{'s' if result['runs'] != 1 else ''}"
            if "turns" in result:
                runs += f", {result['turns']} turns"
            print(f"| {labels.get(case, case)} ({runs}) | {metrics.get(name, name)} | {cells} | {target} |")
    print()
    print("## Peak memory (VmHWM of the idle handler after its invocations)\n")
    print("| case | VmHWM median | VmHWM max | VmRSS median | target |")
    print("|---|---|---|---|---|")
    for result in results["results"]:
        hwm = result.get("vmhwm_kib")
        rss = result.get("vmrss_kib")
        if not hwm:
            continue
        worst_mb = hwm["max"] * 1024 / 1e6
        what = labels.get(result["case"], result["case"])
        if "turns" in result:
            what += f", after {result['turns']} turns"
        print(
            f"| {what} | {hwm['median'] / 1024:.1f} MiB | {hwm['max'] / 1024:.1f} MiB "
            f"({worst_mb:.1f} MB) | {rss['median'] / 1024:.1f} MiB | < {RSS_TARGET_MB:.0f} MB: "
            f"{verdict(worst_mb, RSS_TARGET_MB)} |"
        )
    print()


def size(info):
    print("## Deployment size\n")
    if not info:
        print("No size results (size.json missing).\n")
        return
    mib = lambda b: f"{b / 1048576:.2f} MiB"  # noqa: E731
    print("| artifact | size |")
    print("|---|---|")
    stripped = "stripped" if info["x86_64_binary_stripped"] else "not stripped"
    print(f"| x86_64 release binary ({stripped}) | {mib(info['x86_64_binary_bytes'])} |")
    print(f"| x86_64 `zip -9` of it | {mib(info['x86_64_zip9_bytes'])} |")
    if info.get("arm64_zip_bytes"):
        print(f"| arm64 `bootstrap.zip` (cargo lambda) | {mib(info['arm64_zip_bytes'])} |")
        if info.get("arm64_unzipped_bytes"):
            print(f"| arm64 `bootstrap` unzipped | {mib(info['arm64_unzipped_bytes'])} |")
    else:
        installed = "installed" if info.get("cargo_lambda_installed") else "not installed"
        print(f"| arm64 `bootstrap.zip` | not built (cargo-lambda {installed}) |")
    print()


def criterion(root):
    print("## Per-turn overhead (criterion; 2 model calls + 1 calculator call, 40 messages of history)\n")
    print("| bench | what | median | 95% CI of the median | mean | target |")
    print("|---|---|---|---|---|---|")
    for bench, what, target_us in BENCHES:
        estimates = load(os.path.join(root, "criterion", bench, "new", "estimates.json"))
        if not estimates:
            print(f"| `{bench}` | {what} | not run | | | |")
            continue
        median = estimates["median"]["point_estimate"]
        interval = estimates["median"]["confidence_interval"]
        mean = estimates["mean"]["point_estimate"]
        target = ""
        if target_us:
            target = f"< {target_us:.0f} µs: {verdict(median / 1e3, target_us)}"
        print(
            f"| `{bench}` | {what} | {duration(median)} | "
            f"{duration(interval['lower_bound'])} – {duration(interval['upper_bound'])} | "
            f"{duration(mean)} | {target} |"
        )
    print()


def executor_cold_start(results):
    print("## Tool executors: cold start and peak memory (release binaries, local Runtime API)\n")
    if not results:
        print("No executor cold-start results (executor-coldstart.json missing).\n")
        return
    before, after = results.get("loadavg_before"), results.get("loadavg_after")
    if before and after:
        print(f"Load average (1 min) before {before[0]:.2f}, after {after[0]:.2f}.\n")
    by_executor = {}
    for result in results["results"]:
        by_executor.setdefault(result["executor"], {})[result["case"]] = result
    print("| executor | `list` first: median / p90 | a call first: median / p90 | warm call / warm list median "
          "(harness incl.) | VmHWM max | cold start target |")
    print("|---|---|---|---|---|---|")

    def cell(case, metric="spawn_to_response_ms"):
        stats = (case or {}).get(metric)
        return f"{stats['median']:.2f} / {stats['p90']:.2f} ms" if stats else "not run"

    for name, cases in by_executor.items():
        warm = (cases.get("warm") or {}).get("warm_invocation_ms")
        warm_list = (cases.get("warm") or {}).get("warm_list_ms")
        peak = max((case["vmhwm_kib"]["max"] for case in cases.values() if "vmhwm_kib" in case), default=None)
        medians = [
            case["spawn_to_response_ms"]["median"]
            for key, case in cases.items()
            if key in ("list", "call") and "spawn_to_response_ms" in case
        ]
        target = ""
        if medians:
            target = f"< {EXECUTOR_COLD_START_TARGET_MS:.0f} ms: {verdict(max(medians), EXECUTOR_COLD_START_TARGET_MS)} (median)"
        warm_cell = f"{warm['median']:.2f} ms" if warm else "not run"
        if warm_list:
            warm_cell += f" / {warm_list['median']:.2f} ms"
        peak_cell = f"{peak / 1024:.1f} MiB" if peak else "n/a"
        print(
            f"| `{name}` | {cell(cases.get('list'))} | {cell(cases.get('call'))} | {warm_cell} | "
            f"{peak_cell} | {target} |"
        )
    print()


INVOKE_BENCHES = [
    ("raw_round_trip", "(a) bare hyper POST, kept-alive connection: the Invoke round trip"),
    ("sdk_invoke", "`aws-sdk-lambda` Invoke alone (SigV4, retry/timeout machinery, pooled client)"),
    ("lambda_tools_call", "(b) `LambdaTools::call` through `ToolInvoker`: what the handler does per call"),
]
EXECUTOR_BENCHES = [
    ("executor/handle_call", "(c) `tool_contract::handle`, no-op tool, `Value` in and out"),
    ("executor/handle_call_logged", "the same with the executors' JSON log subscriber (one line per call)"),
    ("executor/handle_call_bytes", "`handle_call` from event bytes to response bytes"),
    ("executor/handle_list", "`{\"list\": true}` (schema generated per call)"),
]


def tool_invoke(root):
    print("## Tool executors: warm invocation overhead (criterion, in-process Invoke API on loopback)\n")

    def median(bench):
        estimates = load(os.path.join(root, "criterion", bench, "new", "estimates.json"))
        return estimates["median"]["point_estimate"] if estimates else None

    print("| bench | what | median | target |")
    print("|---|---|---|---|")
    for size in ("small", "100k"):
        group = f"tool_invoke_{size}"
        for bench, what in INVOKE_BENCHES:
            value = median(f"{group}/{bench}")
            print(f"| `{group}/{bench}` | {what} | {duration(value) if value is not None else 'not run'} | |")
        raw, ours = median(f"{group}/raw_round_trip"), median(f"{group}/lambda_tools_call")
        if raw is not None and ours is not None:
            overhead = ours - raw
            target = f"< {TOOL_OVERHEAD_TARGET_MS:.0f} ms: {verdict(overhead / 1e6, TOOL_OVERHEAD_TARGET_MS)}"
            print(f"| `{group}`: (b) − (a) | our overhead beyond the round trip | {duration(overhead)} | {target} |")
    for bench, what in EXECUTOR_BENCHES:
        value = median(bench)
        print(f"| `{bench}` | {what} | {duration(value) if value is not None else 'not run'} | |")
    print()


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "target/bench"
    cold_start(load(os.path.join(root, "coldstart.json")))
    size(load(os.path.join(root, "size.json")))
    criterion(root)
    executor_cold_start(load(os.path.join(root, "executor-coldstart.json")))
    tool_invoke(root)


if __name__ == "__main__":
    main()
