#!/usr/bin/env python3
"""Cold start and peak memory of the session handler against a local Lambda Runtime API.

Implements the Lambda Runtime API (2018-06-01) on 127.0.0.1 with the standard library,
starts the handler binary with the environment Lambda gives a function, hands it API Gateway
HTTP API (payload 2.0) events carrying a JWT `sub` claim (the deployed auth path), and times
each run from just before the process is spawned to the moment its response POST for the
measured invocation has been received. After the invocations, while the process waits for its
next event, it reads VmHWM (peak RSS) and VmRSS from /proc/<pid>/status, then ends the
process by its PID.

Cases (--case, repeatable):
  tools         first invocation GET /tools: runtime start, config, SDK clients, no I/O.
  turn          first invocation is a tool-using turn (POST /sessions/{id}/messages,
                "What is 12*(3+4)?") on a session created beforehand by another process:
                DynamoDB Local (load window + transactional write) and the Bedrock stand-in
                (2 Converse calls) over loopback HTTP.
  session-turn  a fresh process gets POST /sessions, then the message: the time to each
                response from spawn.
  rss-turns     one process, POST /sessions then --turns messages on that session; peak RSS
                after them, and the warm per-invocation latencies.

The turn cases need AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_BEDROCK_RUNTIME (loopback) and
--table; before them, --warmup-turns untimed turns warm DynamoDB Local's JVM up. Results are
printed and, with --json FILE, written as JSON (with the load average before and after).
"""

import argparse
import json
import math
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL_ID = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
PREFIX = "/2018-06-01/runtime"
QUESTION = "What is 12*(3+4)?"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:session-handler"
# How long one invocation may take before the run is abandoned.
INVOCATION_TIMEOUT_S = 30.0


class QuietServer(ThreadingHTTPServer):
    """A threaded server that does not print a traceback when the handler process is ended
    while its connection is open (the next-event poll of an idle process always is)."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class RuntimeApi:
    """The Runtime API of one execution environment: a queue of events in, responses out."""

    def __init__(self, function_arn=FUNCTION_ARN):
        self.events = queue.Queue()
        self.results = queue.Queue()
        self.polls = queue.Queue()
        self.closed = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args):
                pass

            # Replies go out in one write with Nagle off, so no reply waits on a delayed ACK.
            disable_nagle_algorithm = True

            def _reply(self, status, payload, headers=None):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self._headers_buffer.append(b"\r\n" + body)
                self.flush_headers()

            def _body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            # Trailers, up to the empty line.
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    self._reply(404, {"errorMessage": f"no route {self.path}"})
                    return
                api.polls.put(time.perf_counter_ns())
                while not api.closed.is_set():
                    try:
                        request_id, event = api.events.get(timeout=0.1)
                    except queue.Empty:
                        continue
                    deadline_ms = int(time.time() * 1000) + 30_000
                    trace = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"
                    self._reply(
                        200,
                        event,
                        {
                            "Lambda-Runtime-Aws-Request-Id": request_id,
                            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                            "Lambda-Runtime-Invoked-Function-Arn": function_arn,
                            "Lambda-Runtime-Trace-Id": trace,
                        },
                    )
                    return
                self.close_connection = True

            def do_POST(self):
                body = self._body()
                received = time.perf_counter_ns()
                parts = self.path[len(PREFIX) :].strip("/").split("/")
                if self.path.startswith(PREFIX) and parts == ["init", "error"]:
                    api.results.put(("init_error", None, received, body))
                elif (
                    self.path.startswith(PREFIX)
                    and len(parts) == 3
                    and parts[0] == "invocation"
                    and parts[2] in ("response", "error")
                ):
                    api.results.put((parts[2], parts[1], received, body))
                else:
                    self._reply(404, {"errorMessage": f"no route {self.path}"})
                    return
                self._reply(202, {"status": "OK"})

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self):
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def invoke(self, event):
        """Queues an event; returns (request id, time queued)."""
        request_id = str(uuid.uuid4())
        queued = time.perf_counter_ns()
        self.events.put((request_id, event))
        return request_id, queued

    def wait_response(self, request_id, process):
        """Waits for the response to `request_id`: (time received, decoded API Gateway reply)."""
        deadline = time.monotonic() + INVOCATION_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                kind, rid, received, body = self.results.get(timeout=0.1)
            except queue.Empty:
                if process.poll() is not None:
                    raise RuntimeError(f"the handler exited with {process.returncode}")
                continue
            if kind == "response" and rid == request_id:
                return received, json.loads(body)
            raise RuntimeError(f"{kind} for {rid}: {body.decode(errors='replace')[:2000]}")
        raise RuntimeError(f"no response to {request_id} within {INVOCATION_TIMEOUT_S} s")

    def wait_poll(self, timeout=5.0):
        """Waits until the handler asks for its next event (it is idle then)."""
        try:
            self.polls.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError("the handler did not poll for its next event") from None

    def close(self):
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()


def http_event(method, path, sub, body=None):
    """An API Gateway HTTP API (payload 2.0) event with a JWT authorizer's `sub` claim."""
    now = time.time()
    headers = {
        "accept": "application/json",
        "host": "bench.execute-api.us-east-1.amazonaws.com",
        "user-agent": "coldstart-bench",
    }
    if body is not None:
        headers["content-type"] = "application/json"
        headers["content-length"] = str(len(body.encode()))
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "authorizer": {"jwt": {"claims": {"sub": sub}, "scopes": None}},
            "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "bench",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "coldstart-bench",
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": body,
        "isBase64Encoded": False,
    }


