#!/usr/bin/env bash
# hack/bench/p5-receiver.sh [REQUESTS] [CONCURRENCY] [SAMPLES] — benchmark P5, notification-controller's
# webhook receivers on loopback against baselines in the same run: (a) REQUESTS (default 20000) hooks with
# a bad signature (refused before any API call) against a minimal axum handler — goal ≥0.8× its throughput;
# (b) REQUESTS/10 valid hooks, each annotating one GitRepository, against a raw merge-PATCH loop to the API
# server at the same CONCURRENCY (default 16) — goal ≥0.8×; (c) SAMPLES (default 100) single hooks →
# the GitRepository's reconcile of that request handled by source-controller — goal p99 ≤50 ms.
# Uses the test cluster (started if needed). BENCH_PROFILE=debug reuses the test build (smoke runs only).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-20000}
C=${2:-16}
S=${3:-100}
TARGET=${CARGO_TARGET_DIR:-target}
if [ "${BENCH_PROFILE:-release}" = debug ]; then cargo build -q -p driftless-bench --bin p5-receiver; BIN=$TARGET/debug/p5-receiver
else cargo build -q --release -p driftless-bench --bin p5-receiver; BIN=$TARGET/release/p5-receiver; fi
echo "P5 receivers: $N refused, $((N / 10)) valid hooks at concurrency $C; $S latency samples" >&2
OUT=$("$BIN" "$N" "$C" "$S")
get() { awk -v k="$1" '$1==k{print $2}' <<<"$OUT"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
printf '\n%-52s %12s %12s %8s\n' "P5" "receiver" "baseline" "ratio"
printf '%-52s %10s/s %10s/s %8s\n' "(a) refused hooks vs a minimal axum 401 handler" "$(get refused)" "$(get refused-base)" "$(ratio "$(get refused)" "$(get refused-base)")"
printf '%-52s %10s/s %10s/s %8s\n' "(b) valid hooks vs a raw merge-PATCH loop" "$(get valid)" "$(get valid-base)" "$(ratio "$(get valid)" "$(get valid-base)")"
printf '%-52s %9sms p50 %7sms p99\n' "(c) hook → reconcile handled" "$(get latency-p50)" "$(get latency-p99)"
