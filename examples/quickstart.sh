#!/usr/bin/env bash
# Gantry's main job in one go, on this machine only: build an image (tar, gzip and
# sha256sum, no Docker), start two throwaway Distribution registries on loopback
# ("dev" and "prod"), push the image to dev, promote its exact digest to prod, tag it,
# and show that skopeo sees the same digest. Everything it starts, it stops.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
echo "== building gantry (release)"
cargo build --release --quiet -p gantry
gantry="$PWD/target/release/gantry"

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
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
    pids+=($!)
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
echo "== CI pushes the build to dev"
"$gantry" copy "oci:$work/layout:build-8812" "$dev/payments/api:sha-4f2c1e9"
echo
echo "== what is it?"
"$gantry" inspect "$dev/payments/api:sha-4f2c1e9"
digest=$("$gantry" inspect -o json "$dev/payments/api:sha-4f2c1e9" | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
echo
echo "== promote that exact digest from dev to prod (one command: copy, then digest check)"
"$gantry" copy "$dev/payments/api@$digest" "$prod/payments/api:1.4.2"
echo
echo "== mark it as what runs in prod: a tag in the same repository, no blob moves"
"$gantry" tag "$prod/payments/api:1.4.2" prod
echo
echo "== again: nothing to do, one manifest request on each side"
"$gantry" copy "$dev/payments/api@$digest" "$prod/payments/api:1.4.2"
echo
echo "== skopeo, independently, sees the same digest in prod"
prod_digest=$(skopeo inspect --raw --tls-verify=false "docker://$prod/payments/api:prod" | sha256sum | cut -d' ' -f1)
echo "dev  $digest"
echo "prod sha256:$prod_digest"
[ "sha256:$prod_digest" = "$digest" ] || { echo "digests differ" >&2; exit 1; }
echo
echo "quickstart done: the digest built once is the digest in prod."
