#!/usr/bin/env bash
# hack/bench/p9-helm-index.sh [MB] — benchmark P9 (Helm index): a chart repository index of about MB
# megabytes (default 20), served by lighttpd on loopback, → stored artifact with source-controller's
# HelmRepository pipeline, everything on tmpfs. Prints its time beside the baseline `curl -o index.yaml &&
# sha256sum` of the same run (ratio), its peak RSS, and that RSS as a multiple of the index size (goal: below
# 2). RUNS (default 5) sets the repetitions (medians); BENCH_PROFILE=debug reuses the test build.
set -euo pipefail
cd "$(dirname "$0")/../.."
MB=${1:-20}
RUNS=${RUNS:-5}
SCRATCH=$(mktemp -d /dev/shm/driftless-p9h.XXXXXX)
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$SCRATCH"; }
trap cleanup EXIT
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
export PATH="$(bash hack/tools.sh bin):$PATH"

echo "P9 Helm index: ~${MB} MB, $RUNS runs, tmpfs $SCRATCH" >&2
TARGET=${CARGO_TARGET_DIR:-target}
if [ "${BENCH_PROFILE:-release}" = debug ]; then cargo build -q -p driftless-bench --bin p9-helm-index; BIN=$TARGET/debug/p9-helm-index
else cargo build -q --release -p driftless-bench --bin p9-helm-index; BIN=$TARGET/release/p9-helm-index; fi

# an index as `helm repo index` writes it: charts with many versions each
mkdir -p "$SCRATCH/www"
python3 - "$SCRATCH/www/index.yaml" "$MB" <<'PY'
import sys
path, mb = sys.argv[1], float(sys.argv[2])
target = int(mb * 1024 * 1024)
with open(path, "w") as f:
    f.write("apiVersion: v1\nentries:\n")
    size, c = 0, 0
    while size < target:
        f.write(f"  chart{c:05d}:\n")
        for v in range(50):
            entry = (f"  - apiVersion: v2\n    appVersion: {v}.0.0\n    created: \"2024-01-01T00:00:00Z\"\n"
                     f"    description: A Helm chart for Kubernetes, number {c} version {v}\n"
                     f"    digest: {'%064x' % (c * 1000 + v)}\n    name: chart{c:05d}\n    type: application\n"
                     f"    urls:\n    - https://charts.example.com/chart{c:05d}-{v}.0.0.tgz\n    version: {v}.0.0\n")
            f.write(entry)
            size += len(entry)
        c += 1
    f.write("generated: \"2024-01-01T00:00:00Z\"\n")
PY
SIZE=$(stat -c %s "$SCRATCH/www/index.yaml")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$SCRATCH/lighttpd.conf" <<EOC
server.bind = "127.0.0.1"
server.port = $PORT
server.document-root = "$SCRATCH/www"
server.errorlog = "$SCRATCH/error.log"
EOC
lighttpd -D -f "$SCRATCH/lighttpd.conf" &
SERVER=$!
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done
URL=http://127.0.0.1:$PORT/index.yaml

base_times=()
for i in $(seq "$RUNS"); do
  t=$(date +%s%N)
  curl -sf -o "$SCRATCH/base.yaml" "$URL"
  sha256sum "$SCRATCH/base.yaml" > /dev/null
  base_times+=("$(ms "$t")")
done
BASE=$(printf '%s\n' "${base_times[@]}" | median)

OUT=$( { /usr/bin/time -f 'rss %M' "$BIN" "$URL" "$SCRATCH" "$RUNS" ; } 2>&1 )
T=$(awk '/^index/{print $2}' <<<"$OUT"); RSS=$(awk '/^rss/{print $2}' <<<"$OUT"); V=$(awk '/^versions/{print $2}' <<<"$OUT")
[ -n "$T" ] || { echo "$OUT" >&2; exit 1; }

printf '\n%-46s %12s %12s %8s\n' "P9 Helm index ($((SIZE / 1024)) KiB, $V versions, median of $RUNS)" "driftless" "baseline" "ratio"
printf '%-46s %10.1fms %10sms %8.2f\n' "index → artifact (baseline: curl + sha256sum)" "$T" "$BASE" "$(awk -v a="$T" -v b="$BASE" 'BEGIN{print a/b}')"
printf '%-46s %10sKB %12s %8.2f\n' "peak RSS (whole process) / index size" "$RSS" "$((SIZE / 1024))KB" "$(awk -v a="$RSS" -v b="$SIZE" 'BEGIN{print a*1024/b}')"
