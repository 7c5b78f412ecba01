#!/usr/bin/env bash
# hack/demo.sh [--keep] — the main job: a local control plane with every driftless controller that exists so
# far reconciling an example Git repository.
#
#   1. a Kubernetes API server: the project's test cluster (hack/testcluster.sh), or DRIFTLESS_KUBECONFIG
#   2. driftless's CRDs (crds/), server-side applied
#   3. the example repository (hack/demo/app) committed to a Git repository served over HTTP on loopback
#      (git http-backend behind lighttpd, basic auth)
#   4. a GitRepository and a Kustomization pointing at it, and a Receiver for the GitRepository, in flux-system;
#      a chart (helm create, helm package, helm repo index) in a Helm repository served next to it, and a
#      HelmRepository and HelmRelease installing it
#   5. every controller that exists, as local processes (see CONTROLLERS below; each controller issue adds
#      its own), then waits (timeout DEMO_TIMEOUT, 120s) until the objects are Ready and prints what was
#      applied
#   6. a push announced by a signed webhook to the Receiver, applied at once (the time is printed)
#   7. image automation: a local registry (docker-registry) whose pushes notify a Receiver; a new tag of
#      the demo's image is scanned, picked by an ImagePolicy, committed to the repository at its
#      $imagepolicy marker by an ImageUpdateAutomation, announced by the Git server's post-receive hook
#      and applied (the time from the tag's push to the new image in the cluster is printed)
# Exits 0 when done; with --keep it stays up until Ctrl-C. Logs: $DEMO_DIR (printed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
KEEP=""; [ "${1:-}" = "--keep" ] && KEEP=1
TIMEOUT=${DEMO_TIMEOUT:-120}
DEMO_DIR=$(mktemp -d /tmp/driftless-demo.XXXXXX)
log() { echo "[demo $(date +%T)] $*" >&2; }
pids=()
STARTED_CLUSTER=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$DEMO_DIR/lighttpd.pid" ] && kill "$(cat "$DEMO_DIR/lighttpd.pid")" 2>/dev/null || true
  [ -n "$STARTED_CLUSTER" ] && hack/testcluster.sh stop demo >/dev/null 2>&1 || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
STORAGE_PORT=$(free_port)
EVENTS_PORT=$(free_port)
RECEIVER_PORT=$(free_port)
COMMON="--metrics-addr=127.0.0.1:0 --health-addr=127.0.0.1:0 --log-encoding=console --watch-all-namespaces=true"
EVENTS="--events-addr=http://127.0.0.1:$EVENTS_PORT/"
# Controllers that exist so far: "<cargo package> <binary> <flags…>", and the objects to wait for. Each
# controller issue appends itself.
CONTROLLERS=(
  "notification-controller notification-controller $COMMON --events-addr=127.0.0.1:$EVENTS_PORT --receiverAddr=127.0.0.1:$RECEIVER_PORT"
  "source-controller source-controller $COMMON $EVENTS --storage-addr=127.0.0.1:$STORAGE_PORT --storage-path=$DEMO_DIR/storage"
  "kustomize-controller kustomize-controller $COMMON $EVENTS"
  "helm-controller helm-controller $COMMON $EVENTS --helm-binary=$(hack/tools.sh bin)/helm"
  "image-reflector-controller image-reflector-controller $COMMON $EVENTS --storage-path=$DEMO_DIR/tags"
  "image-automation-controller image-automation-controller $COMMON $EVENTS"
)
WAIT_FOR=(gitrepository/demo kustomization/demo receiver/demo helmrepository/demo helmrelease/demo)

hack/tools.sh >/dev/null
if [ -n "${DRIFTLESS_KUBECONFIG:-}" ]; then
  export KUBECONFIG=$DRIFTLESS_KUBECONFIG
  log "control plane: DRIFTLESS_KUBECONFIG=$KUBECONFIG"
else
  hack/testcluster.sh status demo >/dev/null 2>&1 || STARTED_CLUSTER=1
  KUBECONFIG=$(hack/testcluster.sh start demo)
  export KUBECONFIG
  log "control plane: driftless test API server ($(hack/testcluster.sh versions | head -1)), KUBECONFIG=$KUBECONFIG"
fi
kubectl version 2>/dev/null | sed 's/^/    /' >&2 || true

log "installing CRDs"
kubectl apply --server-side --force-conflicts -k crds/ >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd --all >/dev/null
kubectl get crd -o custom-columns=CRD:.metadata.name,VERSION:.spec.versions[0].name --no-headers | sed 's/^/    /' >&2

