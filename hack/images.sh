#!/usr/bin/env bash
# hack/images.sh --registry HOST:PORT [--tag TAG] [--profile release|debug] [--only NAME,...]
#
# Builds driftless's container images WITHOUT a container engine and pushes them to the registry: for each
# controller (and the `driftless` CLI, which also serves the dashboard) one layer holding the binary, the
# shared libraries it links (from this machine's Debian, found with ldd, the loader included), the CA
# bundle, a passwd/group with the non-root user 65532, and /tmp; helm-controller's also holds the pinned
# `helm` hack/tools.sh installs. `crane append` pushes it onto an empty OCI base and `crane mutate` sets the
# entrypoint, the user and the OCI labels — what the Dockerfiles (controllers/*/Dockerfile, for a machine
# with an engine) make. The registry is reached over plain HTTP when it is on loopback.
#
# Images: REGISTRY/<name>:TAG — REGISTRY may carry a path: `--registry ghcr.io/driftless-io` makes the names
# config/ uses (TAG defaults to the workspace version). --profile debug packs
# the test build (tests only: large, unoptimised).
set -euo pipefail
cd "$(dirname "$0")/.."
REGISTRY= TAG= PROFILE=release ONLY=
while [ $# -gt 0 ]; do
  case "$1" in
    --registry) REGISTRY=$2; shift 2 ;;
    --tag) TAG=$2; shift 2 ;;
    --profile) PROFILE=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    *) echo "usage: hack/images.sh --registry HOST:PORT[/PATH] [--tag TAG] [--profile release|debug] [--only NAME,...]" >&2; exit 2 ;;
  esac
done
[ -n "$REGISTRY" ] || { echo "hack/images.sh: --registry HOST:PORT is required" >&2; exit 2; }
log() { echo "[images $(date +%T)] $*" >&2; }
TOOLS=$(bash hack/tools.sh bin)
CRANE=$TOOLS/crane
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
TAG=${TAG:-$VERSION}
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
CREATED=$(git log -1 --format=%cI 2>/dev/null || date -u +%FT%TZ)
INSECURE=()
case "$REGISTRY" in 127.*|localhost*|\[::1\]*) INSECURE=(--insecure) ;; esac

# name, binary, package, what it is
IMAGES=(
  "source-controller|source-controller|source-controller|fetches Git, OCI, Helm and S3 sources into artifacts"
  "kustomize-controller|kustomize-controller|kustomize-controller|builds, applies, prunes and health-checks Kustomizations"
  "helm-controller|helm-controller|helm-controller|installs, upgrades, tests and rolls back HelmReleases"
  "notification-controller|notification-controller|notification-controller|forwards events and serves webhook receivers"
  "image-reflector-controller|image-reflector-controller|image-reflector-controller|scans registries and picks image tags by policy"
  "image-automation-controller|image-automation-controller|image-automation-controller|commits picked image tags back to Git"
  "driftless|driftless|driftless|the driftless CLI and web dashboard"
)
selected() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

packages=()
for spec in "${IMAGES[@]}"; do IFS='|' read -r name _ package _ <<<"$spec"; selected "$name" && packages+=(-p "$package"); done
[ ${#packages[@]} -gt 0 ] || { echo "hack/images.sh: --only names no image" >&2; exit 2; }
TARGET=${CARGO_TARGET_DIR:-target}
if [ "$PROFILE" = release ]; then
  log "cargo build --release ${packages[*]}"; cargo build -q --release "${packages[@]}"; BIN=$TARGET/release
else
  log "cargo build ${packages[*]}"; cargo build -q "${packages[@]}"; BIN=$TARGET/debug
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for spec in "${IMAGES[@]}"; do
  IFS='|' read -r name binary _ about <<<"$spec"
  selected "$name" || continue
  root=$WORK/$name/root
  mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp"
  chmod 1777 "$root/tmp"
  cp "$BIN/$binary" "$root/usr/local/bin/$binary"
  strip "$root/usr/local/bin/$binary" 2>/dev/null || true
  extra=()
  if [ "$name" = helm-controller ]; then
    cp "$(readlink -f "$TOOLS/helm")" "$root/usr/local/bin/helm"; extra+=("$root/usr/local/bin/helm")
  fi
  # the shared libraries each binary links, and the loader, at the paths it looks for them
  for exe in "$root/usr/local/bin/$binary" "${extra[@]}"; do
    { ldd "$exe" 2>/dev/null || true; } | awk '/=> \//{print $3} $1 ~ /^\//{print $1}' | while read -r lib; do
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  done
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' > "$root/etc/group"
  mkdir -p "$root/home/nonroot"
  # NB: reproducible: sorted entries, fixed times and owners
  tar --sort=name --mtime="$CREATED" --owner=0 --group=0 --numeric-owner -C "$root" -czf "$WORK/$name/layer.tar.gz" .
  ref=$REGISTRY/$name:$TAG
  log "pushing $ref ($(du -h "$WORK/$name/layer.tar.gz" | cut -f1) layer)"
  "$CRANE" append "${INSECURE[@]}" --oci-empty-base --platform linux/amd64 -f "$WORK/$name/layer.tar.gz" -t "$ref" >/dev/null
  "$CRANE" mutate "${INSECURE[@]}" "$ref" -t "$ref" \
    --entrypoint "/usr/local/bin/$binary" --user 65532:65532 --workdir / \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --set-platform linux/amd64 \
    -l org.opencontainers.image.title="$name" \
    -l org.opencontainers.image.description="driftless $name: $about" \
    -l org.opencontainers.image.source=https://github.com/driftless-io/driftless \
    -l org.opencontainers.image.version="$TAG" \
    -l org.opencontainers.image.revision="$REVISION" \
    -l org.opencontainers.image.created="$CREATED" \
    -l org.opencontainers.image.licenses=Apache-2.0 \
    -l org.opencontainers.image.vendor=driftless >/dev/null
  echo "$ref"
done
