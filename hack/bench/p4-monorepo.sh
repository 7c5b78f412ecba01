#!/usr/bin/env bash
# hack/bench/p4-monorepo.sh [KUSTOMIZATIONS] [FILLER] — benchmark P4m: KUSTOMIZATIONS (default 100)
# Kustomizations, each building its own directory of one monorepo artifact that also holds FILLER (default
# 5000) files of ~2 KiB, with kustomize-controller's artifact cache (one download and unpack per digest)
# against the same controller with the cache off (--artifact-cache-size-mib=0: one per reconcile, as Flux
# does), in the same run: time until all are Ready, and time until all handled a reconcile request at the
# unchanged revision. Uses the test cluster (started if needed) or DRIFTLESS_KUBECONFIG; controllers run
# in process, impersonating their ServiceAccounts. BENCH_PROFILE=debug reuses the test build.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100}
F=${2:-5000}
if [ -z "${DRIFTLESS_KUBECONFIG:-}" ]; then hack/testcluster.sh start >/dev/null; fi
TARGET=${CARGO_TARGET_DIR:-target}
if [ "${BENCH_PROFILE:-release}" = debug ]; then cargo build -q -p driftless-bench --bin p4-monorepo; BIN=$TARGET/debug/p4-monorepo
else cargo build -q --release -p driftless-bench --bin p4-monorepo; BIN=$TARGET/release/p4-monorepo; fi
echo "P4m: $N Kustomizations of one monorepo artifact with $F filler files" >&2
OUT=$(RUST_LOG=${RUST_LOG:-error} "$BIN" "$N" "$F")
get() { awk -v k="$1" '$1==k{print $2}' <<<"$OUT"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
printf '\n%-52s %12s %12s %8s\n' "P4m ($N Kustomizations, $F filler files)" "cache" "no cache" "ratio"
printf '%-52s %10sms %10sms %7sx\n' "all Ready" "$(get first-cache)" "$(get first-nocache)" "$(ratio "$(get first-cache)" "$(get first-nocache)")"
printf '%-52s %10sms %10sms %7sx\n' "all re-reconciled at the same revision" "$(get again-cache)" "$(get again-nocache)" "$(ratio "$(get again-cache)" "$(get again-nocache)")"
