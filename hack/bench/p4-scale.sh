#!/usr/bin/env bash
# hack/bench/p4-scale.sh [COUNTS] [IDLE] — benchmarks P4 and P6 of kustomize-controller.
#
# P4: for each count in COUNTS (default "100 500 1000"), that many Kustomizations (`wait: false`), each a
# Deployment (0 replicas) + ServiceAccount + Service + Ingress from one GitRepository, created at once:
# the time until all are Ready and kustomize-controller's peak RSS (a fresh controller per count), printed
# beside Flux's published figures (28 s / 2m2s / 4m16s at 32/122/175 MiB for 100/500/1000, on bigger
# hardware). P6: then, with the largest count and nothing changing, IDLE seconds (default 600; 0 skips)
# of reconciles every INTERVAL (default 1m): RSS before/after and the cluster's writes (etcd revisions).
#
# Runs on its own test-cluster instance "bench" (hack/testcluster.sh), stopped at the end unless
# DRIFTLESS_KEEP_CLUSTER is set; source-controller and kustomize-controller run as local processes with
# --concurrent=$CONCURRENT (default 10). BENCH_PROFILE=debug uses debug builds (smoke runs only).
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNTS=${1:-"100 500 1000"}
IDLE=${2:-600}
CONCURRENT=${CONCURRENT:-10}
INTERVAL=${INTERVAL:-1m}
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
log() { echo "[p4 $(date +%T)] $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rev() { kubectl get --raw '/api/v1/namespaces?limit=1' | python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])'; }
kib() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status"; }
# reconciles so far, from kustomize-controller's gotk_reconcile_duration_seconds
reconciles() { curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | awk '/^gotk_reconcile_duration_seconds_count/{s+=$2} END{print s+0}'; }

hack/testcluster.sh status bench >/dev/null 2>&1 || STARTED=1
hack/testcluster.sh start bench >/dev/null
export KUBECONFIG=$(hack/testcluster.sh kubeconfig bench)
PROFILE=${BENCH_PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-target}
if [ "$PROFILE" = debug ]; then cargo build -q -p source-controller -p kustomize-controller
else cargo build -q --release -p source-controller -p kustomize-controller; fi
BIN=$TARGET/$PROFILE
kubectl apply --server-side --force-conflicts -k crds >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null

# the repository: one app of four objects
mkdir -p "$SCRATCH/work/app" "$SCRATCH/repos"
cat > "$SCRATCH/work/app/app.yaml" <<'YAML'
apiVersion: v1
kind: ServiceAccount
metadata:
  name: app
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 0
  selector:
    matchLabels:
      app: app
  template:
    metadata:
      labels:
        app: app
    spec:
      serviceAccountName: app
      containers:
      - name: app
        image: ghcr.io/stefanprodan/podinfo:6.7.0
        ports:
        - containerPort: 9898
---
apiVersion: v1
kind: Service
metadata:
  name: app
spec:
  selector:
    app: app
  ports:
  - port: 80
    targetPort: 9898
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: app
spec:
  rules:
  - host: app.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: app
            port:
              number: 80
YAML
git -C "$SCRATCH/work" init -q -b main && git -C "$SCRATCH/work" add -A
git -C "$SCRATCH/work" -c user.name=b -c user.email=b@b commit -qm app
git clone -q --bare "$SCRATCH/work" "$SCRATCH/repos/fleet.git"
GIT_PORT=$(free_port)
# git http-backend behind lighttpd (GitRepository URLs are http, https or ssh), as hack/demo.sh serves it
cat > "$SCRATCH/lighttpd.conf" <<EOC
server.modules = ("mod_alias", "mod_cgi", "mod_setenv")
server.bind = "127.0.0.1"
server.port = $GIT_PORT
server.document-root = "$SCRATCH/repos"
server.errorlog = "$SCRATCH/lighttpd.log"
server.pid-file = "$SCRATCH/lighttpd.pid"
alias.url = ("/git/" => "/usr/lib/git-core/git-http-backend/")
\$HTTP["url"] =~ "^/git/" {
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "$SCRATCH/repos", "GIT_HTTP_EXPORT_ALL" => "1")
}
EOC
lighttpd -f "$SCRATCH/lighttpd.conf"
git ls-remote "http://127.0.0.1:$GIT_PORT/git/fleet.git" main >/dev/null