log "serving the example repository over HTTP"
REPOS=$DEMO_DIR/repos; mkdir -p "$REPOS"
git init -q --bare --initial-branch=main "$REPOS/demo.git"
git -C "$REPOS/demo.git" config http.receivepack true
WORK=$DEMO_DIR/work; git init -q --initial-branch=main "$WORK"
cp -r hack/demo/app "$WORK/app"
git -C "$WORK" add -A
git -C "$WORK" -c user.name=driftless -c user.email=demo@driftless.io commit -qm "demo app"
git -C "$WORK" push -q "$REPOS/demo.git" HEAD:main
REVISION=main@sha1:$(git -C "$WORK" rev-parse HEAD)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo 'demo:demo-password' > "$DEMO_DIR/users"
cat > "$DEMO_DIR/lighttpd.conf" <<EOC
server.modules = ("mod_auth", "mod_authn_file", "mod_alias", "mod_cgi", "mod_setenv")
server.bind = "127.0.0.1"
server.port = $PORT
server.document-root = "$REPOS"
server.errorlog = "$DEMO_DIR/lighttpd.log"
server.pid-file = "$DEMO_DIR/lighttpd.pid"
alias.url = ("/git/" => "/usr/lib/git-core/git-http-backend/")
\$HTTP["url"] =~ "^/git/" {
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "$REPOS", "GIT_HTTP_EXPORT_ALL" => "1")
  auth.backend = "plain"
  auth.backend.plain.userfile = "$DEMO_DIR/users"
  auth.require = ("/git/" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
}
EOC
lighttpd -f "$DEMO_DIR/lighttpd.conf"
URL=http://127.0.0.1:$PORT/git/demo.git
git ls-remote "http://demo:demo-password@127.0.0.1:$PORT/git/demo.git" main >/dev/null
log "repository $URL at $REVISION"
log "packaging a chart (helm create, helm package, helm repo index) into a Helm repository next to it"
HELM="$(hack/tools.sh bin)/helm"
export HELM_CACHE_HOME=$DEMO_DIR/helm/cache HELM_CONFIG_HOME=$DEMO_DIR/helm/config HELM_DATA_HOME=$DEMO_DIR/helm/data
mkdir -p "$REPOS/charts"
( cd "$DEMO_DIR" && "$HELM" create podinfo >/dev/null && "$HELM" package podinfo -d "$REPOS/charts" >/dev/null )
"$HELM" repo index "$REPOS/charts"
CHARTS=http://127.0.0.1:$PORT/charts

log "creating the GitRepository and Kustomization"
kubectl apply --server-side -f - >/dev/null <<EOF2
apiVersion: v1
kind: Namespace
metadata:
  name: flux-system
---
apiVersion: v1
kind: Secret
metadata:
  name: demo-git-auth
  namespace: flux-system
stringData:
  username: demo
  password: demo-password
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: demo
  namespace: flux-system
spec:
  interval: 1m
  url: $URL
  ref:
    branch: main
  secretRef:
    name: demo-git-auth
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: demo
  namespace: flux-system
spec:
  interval: 5m
  path: ./app
  prune: true
  sourceRef:
    kind: GitRepository
    name: demo
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: demo
  namespace: flux-system
spec:
  interval: 10m
  url: $CHARTS
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: demo
  namespace: flux-system
spec:
  interval: 10m
  targetNamespace: demo-helm
  chart:
    spec:
      chart: podinfo
      version: "0.1.x"
      sourceRef:
        kind: HelmRepository
        name: demo
  # the local control plane runs no controllers: nothing rolls out, so no --wait
  install:
    createNamespace: true
    disableWait: true
  upgrade:
    disableWait: true
  values:
    replicaCount: 2
---
apiVersion: v1
kind: Secret
metadata:
  name: demo-webhook-token
  namespace: flux-system
stringData:
  token: demo-webhook-token
---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata:
  name: demo
  namespace: flux-system
spec:
  type: generic-hmac
  secretRef:
    name: demo-webhook-token
  resources:
    - kind: GitRepository
      name: demo
EOF2

