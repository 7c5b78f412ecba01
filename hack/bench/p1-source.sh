#!/usr/bin/env bash
# hack/bench/p1-source.sh [FILES] — benchmark P1: commit → stored artifact for a repository of FILES files
# (default 10000) served by `git daemon` on loopback, everything on tmpfs, against the baseline
# `git clone --depth 1 && tar czf && sha256sum` in the same run. Prints both times, the ratio, the
# unchanged-revision time and the peak RSS of both. RUNS (default 5) sets the repetitions (medians);
# BENCH_PROFILE=debug reuses the test build (the smoke run of hack/test.sh; its figures mean nothing).
set -euo pipefail
cd "$(dirname "$0")/../.."
FILES=${1:-10000}
RUNS=${RUNS:-5}
SCRATCH=$(mktemp -d /dev/shm/driftless-p1.XXXXXX)
DAEMON=""
cleanup() { [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null; rm -rf "$SCRATCH"; }
trap cleanup EXIT
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "P1 source pipeline: $FILES files, $RUNS runs, tmpfs $SCRATCH" >&2
TARGET=${CARGO_TARGET_DIR:-target}
if [ "${BENCH_PROFILE:-release}" = debug ]; then cargo build -q -p driftless-bench; BIN=$TARGET/debug/p1-source
else cargo build -q --release -p driftless-bench; BIN=$TARGET/release/p1-source; fi

# a repository of FILES small YAML files, 100 per directory
mkdir -p "$SCRATCH/repos" "$SCRATCH/work"
python3 - "$SCRATCH/work" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"apps/team{i // 100:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"cm{i:05d}.yaml"), "w") as f:
        f.write(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i:05d}\ndata:\n  key: value-{i}\n  other: {'x' * 64}\n")
PY
git -C "$SCRATCH/work" init -q -b main
git -C "$SCRATCH/work" add -A
git -C "$SCRATCH/work" -c user.name=b -c user.email=b@b commit -qm initial
git clone -q --bare "$SCRATCH/work" "$SCRATCH/repos/bench.git"
git -C "$SCRATCH/repos/bench.git" config daemon.receivepack true
git -C "$SCRATCH/work" remote add origin "$SCRATCH/repos/bench.git"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$(git --exec-path)/git-daemon" --reuseaddr --export-all --enable=receive-pack --base-path="$SCRATCH/repos" \
  --listen=127.0.0.1 --port="$PORT" "$SCRATCH/repos" 2>/dev/null &
DAEMON=$!
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done
URL=git://127.0.0.1:$PORT/bench.git

# baseline: a fresh shallow clone, tar czf, sha256sum — per commit
base_times=()
for i in $(seq "$RUNS"); do
  rm -rf "$SCRATCH/base"; mkdir "$SCRATCH/base"
  t=$(date +%s%N)
  git clone -q --depth 1 "$URL" "$SCRATCH/base/repo"
  tar czf "$SCRATCH/base/a.tar.gz" -C "$SCRATCH/base/repo" --exclude=.git .
  sha256sum "$SCRATCH/base/a.tar.gz" > /dev/null
  base_times+=("$(ms "$t")")
done
BASE=$(printf '%s\n' "${base_times[@]}" | median)
rm -rf "$SCRATCH/base"; mkdir "$SCRATCH/base"
BASE_RSS=$( { /usr/bin/time -f '%M' git clone -q --depth 1 "$URL" "$SCRATCH/base/repo" ; } 2>&1 | tail -1)
t=$(date +%s%N); git ls-remote "$URL" refs/heads/main > /dev/null; BASE_LS=$(ms "$t")

# driftless
OUT=$( { /usr/bin/time -f 'rss %M' "$BIN" "$URL" "$SCRATCH" "$SCRATCH/work" "$RUNS" ; } 2>&1 )
COLD=$(awk '/^cold/{print $2}' <<<"$OUT"); NEW=$(awk '/^new-commit/{print $2}' <<<"$OUT")
UNCHANGED=$(awk '/^unchanged/{print $2}' <<<"$OUT"); RSS=$(awk '/^rss/{print $2}' <<<"$OUT")

printf '\n%-44s %12s %12s %8s\n' "P1 ($FILES files, median of $RUNS)" "driftless" "baseline" "ratio"
printf '%-44s %10.1fms %10sms %8.2f\n' "new commit → artifact (baseline: clone+tar+sha)" "$NEW" "$BASE" "$(awk -v a="$NEW" -v b="$BASE" 'BEGIN{print a/b}')"
printf '%-44s %10.1fms %10sms %8.2f\n' "first artifact, empty cache" "$COLD" "$BASE" "$(awk -v a="$COLD" -v b="$BASE" 'BEGIN{print a/b}')"
printf '%-44s %10.1fms %10sms\n' "unchanged revision (ls-remote only)" "$UNCHANGED" "$BASE_LS"
printf '%-44s %10sKB %10sKB\n' "peak RSS" "$RSS" "$BASE_RSS"
