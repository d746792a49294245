#!/usr/bin/env bash
# e2e_serve.sh - `bitnet serve` as an HTTP client meets it: starts the server
# on a free loopback port with a generated model and runs tests/serve_test.py
# (Python's urllib and http.client) against it: every endpoint, streaming,
# concurrency against sequential results, malformed requests, disconnects,
# the API key. Skips when the server was not built.
set -u
source "$(dirname "$0")/e2e_lib.sh"
BIN=$1
TMP=$2
mkdir -p "$TMP"
if ! command -v python3 >/dev/null; then
    skip "python3 is not installed"
fi
if "$BIN" serve -m /nonexistent 2>&1 | grep -q "built without the server"; then
    skip "bitnet was built without the server (libmicrohttpd-dev, libcjson-dev)"
fi
exec timeout 600 python3 "$(dirname "$0")/serve_test.py" "$BIN" "$TMP"
