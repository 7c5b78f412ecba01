#!/usr/bin/env bash
# hack/test.sh — the whole test suite, as CI runs it (.ci/run), from a fresh clone on a fresh machine:
# installs the real parts tests use (hack/tools.sh), builds and starts the test API server
# (hack/testcluster.sh; skipped when DRIFTLESS_KUBECONFIG points at a cluster), then runs
# cargo fmt --check, clippy with -D warnings, and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
step() { echo "==> $* ($((SECONDS - t0))s)" >&2; }

step "tools"
hack/tools.sh
command -v cargo >/dev/null || { echo "cargo not found: install the Rust toolchain (rustup)" >&2; exit 1; }

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

started=""
if [ -n "${DRIFTLESS_KUBECONFIG:-}" ]; then
  step "tests run against DRIFTLESS_KUBECONFIG=$DRIFTLESS_KUBECONFIG"
else
  if ! hack/testcluster.sh status >/dev/null 2>&1; then started=1; fi
  step "test cluster"
  hack/testcluster.sh start >/dev/null
  hack/testcluster.sh versions | sed 's/^/    /' >&2
fi

step "cargo test"
status=0
# bounded, so a hung test fails CI with time left to report instead of eating the 90 minutes
timeout --signal=INT 45m cargo test --workspace || status=$?

if [ $status = 0 ]; then
  step "benchmark smoke runs (figures of a debug build at smoke size: not a measurement)"
  BENCH_PROFILE=debug RUNS=1 hack/bench/p1-source.sh 100 || status=$?
  BENCH_PROFILE=debug hack/bench/p3-apply.sh 50 4 || status=$?
  BENCH_PROFILE=debug RUNS=1 hack/bench/p2-kustomize.sh 90 || status=$?
  BENCH_PROFILE=debug hack/bench/p4-monorepo.sh 10 200 || status=$?
  BENCH_PROFILE=debug RUNS=1 hack/bench/p9-oci.sh 100 || status=$?
  BENCH_PROFILE=debug RUNS=1 hack/bench/p9-helm-index.sh 1 || status=$?
  BENCH_PROFILE=debug hack/bench/p8-helm.sh 5 || status=$?
  BENCH_PROFILE=debug hack/bench/p10-image.sh 2 || status=$?
  BENCH_PROFILE=debug hack/bench/p11-get.sh 100 || status=$?
  BENCH_PROFILE=debug hack/bench/p12-dashboard.sh 100 || status=$?
fi

if [ -n "$started" ] && [ -z "${DRIFTLESS_KEEP_CLUSTER:-}" ]; then hack/testcluster.sh stop >/dev/null 2>&1 || true; fi
# the second instance the remote-cluster tests start (tests/e2e/tests/kustomize/tenancy.rs)
[ -n "${DRIFTLESS_KEEP_CLUSTER:-}" ] || hack/testcluster.sh stop remote >/dev/null 2>&1 || true
# the instances the CLI's install and bootstrap tests start (crates/cli/tests/commands.rs), when one failed before stopping it
[ -n "${DRIFTLESS_KEEP_CLUSTER:-}" ] || hack/testcluster.sh stop cli >/dev/null 2>&1 || true
[ -n "${DRIFTLESS_KEEP_CLUSTER:-}" ] || hack/testcluster.sh stop bootstrap >/dev/null 2>&1 || true
step "done (exit $status)"
exit $status