COMMON="--health-addr=127.0.0.1:0 --watch-all-namespaces=true --enable-leader-election=false --log-level=error --concurrent=$CONCURRENT"
STORAGE_PORT=$(free_port)
"$BIN/source-controller" $COMMON --metrics-addr=127.0.0.1:0 --storage-addr=127.0.0.1:$STORAGE_PORT --storage-path="$SCRATCH/storage" \
  > "$SCRATCH/source.log" 2>&1 &
PIDS+=($!)

declare -A FLUX_TIME=([100]="28s" [500]="2m2s" [1000]="4m16s")
declare -A FLUX_RSS=([100]="32 MiB" [500]="122 MiB" [1000]="175 MiB")
RESULTS=()
KPID=""
for N in $COUNTS; do
  NS=p4-$N
  kubectl create namespace "$NS" >/dev/null
  kubectl apply --server-side -f - >/dev/null <<YAML
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: fleet
  namespace: $NS
spec:
  url: http://127.0.0.1:$GIT_PORT/git/fleet.git
  interval: 1h
  ref:
    branch: main
YAML
  kubectl wait -n "$NS" gitrepository/fleet --for=condition=Ready --timeout=60s >/dev/null
  # a fresh kustomize-controller per count, seeing only this count's Kustomizations
  [ -n "$KPID" ] && { kill "$KPID"; wait "$KPID" 2>/dev/null || true; }
  METRICS_PORT=$(free_port)
  "$BIN/kustomize-controller" $COMMON --metrics-addr=127.0.0.1:$METRICS_PORT --watch-label-selector="p4-run=$N" \
    > "$SCRATCH/kustomize-$N.log" 2>&1 &
  KPID=$!
  PIDS+=($KPID)
  sleep 1
  python3 - "$SCRATCH/ks-$N.yaml" "$N" "$NS" "$INTERVAL" <<'PY'
import sys
path, n, ns, interval = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
with open(path, "w") as f:
    for i in range(n):
        f.write(f"""---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: app-{i}
  namespace: {ns}
  labels:
    p4-run: "{n}"
spec:
  interval: {interval}
  path: ./app
  prune: true
  wait: false
  namePrefix: app-{i}-
  targetNamespace: {ns}
  sourceRef:
    kind: GitRepository
    name: fleet
""")
PY
  log "$N Kustomizations"
  t0=$(date +%s%N)
  kubectl apply --server-side -f "$SCRATCH/ks-$N.yaml" >/dev/null
  while :; do
    ready=$(kubectl get kustomizations -n "$NS" -o json | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
print(sum(1 for k in items if any(c["type"] == "Ready" and c["status"] == "True" for c in k.get("status", {}).get("conditions", []))
          and k.get("status", {}).get("observedGeneration") == k["metadata"]["generation"]))')
    [ "$ready" -ge "$N" ] && break
    [ $(( ($(date +%s%N) - t0) / 1000000000 )) -gt 1800 ] && { log "gave up after 30m: $ready/$N Ready"; exit 1; }
    sleep 0.5
  done
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  RESULTS+=("$N $ms $(kib "$KPID" VmHWM)")
  log "$N Ready in ${ms}ms"
done

if [ "$IDLE" -gt 0 ]; then
  N=${COUNTS##* }
  log "P6: $N Kustomizations, nothing changing, ${IDLE}s (interval $INTERVAL)"
  r0=$(rev); rss0=$(kib "$KPID" VmRSS); c0=$(reconciles)
  sleep "$IDLE"
  r1=$(rev); rss1=$(kib "$KPID" VmRSS); c1=$(reconciles)
fi

printf '\n%-12s %14s %14s %14s %14s\n' "P4 count" "all Ready" "peak RSS" "Flux time" "Flux RSS"
for r in "${RESULTS[@]}"; do
  set -- $r
  printf '%-12s %12.1fs %11s MiB %14s %14s\n' "$1" "$(awk -v m="$2" 'BEGIN{print m/1000}')" "$(( $3 / 1024 ))" "${FLUX_TIME[$1]:-}" "${FLUX_RSS[$1]:-}"
done
echo "(--concurrent=$CONCURRENT, $(nproc) cores; Flux's figures are from its own benchmark on bigger hardware)"
if [ "$IDLE" -gt 0 ]; then
  printf '\nP6: %s Kustomizations idle for %ss (interval %s): %s reconciles, %s etcd writes, RSS %s MiB -> %s MiB\n' \
    "$N" "$IDLE" "$INTERVAL" "$((c1 - c0))" "$((r1 - r0))" "$((rss0 / 1024))" "$((rss1 / 1024))"
fi
