#!/usr/bin/env bash
# hack/bench/p7-serve.sh [SECONDS] [CONNECTIONS] — benchmark P7: source-controller's artifact server against
# nginx serving the same storage directory, in the same run, loaded by wrk on loopback (2 threads,
# CONNECTIONS default 32, SECONDS default 10 per run) for a small artifact (~100 KiB) and a large one
# (~20 MiB): requests/s and MB/s of both and the ratio. nginx-light and wrk are installed from Debian if
# missing (benchmark-only: the tests do not need them). BENCH_PROFILE=debug uses a debug build.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
CONNS=${2:-32}
need=(); command -v nginx >/dev/null || need+=(nginx-light); command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  echo "[p7] apt-get install ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -qq update && apt-get -qq install -y --no-install-recommends "${need[@]}" >/dev/null
  (service nginx stop || true) >/dev/null 2>&1
fi
TARGET=${CARGO_TARGET_DIR:-target}
if [ "${BENCH_PROFILE:-release}" = debug ]; then cargo build -q -p driftless-bench --bin p7-serve; BIN=$TARGET/debug/p7-serve
else cargo build -q --release -p driftless-bench --bin p7-serve; BIN=$TARGET/release/p7-serve; fi
SCRATCH=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$SCRATCH"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# the artifacts, where source-controller would store them
DIR=$SCRATCH/storage/gitrepository/flux-system/fleet
mkdir -p "$DIR"
python3 - "$DIR" <<'PY'
import os, random, sys
random.seed(7)
words = "apiVersion kind metadata name namespace spec replicas selector template containers image ports".split()
def text(n):
    return "\n".join(" ".join(random.choice(words) for _ in range(12)) for _ in range(n // 80)).encode()
open(os.path.join(sys.argv[1], "small.tar.gz"), "wb").write(os.urandom(100 * 1024))
open(os.path.join(sys.argv[1], "large.tar.gz"), "wb").write(os.urandom(20 * 1024 * 1024))
PY

chmod -R a+rX "$SCRATCH"   # nginx's workers run as another user
"$BIN" "$SCRATCH/storage" > "$SCRATCH/ours.out" &
PIDS+=($!)
for _ in $(seq 50); do grep -q '^addr ' "$SCRATCH/ours.out" 2>/dev/null && break; sleep 0.1; done
OURS=$(awk '/^addr /{print $2}' "$SCRATCH/ours.out")
PORT=$(free_port)
cat > "$SCRATCH/nginx.conf" <<EOC
daemon off;
worker_processes 2;
pid $SCRATCH/nginx.pid;
error_log $SCRATCH/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  server { listen 127.0.0.1:$PORT; root $SCRATCH/storage; default_type application/x-gzip; }
}
EOC
nginx -c "$SCRATCH/nginx.conf" -p "$SCRATCH" &
PIDS+=($!)
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/gitrepository/flux-system/fleet/small.tar.gz" && break; sleep 0.1; done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/gitrepository/flux-system/fleet/small.tar.gz" || { cat "$SCRATCH/nginx.err" >&2; exit 1; }
for f in small large; do
  cmp <(curl -sf "http://$OURS/gitrepository/flux-system/fleet/$f.tar.gz") "$DIR/$f.tar.gz"
  cmp <(curl -sf "http://127.0.0.1:$PORT/gitrepository/flux-system/fleet/$f.tar.gz") "$DIR/$f.tar.gz"
done

# requests/s and MB/s of one wrk run
load() {
  wrk -t2 -c"$CONNS" -d"${SECS}s" "$1" | python3 -c '
import re, sys
out = sys.stdin.read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
t = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
mb = float(t.group(1)) * {"B": 1e-6, "KB": 1.024e-3, "MB": 1.048576, "GB": 1073.741824}[t.group(2)]
print(f"{rps:.0f} {mb:.0f}")'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
echo "P7 artifact serving: wrk -t2 -c$CONNS -d${SECS}s, ours then nginx (sendfile), same files" >&2
printf '\n%-28s %14s %14s %8s %12s %12s\n' "P7" "ours req/s" "nginx req/s" "ratio" "ours MB/s" "nginx MB/s"
for f in small large; do
  read -r a_rps a_mb < <(load "http://$OURS/gitrepository/flux-system/fleet/$f.tar.gz")
  read -r b_rps b_mb < <(load "http://127.0.0.1:$PORT/gitrepository/flux-system/fleet/$f.tar.gz")
  printf '%-28s %14s %14s %7sx %12s %12s\n' "$f ($(du -h "$DIR/$f.tar.gz" | cut -f1))" "$a_rps" "$b_rps" "$(ratio "$a_rps" "$b_rps")" "$a_mb" "$b_mb"
done
