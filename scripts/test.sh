#!/usr/bin/env bash
# Runs every test of the workspace: unit, integration (real Distribution registries,
# skopeo, fault-injecting proxies, all started on loopback by the tests) and doc tests.
# Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
    cargo test --workspace --doc
else
    cargo test --workspace --no-fail-fast
fi
