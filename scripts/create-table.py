#!/usr/bin/env python3
"""Create the agent's single DynamoDB table, idempotently.

Keys PK (S, HASH) and SK (S, RANGE), PAY_PER_REQUEST, TTL on `expires_at` -- the same
table as template.yaml. Run with the venv's python (boto3):

    .venv/bin/python scripts/create-table.py [--table NAME] [--endpoint URL] [--region R]

NAME defaults to $TABLE_NAME, URL to $AWS_ENDPOINT_URL_DYNAMODB (DynamoDB Local), region to
$AWS_REGION or us-east-1. An existing table with the same key schema is left as is (TTL is
still switched on if it is off); one with another key schema is an error.
"""

import argparse
import os
import sys
import time

import boto3
from botocore.exceptions import ClientError

TTL_ATTRIBUTE = "expires_at"
KEY_SCHEMA = [
    {"AttributeName": "PK", "KeyType": "HASH"},
    {"AttributeName": "SK", "KeyType": "RANGE"},
]
ATTRIBUTES = [
    {"AttributeName": "PK", "AttributeType": "S"},
    {"AttributeName": "SK", "AttributeType": "S"},
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=os.environ.get("TABLE_NAME"))
    parser.add_argument(
        "--endpoint",
        default=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("DYNAMODB_ENDPOINT"),
        help="DynamoDB endpoint (default: $AWS_ENDPOINT_URL_DYNAMODB)",
    )
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or "us-east-1")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for ACTIVE")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args()
    if not args.table:
        parser.error("no table name: pass --table or set TABLE_NAME")
    return args


def wait_active(client, table, timeout):
    deadline = time.monotonic() + timeout
    while True:
        status = client.describe_table(TableName=table)["Table"]["TableStatus"]
        if status == "ACTIVE":
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"create-table: {table} is still {status} after {timeout:.0f}s")
        time.sleep(0.5)


def main():
    args = parse_args()
    client = boto3.client("dynamodb", endpoint_url=args.endpoint, region_name=args.region)
    say = (lambda *_: None) if args.quiet else (lambda msg: print(f"create-table: {msg}"))

    created = False
    try:
        client.create_table(
            TableName=args.table,
            KeySchema=KEY_SCHEMA,
            AttributeDefinitions=ATTRIBUTES,
            BillingMode="PAY_PER_REQUEST",
            # As template.yaml: the memory extractor reads new images from the stream.
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )
        created = True
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceInUseException":
            raise
    wait_active(client, args.table, args.timeout)

    if not created:
        schema = client.describe_table(TableName=args.table)["Table"]["KeySchema"]
        if sorted((k["AttributeName"], k["KeyType"]) for k in schema) != sorted(
            (k["AttributeName"], k["KeyType"]) for k in KEY_SCHEMA
        ):
            raise SystemExit(f"create-table: {args.table} exists with another key schema: {schema}")

    # A table made before the stream was part of the data model gets it now.
    stream = client.describe_table(TableName=args.table)["Table"].get("StreamSpecification") or {}
    if not stream.get("StreamEnabled"):
        client.update_table(
            TableName=args.table,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )
        wait_active(client, args.table, args.timeout)

    ttl = client.describe_time_to_live(TableName=args.table)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        if ttl.get("AttributeName") != TTL_ATTRIBUTE:
            raise SystemExit(
                f"create-table: {args.table} has TTL on {ttl.get('AttributeName')!r}, not {TTL_ATTRIBUTE!r}"
            )
    else:
        client.update_time_to_live(
            TableName=args.table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )

    where = args.endpoint or f"AWS {args.region}"
    say(f"{'created' if created else 'exists'}: {args.table} at {where} (PK/SK, TTL on {TTL_ATTRIBUTE}, stream of new images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
