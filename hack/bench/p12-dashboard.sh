#!/usr/bin/env bash
# hack/bench/p12-dashboard.sh [N] — benchmark P12: `driftless dashboard` over N Kustomizations (default 1000,
# each with a Ready status as kustomize-controller writes it), beside baselines run in the same script:
#   first page   the overview (all N, failing first, first page of 200 rows) over HTTP, against
#                `kubectl get kustomizations -A` (the same facts as a table); median of 5, ms
#   live update  from a status change sent (`kubectl patch --subresource=status`) to the change arriving on
#                the dashboard's event stream, against the same change arriving on `kubectl get --watch`;
#                median of 5, ms
#   memory       the dashboard's RSS holding the N objects, against the peak RSS of `kubectl get
#                kustomizations -A -o json` reading them once
# Runs on the test cluster's instance "bench", stopped at the end unless it was running or
# DRIFTLESS_KEEP_CLUSTER is set. BENCH_PROFILE=debug reuses the test build (smoke runs only).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000}
RUNS=5
TARGET=${CARGO_TARGET_DIR:-target}
export PATH="$(bash hack/tools.sh bin):$PATH"
STARTED=
hack/testcluster.sh status bench >/dev/null 2>&1 || STARTED=1
hack/testcluster.sh start bench >/dev/null
export KUBECONFIG=$(hack/testcluster.sh kubeconfig bench)
if [ "${BENCH_PROFILE:-release}" = debug ]; then cargo build -q -p driftless; BIN=$TARGET/debug/driftless
else cargo build -q --release -p driftless; BIN=$TARGET/release/driftless; fi
kubectl apply --server-side --force-conflicts -k crds/ >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
WORK=$(mktemp -d)
DASH=
cleanup() {
  [ -n "$DASH" ] && kill "$DASH" 2>/dev/null || true
  rm -rf "$WORK"
  kubectl delete ns p12 --wait=false >/dev/null 2>&1 || true
  [ -n "$STARTED" ] && [ -z "${DRIFTLESS_KEEP_CLUSTER:-}" ] && hack/testcluster.sh stop bench >/dev/null 2>&1 || true
}
trap cleanup EXIT
kubectl create ns p12 --dry-run=client -o yaml | kubectl apply -f - >/dev/null
sha=0123456789abcdef0123456789abcdef01234567
python3 - "$N" "$sha" "$WORK" <<'PY'
import json, sys
n, sha, work = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rev = f"main@sha1:{sha}"
objects, statuses = [], []
for i in range(n):
    meta = {"name": f"app-{i}", "namespace": "p12"}
    objects.append({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": meta,
                    "spec": {"interval": "10m", "path": f"./apps/{i}", "prune": True,
                             "sourceRef": {"kind": "GitRepository", "name": "fleet"}}})
    statuses.append({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": meta,
                     "status": {"observedGeneration": 1, "lastAppliedRevision": rev, "conditions": [
                         {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                          "message": f"Applied revision: {rev}", "observedGeneration": 1,
                          "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
for name, items in (("objects", objects), ("status", statuses)):
    with open(f"{work}/{name}.json", "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
PY
kubectl apply --server-side -f "$WORK/objects.json" >/dev/null
kubectl apply --server-side --subresource=status --field-manager=p12 -f "$WORK/status.json" >/dev/null
"$BIN" dashboard --port 0 --no-browser > "$WORK/dash.log" 2>&1 &
DASH=$!
for _ in $(seq 300); do grep -q "dashboard on" "$WORK/dash.log" && break; sleep 0.1; done
URL=$(grep -o 'http://[0-9.:]*' "$WORK/dash.log" | head -1)
[ -n "$URL" ] || { cat "$WORK/dash.log" >&2; exit 1; }
ms() { local s e; s=$(date +%s%N); "$@" > "$WORK/out" 2>&1 || { cat "$WORK/out" >&2; exit 1; }; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
curl -sf "$URL/" >/dev/null
kubectl get kustomizations -A >/dev/null # the discovery cache
page=$(for _ in $(seq $RUNS); do ms curl -sf "$URL/"; done | median)
rows=$(grep -o '<tr id=' "$WORK/out" | wc -l)
table=$(for _ in $(seq $RUNS); do ms kubectl get kustomizations -A; done | median)
python3 - "$URL" "$RUNS" "$DASH" "$WORK" <<'PY'
import json, resource, statistics, subprocess, sys, threading, time, urllib.request
url, runs, pid, work = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
seen = {"dashboard": {}, "kubectl": {}}
def sse():
    with urllib.request.urlopen(url + "/events", timeout=120) as r:
        data = None
        for line in r:
            line = line.decode().rstrip("\n")
            if line.startswith("data:"):
                data = line[5:].strip()
            elif line == "" and data:
                try:
                    key = json.loads(data)["key"]
                except ValueError:
                    key = data
                seen["dashboard"].setdefault(key, time.monotonic())
                data = None
def watch():
    p = subprocess.Popen(["kubectl", "get", "kustomizations", "-n", "p12", "--watch-only", "-o",
                          "custom-columns=NAME:.metadata.name,MSG:.status.conditions[0].message", "--no-headers"],
                         stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        name = line.split()[0]
        if "changed" in line:
            seen["kubectl"].setdefault(f"Kustomization/p12/{name}", time.monotonic())
for f in (sse, watch):
    threading.Thread(target=f, daemon=True).start()
time.sleep(2)
lat = {"dashboard": [], "kubectl": []}
for i in range(runs):
    key = f"Kustomization/p12/app-{i}"
    status = {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "ReconciliationFailed",
              "message": f"changed {i}", "observedGeneration": 1, "lastTransitionTime": "2026-01-02T00:00:00Z"}]}}
    start = time.monotonic()
    subprocess.run(["kubectl", "patch", "kustomization", f"app-{i}", "-n", "p12", "--subresource=status",
                    "--type=merge", "-p", json.dumps(status)], check=True, capture_output=True)
    deadline = start + 30
    while time.monotonic() < deadline and not all(key in seen[w] for w in seen):
        time.sleep(0.001)
    for who in seen:
        if key not in seen[who]:
            sys.exit(f"{who} never saw {key}")
        lat[who].append((seen[who][key] - start) * 1000)
rss = int(next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:")))
subprocess.run(["kubectl", "get", "kustomizations", "-A", "-o", "json"], check=True, capture_output=True)
kubectl_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(f"{work}/live", "w") as f:
    f.write(f"{statistics.median(lat['dashboard']):.0f} {statistics.median(lat['kubectl']):.0f} {rss // 1024} {kubectl_rss // 1024}\n")
PY
read -r live watch rss kubectl_rss < "$WORK/live"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
printf '\nP12 (%s Kustomizations, median of %s)            %10s %10s %8s\n' "$N" "$RUNS" "dashboard" "kubectl" "ratio"
printf '%-50s %8sms %8sms %8s\n' "first page (overview, $rows rows)" "$page" "$table" "$(ratio "$page" "$table")"
printf '%-50s %8sms %8sms %8s\n' "live update (status patch → shown)" "$live" "$watch" "$(ratio "$live" "$watch")"
printf '%-50s %8sMB %8sMB %8s\n' "memory (dashboard RSS / kubectl peak RSS)" "$rss" "$kubectl_rss" "$(ratio "$rss" "$kubectl_rss")"
echo "(kubectl: get kustomizations -A; get --watch; get -A -o json's peak RSS. ratio: dashboard / kubectl)"
