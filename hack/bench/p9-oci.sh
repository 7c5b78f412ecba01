#!/usr/bin/env bash
# hack/bench/p9-oci.sh [FILES] — benchmark P9 (OCI): new digest → stored artifact for an OCI artifact of
# FILES files (default 10000) in Flux's format, pushed with `oras` to Debian's docker-registry on loopback,
# everything on tmpfs, against the baseline `oras pull && tar czf && sha256sum` in the same run. Prints both
# times, the ratio (goal ≤0.7), the unchanged-digest time (goal ≤20 ms) and the peak RSS of both.
# RUNS (default 5) sets the repetitions (medians); BENCH_PROFILE=debug reuses the test build.
set -euo pipefail
cd "$(dirname "$0")/../.."
FILES=${1:-10000}
RUNS=${RUNS:-5}
SCRATCH=$(mktemp -d /dev/shm/driftless-p9.XXXXXX)
REGISTRY=""
cleanup() { [ -n "$REGISTRY" ] && kill "$REGISTRY" 2>/dev/null; rm -rf "$SCRATCH"; }
trap cleanup EXIT
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
export PATH="$(bash hack/tools.sh bin):$PATH"

echo "P9 OCI artifact: $FILES files, $RUNS runs, tmpfs $SCRATCH" >&2
TARGET=${CARGO_TARGET_DIR:-target}
if [ "${BENCH_PROFILE:-release}" = debug ]; then cargo build -q -p driftless-bench --bin p9-oci; BIN=$TARGET/debug/p9-oci
else cargo build -q --release -p driftless-bench --bin p9-oci; BIN=$TARGET/release/p9-oci; fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$SCRATCH/registry.yml" <<EOC
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $SCRATCH/registry}}
http: {addr: 127.0.0.1:$PORT}
EOC
docker-registry serve "$SCRATCH/registry.yml" >/dev/null 2>&1 &
REGISTRY=$!
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done
HOST=127.0.0.1:$PORT

# FILES small YAML files, 100 per directory, as `flux push artifact` packs them
mkdir -p "$SCRATCH/work/content"
python3 - "$SCRATCH/work/content" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"apps/team{i // 100:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"cm{i:05d}.yaml"), "w") as f:
        f.write(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i:05d}\ndata:\n  key: value-{i}\n  other: {'x' * 64}\n")
PY
echo '{}' > "$SCRATCH/work/config.json"
cat > "$SCRATCH/push.sh" <<EOP
#!/usr/bin/env bash
# push.sh N: a new version (one file changed) as latest, in Flux's format
set -e
cd "$SCRATCH/work"
echo "run: \$1" > content/bench-change.txt
tar czf layer.tar.gz -C content .
oras push --no-tty --plain-http --config config.json:application/vnd.cncf.flux.config.v1+json \
  $HOST/bench:latest layer.tar.gz:application/vnd.cncf.flux.content.v1.tar+gzip >/dev/null
EOP
chmod +x "$SCRATCH/push.sh"
# the baseline's own copy, pushed as a directory so `oras pull` unpacks it
(cd "$SCRATCH/work" && oras push --no-tty --plain-http $HOST/base:latest content/ >/dev/null)

base_times=()
for i in $(seq "$RUNS"); do
  rm -rf "$SCRATCH/base"; mkdir "$SCRATCH/base"
  t=$(date +%s%N)
  oras pull --no-tty --plain-http -o "$SCRATCH/base/pulled" $HOST/base:latest >/dev/null
  tar czf "$SCRATCH/base/a.tar.gz" -C "$SCRATCH/base/pulled" .
  sha256sum "$SCRATCH/base/a.tar.gz" > /dev/null
  base_times+=("$(ms "$t")")
done
BASE=$(printf '%s\n' "${base_times[@]}" | median)
[ "$(find "$SCRATCH/base/pulled" -name '*.yaml' | wc -l)" -ge "$FILES" ] || { echo "the baseline pulled too few files" >&2; exit 1; }
rm -rf "$SCRATCH/base"; mkdir "$SCRATCH/base"
BASE_RSS=$( { /usr/bin/time -f '%M' oras pull --no-tty --plain-http -o "$SCRATCH/base/pulled" $HOST/base:latest >/dev/null ; } 2>&1 | tail -1)
t=$(date +%s%N); oras resolve --plain-http $HOST/bench:latest >/dev/null 2>&1 || true; BASE_HEAD=$(ms "$t")

# the working directories on the same tmpfs as the baseline's
OUT=$( { TMPDIR="$SCRATCH" /usr/bin/time -f 'rss %M' "$BIN" "$HOST" bench "$SCRATCH" "$RUNS" "$SCRATCH/push.sh" ; } 2>&1 )
NEW=$(awk '/^new-digest/{print $2}' <<<"$OUT"); UNCHANGED=$(awk '/^unchanged/{print $2}' <<<"$OUT")
RSS=$(awk '/^rss/{print $2}' <<<"$OUT")
[ -n "$NEW" ] || { echo "$OUT" >&2; exit 1; }

printf '\n%-46s %12s %12s %8s\n' "P9 OCI ($FILES files, median of $RUNS)" "driftless" "baseline" "ratio"
printf '%-46s %10.1fms %10sms %8.2f\n' "new digest → artifact (baseline: pull+tar+sha)" "$NEW" "$BASE" "$(awk -v a="$NEW" -v b="$BASE" 'BEGIN{print a/b}')"
printf '%-46s %10.1fms %10sms\n' "unchanged digest (one manifest HEAD)" "$UNCHANGED" "$BASE_HEAD"
printf '%-46s %10sKB %10sKB\n' "peak RSS (driftless: whole bench process)" "$RSS" "$BASE_RSS"