def message_event(sub, session_id):
    body = json.dumps({"message": QUESTION})
    return http_event("POST", f"/sessions/{session_id}/messages", sub, body)


def reply_body(reply, expected_status, what):
    status = reply.get("statusCode")
    body = json.loads(reply.get("body") or "null")
    if status != expected_status:
        raise RuntimeError(f"{what}: status {status}, expected {expected_status}: {body}")
    return body


def check_turn(body):
    if body.get("steps") != 2 or "84" not in body.get("answer", ""):
        raise RuntimeError(f"the turn did not use the calculator as expected: {body}")


def proc_status(pid):
    """VmHWM and VmRSS of `pid`, in KiB."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                values[name] = int(rest.split()[0])
    return values


class FunctionProcess:
    """One function process (one execution environment) with its Runtime API, started with the
    environment Lambda gives a 128 MB function in us-east-1 plus `env` and `extra_env`
    (`NAME=VALUE` strings)."""

    def __init__(self, name, binary, env, log_path, extra_env=()):
        self.api = RuntimeApi(function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}")
        full_env = {
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2025/01/01/[$LATEST]0123456789abcdef",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_SESSION_TOKEN": "bench-session-token",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        full_env.update(env)
        for pair in extra_env:
            key, _, value = pair.partition("=")
            full_env[key] = value
        self.log = open(log_path, "ab")
        self.started = time.perf_counter_ns()
        self.process = subprocess.Popen(
            [binary], env=full_env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT
        )
        # Popen returns once exec has succeeded: the harness's own share of the time.
        self.spawn_ms = (time.perf_counter_ns() - self.started) / 1e6

    def call(self, event):
        """Runs one invocation: (ms from spawn to response, ms from event queued, reply)."""
        request_id, queued = self.api.invoke(event)
        received, reply = self.api.wait_response(request_id, self.process)
        return (received - self.started) / 1e6, (received - queued) / 1e6, reply

    def memory(self):
        """Peak and current RSS (KiB) once the function is idle, polling for its next event."""
        self.api.wait_poll()
        return proc_status(self.process.pid)

    def record_idle(self, record):
        """Records the harness's spawn time and, once the function is idle, its peak and current
        RSS through `record(name, value)`."""
        record("harness_spawn_ms", self.spawn_ms)
        memory = self.memory()
        record("vmhwm_kib", memory["VmHWM"])
        record("vmrss_kib", memory["VmRSS"])

    def log_tail(self, size=3000):
        """The last `size` bytes of the function's log, as text."""
        with open(self.log.name, "rb") as log:
            return log.read()[-size:].decode(errors="replace")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.api.close()
        self.log.close()


class Handler(FunctionProcess):
    """The session handler, with its table, model and the caller's endpoints and credentials."""

    def __init__(self, binary, table, log_path, extra_env=()):
        env = {
            "TABLE_NAME": table,
            "MODEL_ID": MODEL_ID,
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "bench"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "bench"),
        }
        for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"):
            if os.environ.get(name):
                env[name] = os.environ[name]
        super().__init__("session-handler", binary, env, log_path, extra_env)


def summary(values):
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "min": ordered[0],
        "median": statistics.median(ordered),
        "p90": ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)],
        "max": ordered[-1],
    }


def run_case(case, args, log_dir):
    """Runs one case; returns its result dict."""
    log_path = os.path.join(log_dir, f"{case}.log")
    samples = {}

    def record(name, value):
        samples.setdefault(name, []).append(value)

    def handler():
        return Handler(args.binary, args.table, log_path, args.env)

    sessions = []
    owner = f"bench-{uuid.uuid4().hex[:8]}"
    if case == "turn":
        # Sessions made beforehand by one warm process, so each cold process's first
        # invocation is the turn itself.
        setup = handler()
        try:
            for _ in range(args.runs):
                _, _, reply = setup.call(http_event("POST", "/sessions", owner))
                sessions.append(reply_body(reply, 201, "POST /sessions")["session_id"])
        finally:
            setup.stop()

    runs = 1 if case == "rss-turns" else args.runs
    for run in range(runs):
        process = handler()
        try:
            sub = f"bench-{uuid.uuid4().hex[:8]}"
            if case == "tools":
                spawn_ms, _, reply = process.call(http_event("GET", "/tools", sub))
                reply_body(reply, 200, "GET /tools")
                record("spawn_to_response_ms", spawn_ms)
            elif case == "turn":
                spawn_ms, _, reply = process.call(message_event(owner, sessions[run]))
                check_turn(reply_body(reply, 200, "POST message"))
                record("spawn_to_response_ms", spawn_ms)
            elif case == "session-turn":
                spawn_ms, _, reply = process.call(http_event("POST", "/sessions", sub))
                session = reply_body(reply, 201, "POST /sessions")["session_id"]
                record("spawn_to_session_response_ms", spawn_ms)
                spawn_ms, invoke_ms, reply = process.call(message_event(sub, session))
                check_turn(reply_body(reply, 200, "POST message"))
                record("spawn_to_turn_response_ms", spawn_ms)
                record("turn_invocation_ms", invoke_ms)
            elif case == "rss-turns":
                _, _, reply = process.call(http_event("POST", "/sessions", sub))
                session = reply_body(reply, 201, "POST /sessions")["session_id"]
                for turn in range(args.turns):
                    _, invoke_ms, reply = process.call(message_event(sub, session))
                    body = reply_body(reply, 200, "POST message")
                    check_turn(body)
                    if body.get("turn") != turn + 1:
                        raise RuntimeError(f"turn {turn + 1} answered as {body.get('turn')}")
                    record("turn_invocation_ms", invoke_ms)
            process.record_idle(record)
        except Exception:
            tail = process.log_tail()
            print(f"coldstart: case {case}, run {run + 1} failed; handler log tail:\n{tail}", file=sys.stderr)
            raise
        finally:
            process.stop()
    result = {"case": case, "runs": runs}
    for name, values in samples.items():
        result[name] = summary(values)
    if case == "rss-turns":
        result["turns"] = args.turns
    return result


