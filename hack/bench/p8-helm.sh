#!/usr/bin/env bash
# hack/bench/p8-helm.sh [COUNTS] — benchmark P8 of helm-controller: for each count in COUNTS (default "100";
# "100 1000" for both of Flux's figures), that many HelmReleases of one small chart (`helm create`, from an
# HTTP chart repository on loopback; each its own HelmChart, as Flux makes them), created at once, until all
# are Ready: the time, helm-controller's peak RSS (its helm processes counted separately: one `helm
# install` of the chart measured on its own), beside Flux's published 27 s / 8m12s at 190/400 MiB for
# 100/1000. Workloads are not waited for (`disableWait`): the test cluster runs no controllers.
#
# Runs on its own test-cluster instance "bench" (hack/testcluster.sh), stopped at the end unless
# DRIFTLESS_KEEP_CLUSTER is set; source-controller and helm-controller run as local processes with
# --concurrent=$CONCURRENT (default 10). BENCH_PROFILE=debug uses debug builds (smoke runs only).
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNTS=${1:-100}
CONCURRENT=${CONCURRENT:-10}
SCRATCH=$(mktemp -d)
PIDS=()
STARTED=""
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$SCRATCH/lighttpd.pid" ] && kill "$(cat "$SCRATCH/lighttpd.pid")" 2>/dev/null || true
  [ -n "$STARTED" ] && [ -z "${DRIFTLESS_KEEP_CLUSTER:-}" ] && hack/testcluster.sh stop bench >/dev/null 2>&1 || true
  rm -rf "$SCRATCH"
}
trap cleanup EXIT
log() { echo "[p8 $(date +%T)] $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kib() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status"; }
export PATH="$(bash hack/tools.sh bin):$PATH"
export HELM_CACHE_HOME=$SCRATCH/helm/cache HELM_CONFIG_HOME=$SCRATCH/helm/config HELM_DATA_HOME=$SCRATCH/helm/data

hack/testcluster.sh status bench >/dev/null 2>&1 || STARTED=1
hack/testcluster.sh start bench >/dev/null
export KUBECONFIG=$(hack/testcluster.sh kubeconfig bench)
PROFILE=${BENCH_PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-target}
if [ "$PROFILE" = debug ]; then cargo build -q -p source-controller -p helm-controller
else cargo build -q --release -p source-controller -p helm-controller; fi
BIN=$TARGET/$PROFILE
kubectl apply --server-side --force-conflicts -k crds >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null

# the chart repository
mkdir -p "$SCRATCH/www"
( cd "$SCRATCH" && helm create podinfo >/dev/null && helm package podinfo -d "$SCRATCH/www" >/dev/null )
helm repo index "$SCRATCH/www"
PORT=$(free_port)
cat > "$SCRATCH/lighttpd.conf" <<EOC
server.bind = "127.0.0.1"
server.port = $PORT
server.document-root = "$SCRATCH/www"
server.errorlog = "$SCRATCH/lighttpd.log"
server.pid-file = "$SCRATCH/lighttpd.pid"
EOC
lighttpd -f "$SCRATCH/lighttpd.conf"

# one helm install on its own: what each of helm-controller's helm processes takes
kubectl create namespace p8-probe >/dev/null 2>&1 || true
helm uninstall probe -n p8-probe >/dev/null 2>&1 || true # left by an earlier run on a kept instance
HELM_RSS=$( { /usr/bin/time -f '%M' helm install probe "$SCRATCH/www/podinfo-0.1.0.tgz" -n p8-probe >/dev/null ; } 2>&1 | tail -1)

printf '\n%-34s %12s %12s %14s\n' "P8 HelmReleases until Ready" "driftless" "peak RSS" "Flux (published)"
for n in $COUNTS; do
  ns=p8-$n
  kubectl create namespace "$ns" >/dev/null 2>&1 || true
  SPORT=$(free_port)
  "$BIN/source-controller" --metrics-addr=127.0.0.1:0 --health-addr=127.0.0.1:0 --storage-addr=127.0.0.1:$SPORT \
    --storage-path="$SCRATCH/storage-$n" --watch-all-namespaces=false --runtime-namespace="$ns" \
    --concurrent="$CONCURRENT" > "$SCRATCH/source-$n.log" 2>&1 &
  PIDS+=($!)
  "$BIN/helm-controller" --metrics-addr=127.0.0.1:0 --health-addr=127.0.0.1:0 --watch-all-namespaces=false \
    --runtime-namespace="$ns" --concurrent="$CONCURRENT" --helm-binary="$(command -v helm)" > "$SCRATCH/helm-$n.log" 2>&1 &
  HELM_PID=$!
  PIDS+=($HELM_PID)
  {
    echo "apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: charts, namespace: $ns}
spec: {interval: 1h, url: http://127.0.0.1:$PORT}"
    for i in $(seq 0 $((n - 1))); do
      echo "---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: r-$i, namespace: $ns}
spec:
  interval: 1h
  chart: {spec: {chart: podinfo, sourceRef: {kind: HelmRepository, name: charts}}}
  install: {disableWait: true}"
    done
  } > "$SCRATCH/objects-$n.yaml"
  t0=$(date +%s%N)
  kubectl apply --server-side -f "$SCRATCH/objects-$n.yaml" >/dev/null
  while :; do
    ready=$(kubectl -n "$ns" get helmreleases -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True || true)
    [ "$ready" -ge "$n" ] && break
    [ $(( ($(date +%s%N) - t0) / 1000000000 )) -gt 1800 ] && { log "not Ready after 30 min ($ready/$n)"; tail -20 "$SCRATCH/helm-$n.log" >&2; exit 1; }
    sleep 0.5
  done
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  rss=$(kib "$HELM_PID" VmHWM)
  case $n in 100) flux="27 s, 190 MiB";; 1000) flux="8m12s, 400 MiB";; *) flux="-";; esac
  printf '%-34s %10.1f s %9s MiB %14s\n' "$n HelmReleases" "$(awk -v m="$ms" 'BEGIN{print m/1000}')" "$((rss / 1024))" "$flux"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  PIDS=()
done
printf '%-34s %23s\n' "one helm install, on its own" "$((HELM_RSS / 1024)) MiB peak RSS"