if [ ${#CONTROLLERS[@]} -eq 0 ]; then
  log "no controller exists yet (source-controller and kustomize-controller come with their issues):"
  log "the control plane, the CRDs and the objects are in place, waiting for them"
else
  for c in "${CONTROLLERS[@]}"; do
    read -r pkg bin flags <<<"$c"
    log "building $bin"
    cargo build -q -p "$pkg"
    # shellcheck disable=SC2086
    "target/debug/$bin" $flags > "$DEMO_DIR/$bin.log" 2>&1 &
    pids+=($!)
    log "started $bin (log $DEMO_DIR/$bin.log)"
  done
  log "waiting up to ${TIMEOUT}s for ${WAIT_FOR[*]} to be Ready"
  if ! kubectl -n flux-system wait --for=condition=Ready --timeout="${TIMEOUT}s" "${WAIT_FOR[@]}"; then
    kubectl -n flux-system get gitrepositories,kustomizations,helmrepositories,helmcharts,helmreleases -o wide >&2
    for c in "${CONTROLLERS[@]}"; do read -r _ bin _ <<<"$c"; log "last lines of $bin:"; tail -20 "$DEMO_DIR/$bin.log" >&2; done
    exit 1
  fi
  ARTIFACT=$(kubectl -n flux-system get gitrepository demo -o jsonpath='{.status.artifact.url}')
  log "GitRepository demo: $(kubectl -n flux-system get gitrepository demo -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}')"
  log "HelmRelease demo: $(kubectl -n flux-system get helmrelease demo -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}'); helm list:"
  "$HELM" list -n flux-system | sed 's/^/    /' >&2
  log "artifact $ARTIFACT ($(kubectl -n flux-system get gitrepository demo -o jsonpath='{.status.artifact.digest}')), files:"
  curl -sf "$ARTIFACT" | tar tzf - | sed 's/^/    /' >&2
  if kubectl get ns demo >/dev/null 2>&1; then
    log "applied:"
    kubectl -n demo get all,configmap 2>/dev/null | sed 's/^/    /' >&2
  else
    log "the Kustomization waits for kustomize-controller (its issue); nothing is applied yet"
  fi
  # a push, announced by a signed webhook: applied at once, not at the next interval
  HOOK=$(kubectl -n flux-system get receiver demo -o jsonpath='{.status.webhookPath}')
  echo "apiVersion: v1
kind: ConfigMap
metadata:
  name: pushed
  namespace: demo
data:
  at: \"$(date +%T)\"" > "$WORK/app/pushed.yaml"
  git -C "$WORK" add -A
  git -C "$WORK" -c user.name=driftless -c user.email=demo@driftless.io commit -qm "a push"
  git -C "$WORK" push -q "$REPOS/demo.git" HEAD:main
  PUSHED=$(git -C "$WORK" rev-parse HEAD)
  BODY='{"pushed":"main"}'
  SIG=$(python3 -c 'import hashlib, hmac, sys; print(hmac.new(b"demo-webhook-token", sys.argv[1].encode(), hashlib.sha256).hexdigest())' "$BODY")
  t0=$(date +%s%N)
  curl -sf -X POST -H "X-Signature: sha256=$SIG" -d "$BODY" "http://127.0.0.1:$RECEIVER_PORT$HOOK" >/dev/null
  log "pushed $PUSHED and POSTed the signed webhook to $HOOK"
  for _ in $(seq 300); do
    kubectl -n flux-system get kustomization demo -o jsonpath='{.status.lastAppliedRevision}' | grep -q "$PUSHED" && break
    sleep 0.1
  done
  if kubectl -n flux-system get kustomization demo -o jsonpath='{.status.lastAppliedRevision}' | grep -q "$PUSHED"; then
    log "applied $PUSHED $(( ($(date +%s%N) - t0) / 1000000 )) ms after the webhook (intervals: 1m and 5m)"
  else
    log "the push was not applied within 30s"; exit 1
  fi

  # image automation: a new tag in the registry reaches the cluster through Git, every step on a webhook
  log "image automation: a registry, a Receiver it notifies, the Deployment's image marked for a policy"
  kubectl apply --server-side -f - >/dev/null <<EOF3
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata:
  name: registry
  namespace: flux-system
spec:
  type: harbor
  secretRef:
    name: demo-webhook-token
  resources:
    - apiVersion: image.toolkit.fluxcd.io/v1
      kind: ImageRepository
      name: podinfo
EOF3
  kubectl -n flux-system wait --for=condition=Ready --timeout=30s receiver/registry >/dev/null
  REG_HOOK=http://127.0.0.1:$RECEIVER_PORT$(kubectl -n flux-system get receiver registry -o jsonpath='{.status.webhookPath}')
  REG_PORT=$(free_port)
  cat > "$DEMO_DIR/registry.yml" <<EOC
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $DEMO_DIR/registry}}
http: {addr: 127.0.0.1:$REG_PORT}
notifications: {endpoints: [{name: demo, url: "$REG_HOOK", headers: {Authorization: [demo-webhook-token]}, timeout: 2s, threshold: 3, backoff: 200ms, ignore: {actions: [pull], mediatypes: [application/vnd.docker.image.rootfs.diff.tar.gzip, application/vnd.docker.container.image.v1+json, application/octet-stream]}}]}
EOC
  docker-registry serve "$DEMO_DIR/registry.yml" > "$DEMO_DIR/registry.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$REG_PORT/v2/" >/dev/null && break; sleep 0.1; done
  CRANE="$(hack/tools.sh bin)/crane"
  IMAGE=127.0.0.1:$REG_PORT/podinfo
  push_tag() { mkdir -p "$DEMO_DIR/layer"; echo "$1" > "$DEMO_DIR/layer/tag"; tar czf "$DEMO_DIR/layer.tgz" -C "$DEMO_DIR/layer" tag
    "$CRANE" append --insecure -f "$DEMO_DIR/layer.tgz" -t "$IMAGE:$1" >/dev/null 2>&1; }
  push_tag 6.5.4
  # the Git server announces every push to the GitRepository's Receiver, signed, as a Git host does
  cat > "$REPOS/demo.git/hooks/post-receive" <<EOC
