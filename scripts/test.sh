#!/usr/bin/env bash
# Runs every test of the workspace: unit, integration (real Distribution registries,
# skopeo, fault-injecting proxies, all started on loopback by the tests; PostgreSQL, see
# below) and doc tests. Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

# A throwaway PostgreSQL cluster in a temporary directory, on a free loopback port, with
# trust authentication for the user postgres; stopped and removed when this script exits.
start_throwaway_postgres() {
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
        echo "error: no PostgreSQL server to test against and none installed" \
            "(/usr/lib/postgresql/*/bin/initdb): run scripts/install-deps.sh as root," \
            "or set GANTRY_TEST_POSTGRES" >&2
        exit 1
    fi
    pg_dir=$(mktemp -d -t gantry-postgres.XXXXXX)
    # initdb refuses to run as root: then the cluster belongs to the postgres user.
    pg_as=()
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$pg_dir"
        pg_as=(runuser -u postgres --)
    fi
    trap stop_throwaway_postgres EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    if ! "${pg_as[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust \
        --encoding=UTF8 --no-sync >"$pg_dir/initdb.log" 2>&1; then
        cat "$pg_dir/initdb.log" >&2
        exit 1
    fi
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if ! "${pg_as[@]}" "$pg_bin/pg_ctl" start -w -D "$pg_dir/data" -l "$pg_dir/server.log" \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $pg_dir -c fsync=off" >/dev/null; then
        cat "$pg_dir/server.log" >&2
        exit 1
    fi
    export GANTRY_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres"
    echo "started a throwaway PostgreSQL on 127.0.0.1:$port ($pg_dir)" >&2
}

stop_throwaway_postgres() {
    "${pg_as[@]}" "$pg_bin/pg_ctl" stop -D "$pg_dir/data" -m fast -w >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
}

# The store suite runs on the PostgreSQL server GANTRY_TEST_POSTGRES names; unset, the
# tests use postgres://postgres@127.0.0.1:5432/postgres if that server answers and lets
# them in, else a throwaway cluster.
if [ -z "${GANTRY_TEST_POSTGRES:-}" ] && ! {
    pg_isready -q -h 127.0.0.1 -p 5432 &&
        psql -X -w -q -d postgres://postgres@127.0.0.1:5432/postgres -c 'SELECT 1' >/dev/null 2>&1
} 2>/dev/null; then
    start_throwaway_postgres
fi

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
    cargo test --workspace --doc
else
    cargo test --workspace --no-fail-fast
fi
