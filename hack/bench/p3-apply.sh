#!/usr/bin/env bash
# hack/bench/p3-apply.sh [OBJECTS] [CONCURRENCY] — benchmark P3: server-side apply of OBJECTS ConfigMaps
# (default 7000) with driftless's apply engine against, in the same run, the API server's ceiling (a raw
# loop of one apply PATCH per object at the same CONCURRENCY, default 8) and `kubectl apply --server-side`;
# then the unchanged set again, counting etcd writes (goal: 0 for driftless). Uses the test cluster
# (hack/testcluster.sh, started if needed) or DRIFTLESS_KUBECONFIG. BENCH_PROFILE=debug reuses the test build.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-7000}
C=${2:-8}
if [ -n "${DRIFTLESS_KUBECONFIG:-}" ]; then export KUBECONFIG=$DRIFTLESS_KUBECONFIG
else hack/testcluster.sh start >/dev/null; export KUBECONFIG=$(hack/testcluster.sh kubeconfig); fi
TARGET=${CARGO_TARGET_DIR:-target}
if [ "${BENCH_PROFILE:-release}" = debug ]; then cargo build -q -p driftless-bench --bin p3-apply; BIN=$TARGET/debug/p3-apply
else cargo build -q --release -p driftless-bench --bin p3-apply; BIN=$TARGET/release/p3-apply; fi
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

echo "P3 server-side apply: $N objects, concurrency $C" >&2
OUT=$("$BIN" "$N" "$C")
get() { awk -v k="$1" '$1==k{print $2}' <<<"$OUT"; }

# kubectl apply --server-side of the same set, one file
SCRATCH=$(mktemp -d); trap 'rm -rf "$SCRATCH"' EXIT
NS=p3-kubectl-$$
kubectl create namespace "$NS" >/dev/null
python3 - "$SCRATCH/set.yaml" "$N" "$NS" <<'PY'
import sys
path, n, ns = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    for i in range(n):
        f.write(f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:05d}\n  namespace: {ns}\n  labels:\n    app: p3\ndata:\n  index: \"{i}\"\n  payload: {'x' * 128}\n")
PY
t=$(date +%s%N); kubectl apply --server-side -f "$SCRATCH/set.yaml" >/dev/null; KUBECTL=$(ms "$t")
t=$(date +%s%N); kubectl apply --server-side -f "$SCRATCH/set.yaml" >/dev/null; KUBECTL_AGAIN=$(ms "$t")
kubectl delete configmaps --all -n "$NS" --wait=false >/dev/null 2>&1 || true
kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1 || true

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b/a}'; }
printf '\n%-48s %10s %10s %10s %14s\n' "P3 ($N objects, concurrency $C)" "driftless" "raw loop" "kubectl" "vs ceiling"
printf '%-48s %8sms %8sms %8sms %14s\n' "first apply" "$(get ssa-first)" "$(get raw-first)" "$KUBECTL" "$(ratio "$(get ssa-first)" "$(get raw-first)")x"
printf '%-48s %8sms %8sms %8sms %14s\n' "unchanged re-apply" "$(get ssa-again)" "$(get raw-again)" "$KUBECTL_AGAIN" "$(ratio "$(get ssa-again)" "$(get raw-again)")x"
printf '%-48s %10s %10s\n' "etcd writes of the re-apply" "$(get writes-ssa)" "$(get writes-raw)"
echo "(vs ceiling: the raw loop's time / driftless's time; 1.00 = as fast as one PATCH per object)"
