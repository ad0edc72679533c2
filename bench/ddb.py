#!/usr/bin/env python3
"""A few DynamoDB calls for the benchmarks, with the Python standard library only.

Usage (endpoint from AWS_ENDPOINT_URL_DYNAMODB, a loopback address):

    python3 bench/ddb.py wait-ready [SECONDS]   # until DynamoDB Local answers ListTables
    python3 bench/ddb.py create-table NAME      # PK (S, HASH), SK (S, RANGE), PAY_PER_REQUEST
    python3 bench/ddb.py delete-table NAME

Requests are signed with SigV4 using AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION
(defaults: bench / bench / us-east-1). DynamoDB Local keeps one database per access key and
region, so these must match what the session handler is started with.
"""

import datetime
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

SERVICE = "dynamodb"


def _credentials():
    return (
        os.environ.get("AWS_ACCESS_KEY_ID", "bench"),
        os.environ.get("AWS_SECRET_ACCESS_KEY", "bench"),
        os.environ.get("AWS_REGION", "us-east-1"),
    )


def _endpoint():
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB", "").strip()
    if not endpoint:
        raise SystemExit("ddb.py: AWS_ENDPOINT_URL_DYNAMODB is not set")
    host = urllib.parse.urlsplit(endpoint).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"ddb.py: refusing a non-loopback endpoint {endpoint}")
    return endpoint


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _signed_headers(url, body, target):
    access_key, secret_key, region = _credentials()
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    parts = urllib.parse.urlsplit(url)
    headers = {
        "content-type": "application/x-amz-json-1.0",
        "host": parts.netloc,
        "x-amz-date": amz_date,
        "x-amz-target": f"DynamoDB_20120810.{target}",
    }
    names = sorted(headers)
    canonical_request = "\n".join(
        [
            "POST",
            parts.path or "/",
            "",
            "".join(f"{name}:{headers[name]}\n" for name in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{date}/{region}/{SERVICE}/aws4_request"
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, SERVICE, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers


def call(target, payload, timeout=10.0):
    """One DynamoDB JSON call; returns the decoded answer or raises RuntimeError."""
    url = _endpoint().rstrip("/") + "/"
    body = json.dumps(payload).encode()
    request = urllib.request.Request(
        url, data=body, headers=_signed_headers(url, body, target), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        raise RuntimeError(
            f"{target} failed: HTTP {error.code} {error.read().decode(errors='replace')}"
        ) from None


def wait_ready(seconds=60.0):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            call("ListTables", {}, timeout=2.0)
            return
        except (OSError, RuntimeError) as error:
            last = error
            time.sleep(0.2)
    raise SystemExit(f"ddb.py: DynamoDB Local did not answer within {seconds:.0f} s: {last}")


def create_table(name):
    call(
        "CreateTable",
        {
            "TableName": name,
            "AttributeDefinitions": [
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
            "KeySchema": [
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )
    for _ in range(100):
        status = call("DescribeTable", {"TableName": name})["Table"]["TableStatus"]
        if status == "ACTIVE":
            return
        time.sleep(0.1)
    raise SystemExit(f"ddb.py: table {name} did not become ACTIVE")


def delete_table(name):
    call("DeleteTable", {"TableName": name})


def main(argv):
    if len(argv) >= 1 and argv[0] == "wait-ready":
        wait_ready(float(argv[1]) if len(argv) > 1 else 60.0)
    elif len(argv) == 2 and argv[0] == "create-table":
        create_table(argv[1])
    elif len(argv) == 2 and argv[0] == "delete-table":
        delete_table(argv[1])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
