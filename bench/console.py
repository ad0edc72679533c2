#!/usr/bin/env python3
"""Load time and weight of the web console, in headless Chromium, against a running stack.

Loads API + /console --runs times with the browser cache off (each load fetches the page and
every asset in full: a first visit), reads each load's Navigation Timing `loadEventEnd` (ms
from the navigation's start to the end of the load event: the page, its style, its modules and
their imports, parsed and run), and prints the median (with min, p90, max). The weight is what
the browser received for the page and its assets (Resource Timing `encodedBodySize`; the
console's own API calls, fetch()es, are not counted), and the same with headers
(`transferSize`). One untimed load first: `cargo lambda watch` compiles the function on its
first request.

    API=http://127.0.0.1:9000/lambda-url/session-handler .venv/bin/python3 bench/console.py --runs 20
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "browser"))
from test_console import chromium  # noqa: E402  (one way to start the browser, the test's)

LOADED = """
const nav = performance.getEntriesByType('navigation')[0];
if (!nav || nav.loadEventEnd <= 0) return null;
const files = [nav, ...performance.getEntriesByType('resource').filter((r) => r.initiatorType !== 'fetch')];
return {
  load_ms: nav.loadEventEnd,
  files: files.map((r) => ({ name: new URL(r.name).pathname.split('/').pop(), body: r.encodedBodySize, transfer: r.transferSize })),
};
"""


def load(driver, url, timeout=600):
    driver.get("about:blank")
    driver.get(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = driver.execute_script(LOADED)
        if entry:
            return entry
        time.sleep(0.02)
    raise TimeoutError(f"{url} did not finish loading in {timeout} s")


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", "20")))
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    api = os.environ.get("API") or os.environ.get("E2E_API_URL")
    if not api:
        sys.exit("bench/console: set API to a running stack's API URL (make dev prints it)")
    url = api.rstrip("/") + "/console"

    driver = chromium()
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        load(driver, url)  # warm-up: the function may be compiling
        loads = [load(driver, url) for _ in range(args.runs)]
    finally:
        driver.quit()

    times = [entry["load_ms"] for entry in loads]
    files = loads[-1]["files"]
    body = sum(f["body"] for f in files)
    transfer = sum(f["transfer"] for f in files)
    result = {
        "url": url,
        "runs": args.runs,
        "load_ms": {
            "median": statistics.median(times),
            "min": min(times),
            "p90": percentile(times, 0.9),
            "max": max(times),
        },
        "bytes": {"body": body, "transfer": transfer, "files": files},
    }
    print(
        f"console: page load (loadEventEnd, cache off), median of {args.runs}: "
        f"{result['load_ms']['median']:.1f} ms "
        f"(min {result['load_ms']['min']:.1f}, p90 {result['load_ms']['p90']:.1f}, "
        f"max {result['load_ms']['max']:.1f})"
    )
    print(
        f"console: page and assets: {body:,} bytes in {len(files)} files "
        f"({transfer:,} bytes with headers): "
        + ", ".join(f"{f['name'] or 'console'} {f['body']:,}" for f in files)
    )
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
