#!/usr/bin/env bash
# hack/bench/p10-image.sh [RUNS] — benchmark P10, image automation end to end with the webhooks on the
# path: a tag pushed to the registry (Debian's docker-registry, which notifies a harbor Receiver) →
# ImageRepository scan → ImagePolicy → ImageUpdateAutomation commit and push (the Git server's
# post-receive hook sends a signed GitHub push event to a github Receiver) → GitRepository fetch →
# Kustomization apply; until the Deployment in the cluster has the new image. RUNS (default 20) tags,
# p50 and p99, beside the baseline run in the same script: the same change made by hand with the real
# tools (crane ls, git clone, edit, commit, push, kubectl apply --server-side).
# Uses the test cluster (started if needed). BENCH_PROFILE=debug reuses the test build (smoke runs only).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-20}
TARGET=${CARGO_TARGET_DIR:-target}
export PATH="$(bash hack/tools.sh bin):$PATH"
hack/testcluster.sh start >/dev/null
if [ "${BENCH_PROFILE:-release}" = debug ]; then cargo build -q -p driftless-bench --bin p10-image; BIN=$TARGET/debug/p10-image
else cargo build -q --release -p driftless-bench --bin p10-image; BIN=$TARGET/release/p10-image; fi
echo "P10 image automation: $RUNS new tags, each until applied" >&2
OUT=$("$BIN" "$RUNS")
get() { awk -v k="$1" '$1==k{print $2}' <<<"$OUT"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
printf '\n%-52s %12s %12s %8s\n' "P10 (ms)" "driftless" "by hand" "ratio"
printf '%-52s %12s %12s %8s\n' "tag pushed → image applied, p50" "$(get loop-p50)" "$(get base-p50)" "$(ratio "$(get loop-p50)" "$(get base-p50)")"
printf '%-52s %12s %12s %8s\n' "tag pushed → image applied, p99" "$(get loop-p99)" "$(get base-p99)" "$(ratio "$(get loop-p99)" "$(get base-p99)")"
echo "(ratio: driftless's time / the by-hand floor's; below 1.00 is faster than doing it by hand)"
