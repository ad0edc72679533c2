#!/usr/bin/env python3
"""Cold start and peak memory of the tool executors against a local Lambda Runtime API.

Uses bench/coldstart.py's Runtime API (127.0.0.1, standard library): starts each executor's
release binary with the environment Lambda gives a function, hands it tool-contract events
(shared/src/tool_contract.rs, as events/tool-*.json) and times each run from just before the
process is spawned to the receipt of its response POST. While the process then waits for its
next event, VmHWM (peak RSS) and VmRSS are read from /proc/<pid>/status; the process is then
ended by its PID.

Executors (--executor, repeatable; default all three), with the call each one gets:
  tool-code-interpreter  run_javascript {"code": "1+1"}, result "2"
  tool-http-fetch        http_fetch of http://127.0.0.1:<port>/page.html, a 4 KB HTML page served
                         by this script (HTTP_FETCH_ALLOW_LOOPBACK_FOR_TESTS=1, tests only)
  tool-web-search        web_search keyless (SEARCH_API_KEY_SECRET unset, TABLE_NAME unset: no
                         Secrets Manager, no result cache) against a Tavily-shaped stand-in served
                         by this script (POST /search), SEARCH_BASE_URL pointing at it

Cases (--case, repeatable; default all three):
  list   the first invocation of a fresh process is {"list": true}: runtime start, the
         executor's set-up, the JSON schema generated, one event in and one response out.
  call   the first invocation of a fresh process is the call above.
  warm   one process: the call once (untimed), then --runs calls, then --runs list requests;
         the warm invocation times (event queued -> response, harness included; the warm list
         is the harness's floor) and the peak RSS after them.

Results are printed and, with --json FILE, written as JSON with the load average before and
after. Everything listens on 127.0.0.1.
"""

import argparse
import json
import os
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler

sys.dont_write_bytecode = True
from coldstart import FunctionProcess, QuietServer, summary, write_results  # noqa: E402

PAGE_MARKER = "executor cold start bench marker"
SEARCH_TITLE = "Bench result one"


def page_html():
    """A small article page, about 4 KB."""
    paragraph = (
        "<p>Lambda executors start a fresh process for the first request of an execution "
        "environment; this page is what the http_fetch bench reads on its first call.</p>\n"
    )
    return (
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Bench page</title>"
        "<style>body { font-family: sans-serif; }</style></head>\n<body><main><h1>Bench page</h1>\n"
        f"<p>{PAGE_MARKER}</p>\n" + paragraph * 20 + "</main></body></html>\n"
    ).encode()


def search_answer(max_results):
    results = [
        {
            "title": SEARCH_TITLE if n == 1 else f"Bench result {n}",
            "url": f"https://example.com/result/{n}",
            "content": f"Snippet {n}: a short excerpt of the page, as Tavily returns it.",
            "score": 0.9 - n / 100,
            "published_date": "2025-01-01",
        }
        for n in range(1, max_results + 1)
    ]
    return {"query": "bench", "results": results, "response_time": 0.01}


class LoopbackWeb:
    """What the executors reach on the network: a page (GET /page.html) and a Tavily-shaped
    search API (POST /search), on 127.0.0.1:0."""

    def __init__(self):
        self.requests = 0
        web = self
        page = page_html()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *_args):
                pass

            def _reply(self, status, body, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self._headers_buffer.append(b"\r\n" + body)
                self.flush_headers()

            def do_GET(self):
                web.requests += 1
                if self.path == "/page.html":
                    self._reply(200, page, "text/html; charset=utf-8")
                else:
                    self._reply(404, b"not found\n", "text/plain")

            def do_POST(self):
                web.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    request = json.loads(self.rfile.read(length) or b"null")
                except ValueError:
                    request = None
                if self.path != "/search" or not isinstance(request, dict) or not request.get("query"):
                    self._reply(400, b'{"detail":"expected POST /search with a query"}', "application/json")
                    return
                answer = search_answer(int(request.get("max_results") or 5))
                self._reply(200, json.dumps(answer).encode(), "application/json")

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self):
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def text_of(response):
    if not isinstance(response, dict) or "content" not in response:
        raise RuntimeError(f"not a tool-contract response: {str(response)[:500]}")
    if response.get("isError"):
        raise RuntimeError(f"the call failed: {str(response)[:1000]}")
    return "".join(part.get("text", "") for part in response["content"])


def check_javascript(response):
    result = json.loads(text_of(response))
    if result.get("result") != "2" or result.get("error") is not None:
        raise RuntimeError(f"run_javascript 1+1: {result}")


def check_fetch(response):
    if PAGE_MARKER not in text_of(response):
        raise RuntimeError(f"http_fetch did not return the page: {str(response)[:1000]}")


def check_search(response):
    result = json.loads(text_of(response))
    if not result.get("results") or result["results"][0].get("title") != SEARCH_TITLE:
        raise RuntimeError(f"web_search did not return the stand-in's results: {result}")