#!/bin/sh
body='{"pushed":"main"}'
sig=\$(python3 -c 'import hashlib, hmac, sys; print(hmac.new(b"demo-webhook-token", sys.argv[1].encode(), hashlib.sha256).hexdigest())' "\$body")
curl -sf -X POST -H "X-Signature: sha256=\$sig" -d "\$body" "http://127.0.0.1:$RECEIVER_PORT$HOOK" >/dev/null
EOC
  chmod 755 "$REPOS/demo.git/hooks/post-receive"
  sed -i "s|image: ghcr.io/stefanprodan/podinfo:6.5.4|image: $IMAGE:6.5.4 # {\"\$imagepolicy\": \"flux-system:podinfo\"}|" "$WORK/app/deployment.yaml"
  git -C "$WORK" -c user.name=driftless -c user.email=demo@driftless.io commit -qam "podinfo from the local registry, marked for the podinfo policy"
  git -C "$WORK" push -q "$REPOS/demo.git" HEAD:main
  kubectl apply --server-side -f - >/dev/null <<EOF3
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  image: $IMAGE
  interval: 1h
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: flux-system
spec:
  imageRepositoryRef:
    name: podinfo
  policy:
    semver:
      range: ^6.5.0
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: demo
  namespace: flux-system
spec:
  interval: 1h
  sourceRef:
    kind: GitRepository
    name: demo
  git:
    commit:
      author:
        name: driftless
        email: bot@driftless.io
      messageTemplate: |
        Update images

        {{ range .Changed.Changes }}- {{ .OldValue }} -> {{ .NewValue }}
        {{ end }}
    push:
      branch: main
  update:
    path: ./app
EOF3
  kubectl -n flux-system wait --for=condition=Ready --timeout=60s imagerepository/podinfo imagepolicy/podinfo imageupdateautomation/demo >/dev/null
  for _ in $(seq 300); do
    [ "$(kubectl -n demo get deployment web -o jsonpath='{.spec.template.spec.containers[0].image}')" = "$IMAGE:6.5.4" ] && break; sleep 0.1
  done
  log "ImagePolicy podinfo: $(kubectl -n flux-system get imagepolicy podinfo -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}')"
  t0=$(date +%s%N)
  push_tag 6.6.0
  log "pushed $IMAGE:6.6.0"
  for _ in $(seq 600); do
    [ "$(kubectl -n demo get deployment web -o jsonpath='{.spec.template.spec.containers[0].image}')" = "$IMAGE:6.6.0" ] && break; sleep 0.05
  done
  if [ "$(kubectl -n demo get deployment web -o jsonpath='{.spec.template.spec.containers[0].image}')" = "$IMAGE:6.6.0" ]; then
    log "the Deployment runs $IMAGE:6.6.0 $(( ($(date +%s%N) - t0) / 1000000 )) ms after the tag was pushed (intervals: 1h); the commit:"
    git -C "$REPOS/demo.git" log -1 --format='    %h %an: %B' main >&2
    git -C "$REPOS/demo.git" show main:app/deployment.yaml | grep 'image:' | sed 's/^/    /' >&2
  else
    kubectl -n flux-system get imagerepositories,imagepolicies,imageupdateautomations -o wide >&2
    log "the new tag was not applied within 30s"; exit 1
  fi
fi
cargo build -q -p driftless
log "driftless get all -A:"
target/debug/driftless get all -A | sed 's/^/    /' >&2

if [ -n "$KEEP" ]; then
  log "up; KUBECONFIG=$KUBECONFIG; Ctrl-C to stop"
  while sleep 3600; do :; done
fi
log "done"
