#!/usr/bin/env bash
# Installs the Debian packages Gantry's tests, quickstart and benchmarks use, if missing:
# the Distribution registry, skopeo, htpasswd (apache2-utils), GNU time, Prometheus
# (the metric-gate tests run a real one) and PostgreSQL (the store suite runs on it;
# scripts/test.sh starts a throwaway cluster when no server is at hand).
set -euo pipefail

need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
[ -x /usr/bin/time ] || need+=(time)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)

if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}" >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: missing ${need[*]}; run as root, or: sudo apt-get install ${need[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian starts the registry service on install; Gantry's tests start their own.
# The same for Prometheus.
for unit in docker-registry prometheus prometheus-node-exporter; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$unit" 2>/dev/null; then
        systemctl stop "$unit" || true
    fi
done
# The signature interop tests check Gantry against independent Python verifiers.
if ! python3 -c "import cryptography, securesystemslib, sigstore" >/dev/null 2>&1; then
    echo "installing: python3 packages cryptography securesystemslib sigstore" >&2
    python3 -m pip install --quiet cryptography securesystemslib sigstore
fi
