#!/usr/bin/env bash
# hack/bench/p2-kustomize.sh [SIZES] — benchmark P2: driftless's kustomize build (`driftless build
# kustomization`) against `kubectl kustomize` on the same overlays, in the same run: a small overlay (~10
# objects: prefix, labels, a patch, images, a generator) and overlays of SIZES resources (default "1400 7000":
# Deployments, Services and ConfigMaps in a base, an overlay with namePrefix, commonLabels, a patch on every
# Deployment, an image override). Prints both times (median of RUNS, default 5), the ratio and how the time
# grows with size. Not part of .ci/run beyond a smoke size (BENCH_PROFILE=debug RUNS=1 … 70).
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZES=${1:-"1400 7000"}
RUNS=${RUNS:-5}
SCRATCH=$(mktemp -d /dev/shm/driftless-p2.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
TARGET=${CARGO_TARGET_DIR:-target}
if [ "${BENCH_PROFILE:-release}" = debug ]; then cargo build -q -p driftless; BIN=$TARGET/debug/driftless
else cargo build -q --release -p driftless; BIN=$TARGET/release/driftless; fi
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# one overlay of N resources (N/3 each of Deployment, Service, ConfigMap), or the small one (N=small)
make_overlay() {
  python3 - "$1" "$2" <<'PY'
import os, sys
root, n = sys.argv[1], sys.argv[2]
# the overlay at the top, its base inside: the build root is the overlay's directory
base, overlay = os.path.join(root, "overlay", "base"), os.path.join(root, "overlay")
os.makedirs(base)
count = 3 if n == "small" else int(n) // 3
files = []
for i in range(count):
    name = f"app{i:05d}"
    with open(os.path.join(base, f"{name}.yaml"), "w") as f:
        f.write(f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: app
        image: registry.example.com/app:1.0
        envFrom:
        - configMapRef:
            name: {name}
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector:
    app: {name}
  ports:
  - port: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
data:
  key: value-{i}
""")
    files.append(f"{name}.yaml")
with open(os.path.join(base, "kustomization.yaml"), "w") as f:
    f.write("resources:\n" + "".join(f"- {x}\n" for x in files))
extra = "configMapGenerator:\n- name: settings\n  literals:\n  - mode=blue\n" if n == "small" else ""
with open(os.path.join(overlay, "kustomization.yaml"), "w") as f:
    f.write(f"""resources:
- base
namePrefix: prod-
commonLabels:
  env: prod
images:
- name: registry.example.com/app
  newTag: "2.0"
patches:
- target:
    kind: Deployment
  patch: |
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: any
    spec:
      replicas: 3
{extra}""")
PY
}

run() { # $1 = command…; prints the median ms of RUNS
  local times=()
  for _ in $(seq "$RUNS"); do t=$(date +%s%N); "$@" > /dev/null; times+=("$(ms "$t")"); done
  printf '%s\n' "${times[@]}" | median
}

printf '%-26s %12s %16s %8s %14s\n' "P2 overlay" "driftless" "kubectl kustomize" "ratio" "objects"
prev_ms=""; prev_n=""
for size in small $SIZES; do
  dir="$SCRATCH/$size"; make_overlay "$dir" "$size"
  objects=$("$BIN" build kustomization "$dir/overlay" | grep -c '^kind:')
  [ "$objects" = "$(kubectl kustomize "$dir/overlay" | grep -c '^kind:')" ] || { echo "outputs differ in size at $size" >&2; exit 1; }
  ours=$(run "$BIN" build kustomization "$dir/overlay")
  theirs=$(run kubectl kustomize "$dir/overlay")
  printf '%-26s %10sms %14sms %7.1fx %14s\n' "$size" "$ours" "$theirs" "$(awk -v a="$ours" -v b="$theirs" 'BEGIN{print b/(a>0?a:1)}')" "$objects"
  if [ "$size" != small ]; then
    if [ -n "$prev_ms" ]; then
      awk -v a="$ours" -v p="$prev_ms" -v n="$objects" -v m="$prev_n" \
        'BEGIN{printf "    growth: time x%.1f for x%.1f objects (%.2f of linear)\n", a/(p>0?p:1), n/m, (a/(p>0?p:1))/(n/m)}'
    fi
    prev_ms=$ours; prev_n=$objects
  fi
done
