#!/usr/bin/env bash
# Gantry's main job in one go, on this machine only:
#   - build an image (tar, gzip and sha256sum, no Docker) and push it to a "dev" registry;
#   - start `gantry serve` (SQLite) with a project dev -> staging -> prod
#     (dev and staging `track`, prod `pin`);
#   - create a release: it reaches staging by itself, and prod on an explicit promote;
#   - print the board, the history and the verified ledger.
# Everything runs on loopback with throwaway storage; everything it starts, it stops.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
echo "== building gantry (release)"
cargo build --release --quiet -p gantry
gantry="$PWD/target/release/gantry"

work=$(mktemp -d)
# Every process this script starts, one PID per line. A file, not an array: registries
# start inside command substitutions (subshells), whose variables the script never sees.
pidfile="$work/pids"
: > "$pidfile"
cleanup() {
    local status=$? pid left=()
    while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$pidfile"
    # Wait until they are gone, then say so if one is not: nothing may outlive the script.
    for _ in $(seq 1 50); do
        left=()
        while read -r pid; do kill -0 "$pid" 2>/dev/null && left+=("$pid"); done < "$pidfile"
        [ ${#left[@]} -eq 0 ] && break
        sleep 0.1
    done
    if [ ${#left[@]} -gt 0 ]; then
        echo "error: processes still running after the quickstart: ${left[*]}" >&2
        kill -9 "${left[@]}" 2>/dev/null || true
        status=1
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

# Starts a registry on 127.0.0.1 with a free port; prints host:port.
start_registry() {
    local name=$1 dir="$work/$1"
    mkdir -p "$dir/data"
    cat > "$dir/config.yml" <<YAML
version: 0.1
log: {level: info, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:0, secret: quickstart-$name}
YAML
    docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 &
    echo $! >> "$pidfile"
    local address=""
    for _ in $(seq 1 100); do
        address=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$dir/log" | head -n1 | cut -d' ' -f3) || true
        [ -n "$address" ] && break
        sleep 0.1
    done
    [ -n "$address" ] || { echo "registry $name did not start:" >&2; cat "$dir/log" >&2; exit 1; }
    echo "$address"
}

# A real OCI image in an OCI layout: one gzip'd tar layer, a config with labels.
build_image() {
    local layout=$1 blobs=$1/blobs/sha256
    mkdir -p "$blobs" "$work/rootfs"
    echo "hello from gantry's quickstart, built $(date -u +%FT%TZ)" > "$work/rootfs/hello.txt"
    tar -C "$work/rootfs" -cf "$work/layer.tar" hello.txt
    gzip -n -c "$work/layer.tar" > "$work/layer.tar.gz"
    local diff_id layer layer_size config config_size manifest manifest_size
    diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
    layer=$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
    layer_size=$(stat -c %s "$work/layer.tar.gz")
    cp "$work/layer.tar.gz" "$blobs/$layer"
    printf '{"architecture":"amd64","os":"linux","created":"%s","config":{"Labels":{"org.opencontainers.image.revision":"4f2c1e9","org.opencontainers.image.source":"https://git.example/payments/api","ci.run-id":"8812"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$(date -u +%FT%TZ)" "$diff_id" > "$work/config.json"
    config=$(sha256sum "$work/config.json" | cut -d' ' -f1)
    config_size=$(stat -c %s "$work/config.json")
    cp "$work/config.json" "$blobs/$config"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
        "$config" "$config_size" "$layer" "$layer_size" > "$work/manifest.json"
    manifest=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
    manifest_size=$(stat -c %s "$work/manifest.json")
    cp "$work/manifest.json" "$blobs/$manifest"
    echo '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"build-8812"}}]}' \
        "$manifest" "$manifest_size" > "$layout/index.json"
}

dev=$(start_registry dev)
prod=$(start_registry prod)
echo "== registries: dev at $dev, prod at $prod (loopback, throwaway storage)"

build_image "$work/layout"
echo
echo "== CI pushes build 8812 to the dev registry"
"$gantry" copy "oci:$work/layout:build-8812" "$dev/payments/api:sha-4f2c1e9"

cat > "$work/payments.yaml" <<YAML
project: payments
components:
  api: $dev/payments/api
environments:
  dev:
    binding: track
    strategy: retag
    targets:
      api: {repository: $dev/payments/api}
  staging:
    from: dev
    binding: track
    strategy: retag
    targets:
      api: {repository: $dev/payments/api}
  prod:
    from: staging
    binding: pin
    strategy: copy
    targets:
      api: {repository: $prod/payments/api, tags: [prod, stable]}
YAML
echo
echo "== the project: dev -> staging (track) -> prod (pin)"
cat "$work/payments.yaml"

"$gantry" serve --listen 127.0.0.1:0 --data "$work/gantry-data" --project "$work/payments.yaml" \
    > "$work/serve.out" 2> "$work/serve.err" &
echo $! >> "$pidfile"
url=""
for _ in $(seq 1 100); do
    url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.out" | head -n1) || true
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { echo "gantry serve did not start:" >&2; cat "$work/serve.err" >&2; exit 1; }
export GANTRY_URL="$url"
export GANTRY_TOKEN=$(sed -n 's/^ *export GANTRY_TOKEN=//p' "$work/serve.err")
echo
echo "== gantry serve at $GANTRY_URL (first start: it printed an admin token once)"

echo
echo "== create a release from the build: resolved to a digest once, labels read"
"$gantry" release create --project payments "api=$dev/payments/api:sha-4f2c1e9" --label ci.run=8812
alias=$("$gantry" release create -o json --project payments "api=$dev/payments/api:sha-4f2c1e9" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["alias"])')

echo
echo "== it reaches staging by itself (dev and staging track their upstream)"
for _ in $(seq 1 100); do
    "$gantry" status -o json --project payments |
        python3 -c 'import json,sys; e={x["name"]: x for x in json.load(sys.stdin)["environments"]}; sys.exit(0 if e["staging"]["release_alias"] == sys.argv[1] else 1)' "$alias" && break
    sleep 0.1
done
"$gantry" status --project payments

echo
echo "== prod is pinned: it moves when a person promotes, and the command waits for it"
"$gantry" promote --project payments --release "$alias" --to prod --reason "release 1.4.2" --wait
echo
"$gantry" status --project payments
echo
"$gantry" history --project payments

echo
echo "== skopeo, independently, sees the same digest in prod"
digest=$("$gantry" inspect -o json "$dev/payments/api:sha-4f2c1e9" | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
prod_digest=sha256:$(skopeo inspect --raw --tls-verify=false "docker://$prod/payments/api:prod" | sha256sum | cut -d' ' -f1)
echo "built  $digest"
echo "prod   $prod_digest"
[ "$prod_digest" = "$digest" ] || { echo "digests differ" >&2; exit 1; }

echo
echo "== the ledger: exported, and verified offline against the server's key"
"$gantry" ledger export --out "$work/ledger.jsonl"
"$gantry" ledger verify --key "$("$gantry" ledger key)" "$work/ledger.jsonl"

echo
echo "quickstart done: the digest built once is the digest in prod, and the ledger proves how it got there."