def warm_up(args, log_dir):
    """Turns on one process, untimed, so DynamoDB Local's JVM has compiled its hot paths
    before anything is measured (the real DynamoDB has no such warm-up)."""
    if args.warmup_turns == 0:
        return
    process = Handler(args.binary, args.table, os.path.join(log_dir, "warm-up.log"), args.env)
    try:
        sub = f"bench-{uuid.uuid4().hex[:8]}"
        session = None
        for turn in range(args.warmup_turns):
            if turn % 10 == 0:
                _, _, reply = process.call(http_event("POST", "/sessions", sub))
                session = reply_body(reply, 201, "POST /sessions")["session_id"]
            _, _, reply = process.call(message_event(sub, session))
            check_turn(reply_body(reply, 200, "POST message"))
    finally:
        process.stop()
    print(f"warmed DynamoDB Local and the stand-in up with {args.warmup_turns} turns (untimed)")


def print_result(result):
    print(f"\n{result['case']} ({result['runs']} run{'s' if result['runs'] != 1 else ''}"
          f"{', ' + str(result['turns']) + ' turns' if 'turns' in result else ''})")
    print(f"  {'metric':32} {'min':>9} {'median':>9} {'p90':>9} {'max':>9}")
    for name, stats in result.items():
        if not isinstance(stats, dict):
            continue
        if name.endswith("_kib"):
            cells = [f"{stats[k] / 1024:8.1f}M" for k in ("min", "median", "p90", "max")]
        else:
            cells = [f"{stats[k]:7.2f}ms" for k in ("min", "median", "p90", "max")]
        print(f"  {name:32} {' '.join(cells)}")


def write_results(json_path, header, load_before, results):
    """Writes `header` + the load averages + `results` to `json_path` (if given) and prints the
    load averages."""
    if json_path:
        with open(json_path, "w", encoding="utf-8") as out:
            json.dump(
                {**header, "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "results": results},
                out,
                indent=2,
            )
    print(f"\nload average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (1 min)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default="target/release/session-handler")
    parser.add_argument("--case", action="append", choices=["tools", "turn", "session-turn", "rss-turns"])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--table", default="")
    parser.add_argument(
        "--warmup-turns",
        type=int,
        default=200,
        help="untimed turns before the turn cases, to warm DynamoDB Local's JVM (default 200)",
    )
    parser.add_argument("--json", dest="json_path")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra environment variable for the handler (repeatable), for experiments",
    )
    args = parser.parse_args()
    if not 1 <= args.runs <= 200 or not 1 <= args.turns <= 200 or not 0 <= args.warmup_turns <= 500:
        parser.error("--runs and --turns must be between 1 and 200, --warmup-turns 0 to 500")
    if not os.access(args.binary, os.X_OK):
        parser.error(f"{args.binary} is not an executable; build it with cargo build --release")
    cases = args.case or ["tools"]
    if any(case != "tools" for case in cases):
        missing = [
            name
            for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
            if not os.environ.get(name)
        ]
        if missing or not args.table:
            parser.error(f"the turn cases need --table and {', '.join(missing) or 'the endpoints'}")
    args.table = args.table or "bench-unused"

    results = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="coldstart-") as log_dir:
        # The no-I/O case first, while DynamoDB Local is idle (its JVM competes for the 2 cores
        # after a warm-up); then the warm-up; then the turn cases.
        cases = sorted(cases, key=lambda case: case != "tools")
        warmed = False
        for case in cases:
            if case != "tools" and not warmed:
                warm_up(args, log_dir)
                warmed = True
            results.append(run_case(case, args, log_dir))
            print_result(results[-1])
    write_results(args.json_path, {"binary": args.binary}, load_before, results)


if __name__ == "__main__":
    main()
