#!/usr/bin/env python3
"""Create a Secrets Manager secret, or give an existing one a new value, idempotently.

The value is read from stdin (never from the command line, where other users of the machine
could see it in the process list). Run with the venv's python (boto3):

    printf %s "$VALUE" | .venv/bin/python scripts/put-secret.py --name NAME [--endpoint URL]

URL defaults to $AWS_ENDPOINT_URL_SECRETS_MANAGER (moto_server locally); region to $AWS_REGION or
us-east-1. Prints the secret's name, never its value.
"""

import argparse
import os
import sys

import boto3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER"))
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    args = parser.parse_args()
    value = sys.stdin.read()
    if not value:
        sys.exit("put-secret: no value on stdin")
    client = boto3.client("secretsmanager", endpoint_url=args.endpoint, region_name=args.region)
    try:
        client.create_secret(Name=args.name, SecretString=value)
        print(f"put-secret: created {args.name}")
    except client.exceptions.ResourceExistsException:
        client.put_secret_value(SecretId=args.name, SecretString=value)
        print(f"put-secret: new value for {args.name}")


if __name__ == "__main__":
    main()