EXECUTORS = {
    "tool-code-interpreter": {
        "tool": "run_javascript",
        "arguments": lambda web: {"code": "1+1"},
        "env": lambda web: {},
        "check": check_javascript,
    },
    "tool-http-fetch": {
        "tool": "http_fetch",
        "arguments": lambda web: {"url": f"{web.base_url}/page.html"},
        "env": lambda web: {"HTTP_FETCH_ALLOW_LOOPBACK_FOR_TESTS": "1"},
        "check": check_fetch,
    },
    "tool-web-search": {
        "tool": "web_search",
        "arguments": lambda web: {"query": "AWS Lambda arm64 pricing", "max_results": 3},
        # Keyless against the stand-in: SEARCH_API_KEY_SECRET and TABLE_NAME (the result
        # cache's table) stay unset, so neither Secrets Manager nor DynamoDB is reached.
        "env": lambda web: {"SEARCH_PROVIDER": "tavily", "SEARCH_BASE_URL": web.base_url},
        "check": check_search,
    },
}


def call_event(name, web):
    spec = EXECUTORS[name]
    return {
        "name": spec["tool"],
        "arguments": spec["arguments"](web),
        "context": {
            "user_id": "bench-user",
            "session_id": "0b9e6a4e-6a57-4c64-9f3b-2f1f0b3c2a10",
            "tool_use_id": "tooluse_bench",
            "trace_id": "bench-trace",
        },
    }


def check_list(name, response):
    tools = response.get("tools") if isinstance(response, dict) else None
    if not tools or tools[0].get("name") != EXECUTORS[name]["tool"] or "inputSchema" not in tools[0]:
        raise RuntimeError(f"{name}: unexpected list response {str(response)[:500]}")


class Executor(FunctionProcess):
    """One executor process (one execution environment) with its Runtime API."""

    def __init__(self, name, binary, web, log_path, extra_env=()):
        super().__init__(name, binary, EXECUTORS[name]["env"](web), log_path, extra_env)


def run_case(name, case, args, web, log_dir):
    """Runs one case of one executor; returns its result dict."""
    binary = os.path.join(args.bin_dir, name)
    log_path = os.path.join(log_dir, f"{name}-{case}.log")
    samples = {}

    def record(metric, value):
        samples.setdefault(metric, []).append(value)

    check = EXECUTORS[name]["check"]
    runs = 1 if case == "warm" else args.runs
    for run in range(runs):
        process = Executor(name, binary, web, log_path, args.env)
        try:
            if case == "list":
                spawn_ms, _, response = process.call({"list": True})
                check_list(name, response)
                record("spawn_to_response_ms", spawn_ms)
            elif case == "call":
                spawn_ms, _, response = process.call(call_event(name, web))
                check(response)
                record("spawn_to_response_ms", spawn_ms)
            elif case == "warm":
                _, _, response = process.call(call_event(name, web))
                check(response)
                for _ in range(args.runs):
                    _, invoke_ms, response = process.call(call_event(name, web))
                    check(response)
                    record("warm_invocation_ms", invoke_ms)
                # The same process answering lists: the harness's own round trip plus a few
                # microseconds of the executor, the floor to read the warm calls by.
                for _ in range(args.runs):
                    _, invoke_ms, response = process.call({"list": True})
                    check_list(name, response)
                    record("warm_list_ms", invoke_ms)
            process.record_idle(record)
        except Exception:
            tail = process.log_tail()
            print(f"executor_coldstart: {name} {case}, run {run + 1} failed; log tail:\n{tail}", file=sys.stderr)
            raise
        finally:
            process.stop()
    result = {"executor": name, "case": case, "runs": runs}
    if case == "warm":
        result["calls"] = args.runs
    for metric, values in samples.items():
        result[metric] = summary(values)
    return result


def print_result(result):
    what = f"{result['runs']} run{'s' if result['runs'] != 1 else ''}"
    if "calls" in result:
        what = f"1 process, {result['calls']} warm calls"
    print(f"\n{result['executor']} {result['case']} ({what})")
    print(f"  {'metric':32} {'min':>9} {'median':>9} {'p90':>9} {'max':>9}")
    for metric, stats in result.items():
        if not isinstance(stats, dict):
            continue
        if metric.endswith("_kib"):
            cells = [f"{stats[k] / 1024:8.1f}M" for k in ("min", "median", "p90", "max")]
        else:
            cells = [f"{stats[k]:7.2f}ms" for k in ("min", "median", "p90", "max")]
        print(f"  {metric:32} {' '.join(cells)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", default="target/release", help="where the executor binaries are")
    parser.add_argument("--executor", action="append", choices=sorted(EXECUTORS))
    parser.add_argument("--case", action="append", choices=["list", "call", "warm"])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", dest="json_path")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra environment variable for every executor (repeatable), for experiments",
    )
    args = parser.parse_args()
    if not 1 <= args.runs <= 200:
        parser.error("--runs must be between 1 and 200")
    executors = args.executor or sorted(EXECUTORS)
    cases = args.case or ["list", "call", "warm"]
    for name in executors:
        binary = os.path.join(args.bin_dir, name)
        if not os.access(binary, os.X_OK):
            parser.error(f"{binary} is not an executable; build it with cargo build --release -p {name}")

    results = []
    load_before = os.getloadavg()
    web = LoopbackWeb()
    try:
        with tempfile.TemporaryDirectory(prefix="executor-coldstart-") as log_dir:
            for name in executors:
                for case in cases:
                    results.append(run_case(name, case, args, web, log_dir))
                    print_result(results[-1])
    finally:
        web.close()
    write_results(args.json_path, {"bin_dir": args.bin_dir}, load_before, results)


if __name__ == "__main__":
    main()
