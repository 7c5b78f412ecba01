//! Image automation end to end: image-reflector-controller scanning a real registry (Debian's
//! `docker-registry`, tags pushed with `crane`), image-automation-controller committing to a real Git
//! server (git-http-backend behind lighttpd, with credentials), source- and kustomize-controller applying
//! the commit — each controller as its own ServiceAccount from `config/`.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use driftless_api::{
    image::{ImagePolicy, ImageRepository, ImageUpdateAutomation},
    kustomize::Kustomization,
    meta::RECONCILE_REQUEST_ANNOTATION,
    source::GitRepository,
};
use driftless_e2e::Fleet;
use driftless_runtime::conditions;
use driftless_testkit::{cluster::cluster, registry::Registry};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Secret};
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};

async fn wait<K>(api: &Api<K>, name: &str, what: &str, pred: impl Fn(&K) -> bool) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(obj) = api.get_opt(name).await.unwrap().filter(|o| pred(o)) {
            return obj;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:#?}",
            api.get_opt(name).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Ready's (status, reason, message).
fn ready(
    conds: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>,
) -> (String, String, String) {
    conds
        .and_then(|c| conditions::get(c, "Ready"))
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
        .unwrap_or_default()
}

fn stalled(conds: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>) -> bool {
    conds.is_some_and(|c| conditions::is_true(c, "Stalled"))
}

async fn apply<K>(ns: &str, obj: Value) -> Api<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + serde::Serialize
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(cluster().client().await, ns);
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    api.patch(&name, &PatchParams::apply("test").force(), &Patch::Apply(&obj))
        .await
        .unwrap_or_else(|e| panic!("applying {name}: {e}"));
    api
}

/// Asks for a reconcile of `name` now; returns the request's token.
async fn request<K>(api: &Api<K>, name: &str) -> String
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let token = format!("{:?}", Instant::now());
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: token}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    token
}

/// Pushes `tag` of `repository` as a one-layer image whose content names the tag (so each tag has its
/// own digest); returns the digest.
fn push(registry: &Registry, repository: &str, tag: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tag"), tag).unwrap();
    let layer = dir.path().join("layer.tar.gz");
    let status = Command::new("tar")
        .arg("czf")
        .arg(&layer)
        .arg("-C")
        .arg(dir.path())
        .arg("tag")
        .status()
        .unwrap();
    assert!(status.success());
    registry.push_crane(repository, tag, &layer)
}

/// `git show <rev>` in the bare repository.
fn git(bare: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(bare)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Env {
    n: String,
    registry: Registry,
    storage: tempfile::TempDir,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _artifacts: tempfile::TempDir,
    _ns: driftless_testkit::cluster::TestNamespace,
}

impl Env {
    async fn start(prefix: &str) -> Self {
        cluster().install_crds().await;
        cluster().apply_kustomization("config/default");
        let ns = cluster().namespace(prefix).await;
        let n = ns.name().to_string();
        let artifacts = tempfile::tempdir().unwrap();
        let storage = tempfile::tempdir().unwrap();
        let (_, source) = driftless_e2e::source(&n, artifacts.path(), &[]).await;
        let kustomize = driftless_e2e::kustomize(&n, &[]).await;
        let reflector = driftless_e2e::image_reflector(&n, storage.path(), &[]).await;
        let automation = driftless_e2e::image_automation(&n, &[]).await;
        Self {
            n,
            registry: Registry::start(),
            storage,
            tasks: vec![source, kustomize, reflector, automation],
            _artifacts: artifacts,
            _ns: ns,
        }
    }

    fn image(&self, repository: &str) -> String {
        format!("{}/{repository}", self.registry.host())
    }

    async fn image_repository(&self, name: &str, extra: Value) -> Api<ImageRepository> {
        let mut spec = json!({"image": self.image(name), "interval": "1h"});
        merge(&mut spec, extra);
        apply(
            &self.n,
            json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
                "metadata": {"name": name}, "spec": spec}),
        )
        .await
    }

    async fn policy(&self, name: &str, repository: &str, spec: Value) -> Api<ImagePolicy> {
        let mut full = json!({"imageRepositoryRef": {"name": repository}});
        merge(&mut full, spec);
        apply(
            &self.n,
            json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
                "metadata": {"name": name}, "spec": full}),
        )
        .await
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

fn latest(p: &ImagePolicy) -> Option<(String, Option<String>)> {
    let r = p.status.as_ref()?.latest_ref.as_ref()?;
    Some((r.tag.clone(), r.digest.clone()))
}

const DEPLOYMENT: &str = r#"# the web app: only the marked line is the automation's
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app   # spacing, comments and quoting stay
spec:
  replicas: 1
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels:
        app: "app"
    spec:
      containers:
      - name: app
        image: IMAGE:1.0.0 # {"$imagepolicy": "NS:app"}
        ports:
          - containerPort:   8080
"#;

fn deployment_image(d: &Deployment) -> String {
    d.spec.template.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_new_tag_is_committed_pushed_and_applied_with_nothing_else_changed() {
    let mut env = Env::start("image").await;
    let n = env.n.clone();
    for tag in ["1.0.0", "1.0.1", "1.1.0-rc.1", "sha256-0123.sig"] {
        push(&env.registry, "app", tag);
    }
    let image = env.image("app");
    let original = DEPLOYMENT.replace("IMAGE", &image).replace("NS", &n);
    let fleet = Fleet::start(&n, &[("deploy/app.yaml", &original)]).await;

    // the scan, without the cosign signature tag
    let repos = env.image_repository("app", json!({})).await;
    let repo = wait(&repos, "app", "the first scan", |r| {
        ready(r.status.as_ref().map(|s| &s.conditions)).0 == "True"
    })
    .await;
    let status = repo.status.clone().unwrap();
    let scan = status.last_scan_result.clone().unwrap();
    assert_eq!(scan.tag_count, 3);
    assert_eq!(scan.latest_tags.unwrap(), ["1.1.0-rc.1", "1.0.1", "1.0.0"]);
    assert_eq!(status.canonical_image_name.as_deref(), Some(image.as_str()));
    assert_eq!(
        ready(Some(&status.conditions)).2,
        format!(
            "successful scan: found 3 tags with checksum {}",
            scan.revision.unwrap()
        )
    );

    let policies = env
        .policy("app", "app", json!({"policy": {"semver": {"range": ">=1.0.0"}}}))
        .await;
    let policy = wait(&policies, "app", "the latest tag", |p| latest(p).is_some()).await;
    assert_eq!(latest(&policy).unwrap().0, "1.0.1");
    assert_eq!(
        ready(policy.status.as_ref().map(|s| &s.conditions)).2,
        format!("Latest image tag for {image} resolved to 1.0.1")
    );

    // the fleet applied as it is in Git
    apply::<Kustomization>(
        &n,
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps"}, "spec": {"interval": "1h", "path": "./deploy", "prune": true,
            "targetNamespace": n, "sourceRef": {"kind": "GitRepository", "name": "fleet"}}}),
    )
    .await;
    let deployments: Api<Deployment> = Api::namespaced(cluster().client().await, &n);
    wait(&deployments, "app", "the first apply", |d| {
        deployment_image(d) == format!("{image}:1.0.0")
    })
    .await;

    // the automation commits the new tag
    let template = "Update images of {{ .AutomationObject }}\n\n{{ range .Changed.Changes -}}\n- {{ .OldValue }} -> {{ .NewValue }} ({{ .Setter }})\n{{ end -}}";
    let automations = apply::<ImageUpdateAutomation>(
        &n,
        json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
            "metadata": {"name": "auto"}, "spec": {"interval": "1h",
            "sourceRef": {"kind": "GitRepository", "name": "fleet"},
            "git": {"checkout": {"ref": {"branch": "main"}},
                    "commit": {"author": {"name": "Fluxbot", "email": "flux@example.com"}, "messageTemplate": template},
                    "push": {"branch": "main"}},
            "update": {"path": "./deploy", "strategy": "Setters"}}}),
    )
    .await;
    let auto = wait(&automations, "auto", "a push", |a| {
        a.status.as_ref().is_some_and(|s| s.last_push_commit.is_some())
    })
    .await;
    let status = auto.status.clone().unwrap();
    let pushed = status.last_push_commit.clone().unwrap();
    assert_eq!(git(fleet.repo.bare(), &["rev-parse", "main"]).trim(), pushed);
    assert_eq!(
        git(fleet.repo.bare(), &["show", "main:deploy/app.yaml"]),
        original.replace(":1.0.0 #", ":1.0.1 #"),
        "only the marked value changes"
    );
    assert_eq!(
        git(
            fleet.repo.bare(),
            &["log", "-1", "--format=%an <%ae>%n%B", "main"]
        )
        .trim_end(),
        format!(
            "Fluxbot <flux@example.com>\nUpdate images of {n}/auto\n\n- {image}:1.0.0 -> {image}:1.0.1 ({n}:app)"
        )
    );
    assert_eq!(
        status.observed_source_revision,
        Some(format!("main@sha1:{pushed}"))
    );
    assert_eq!(status.observed_policies.unwrap()["app"].tag, "1.0.1");
    assert_eq!(ready(Some(&status.conditions)).0, "True");

    // ... and kustomize-controller applies it
    let gits: Api<GitRepository> = Api::namespaced(cluster().client().await, &n);
    request(&gits, "fleet").await;
    wait(&deployments, "app", "1.0.1 applied", |d| {
        deployment_image(d) == format!("{image}:1.0.1")
    })
    .await;

    // a newer tag: scanned on request, picked, committed, applied
    push(&env.registry, "app", "1.2.0");
    request(&repos, "app").await;
    let auto = wait(&automations, "auto", "a second push", |a| {
        a.status.as_ref().and_then(|s| s.last_push_commit.as_ref()) != Some(&pushed)
    })
    .await;
    let second = auto.status.unwrap().last_push_commit.unwrap();
    assert_eq!(
        git(fleet.repo.bare(), &["show", "main:deploy/app.yaml"]),
        original.replace(":1.0.0 #", ":1.2.0 #")
    );
    request(&gits, "fleet").await;
    wait(&deployments, "app", "1.2.0 applied", |d| {
        deployment_image(d) == format!("{image}:1.2.0")
    })
    .await;

    // nothing new: no commit
    let token = request(&automations, "auto").await;
    let auto = wait(&automations, "auto", "a run without changes", |a| {
        a.status
            .as_ref()
            .and_then(|s| s.reconcile_request.last_handled_reconcile_at.as_deref())
            == Some(token.as_str())
    })
    .await;
    assert_eq!(
        auto.status.unwrap().last_push_commit.as_deref(),
        Some(second.as_str())
    );
    assert_eq!(git(fleet.repo.bare(), &["rev-parse", "main"]).trim(), second);

    // a restarted reflector has the tags at once: no rescan, the policy stays
    let scanned_at = repos
        .get("app")
        .await
        .unwrap()
        .status
        .unwrap()
        .last_scan_result
        .unwrap()
        .scan_time;
    env.tasks[2].abort();
    env.tasks[2] = driftless_e2e::image_reflector(&n, env.storage.path(), &[]).await;
    let token = request(&policies, "app").await;
    let policy = wait(&policies, "app", "the policy after a restart", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.reconcile_request.last_handled_reconcile_at.as_deref())
            == Some(token.as_str())
    })
    .await;
    assert_eq!(latest(&policy).unwrap().0, "1.2.0");
    assert_eq!(ready(policy.status.as_ref().map(|s| &s.conditions)).0, "True");
    assert_eq!(
        repos
            .get("app")
            .await
            .unwrap()
            .status
            .unwrap()
            .last_scan_result
            .unwrap()
            .scan_time,
        scanned_at,
        "not scanned again"
    );
}

#[tokio::test]
async fn each_policy_picks_what_flux_picks_from_a_real_registry() {
    let env = Env::start("image-policies").await;
    let mut digests = std::collections::BTreeMap::new();
    for tag in [
        "1.0.0",
        "1.0.1",
        "v1.2.0",
        "1.3.0-rc.1",
        "2.0.0-alpha",
        "main-abc-100",
        "main-def-200",
        "9",
        "10",
    ] {
        digests.insert(tag, push(&env.registry, "web", tag));
    }
    let repos = env
        .image_repository("web", json!({"exclusionList": ["^dev-"]}))
        .await;
    wait(&repos, "web", "the scan", |r| {
        r.status
            .as_ref()
            .and_then(|s| s.last_scan_result.as_ref())
            .is_some_and(|s| s.tag_count == 9)
    })
    .await;
    let cases = [
        (
            "semver",
            json!({"policy": {"semver": {"range": "1.x"}}}),
            "v1.2.0",
        ),
        // Masterminds: a prerelease in the range admits prereleases of any version
        (
            "prerelease",
            json!({"policy": {"semver": {"range": ">=1.3.0-0"}}}),
            "2.0.0-alpha",
        ),
        (
            "alpha",
            json!({"policy": {"alphabetical": {}}, "filterTags": {"pattern": "^main-"}}),
            "main-def-200",
        ),
        (
            "alpha-desc",
            json!({"policy": {"alphabetical": {"order": "desc"}}, "filterTags": {"pattern": "^main-"}}),
            "main-abc-100",
        ),
        (
            "extract",
            json!({"policy": {"numerical": {"order": "asc"}},
                   "filterTags": {"pattern": "^main-[a-f]+-(?P<ts>[0-9]+)$", "extract": "$ts"}}),
            "main-def-200",
        ),
        (
            "numbers",
            json!({"policy": {"numerical": {}}, "filterTags": {"pattern": "^[0-9]+$"}}),
            "10",
        ),
    ];
    for (name, spec, _) in &cases {
        env.policy(name, "web", spec.clone()).await;
    }
    let policies: Api<ImagePolicy> = Api::namespaced(cluster().client().await, &env.n);
    for (name, _, want) in &cases {
        let p = wait(&policies, name, name, |p| latest(p).is_some()).await;
        assert_eq!(latest(&p).unwrap(), (want.to_string(), None), "{name}");
    }
    // the digest, read from the registry once per tag
    let p = env
        .policy(
            "pinned",
            "web",
            json!({"policy": {"semver": {"range": "~1.0"}}, "digestReflectionPolicy": "IfNotPresent"}),
        )
        .await;
    let pinned = wait(&p, "pinned", "the digest", |p| latest(p).is_some()).await;
    assert_eq!(
        latest(&pinned).unwrap(),
        ("1.0.1".to_string(), Some(digests["1.0.1"].clone()))
    );
}

#[tokio::test]
async fn bad_input_is_reported_and_nothing_half_written_is_pushed() {
    let env = Env::start("image-bad").await;
    let n = env.n.clone();
    push(&env.registry, "app", "1.0.0");
    push(&env.registry, "app", "1.0.1");

    // an unreachable registry
    let unreachable: Api<ImageRepository> = apply(
        &n,
        json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
            "metadata": {"name": "gone"}, "spec": {"image": "127.0.0.1:1/app", "interval": "1h"}}),
    )
    .await;
    let r = wait(&unreachable, "gone", "a failed scan", |r| {
        ready(r.status.as_ref().map(|s| &s.conditions)).0 == "False"
    })
    .await;
    let (_, reason, message) = ready(r.status.as_ref().map(|s| &s.conditions));
    assert_eq!(reason, "ReadOperationFailed", "{message}");
    assert!(message.starts_with("scan failed: "), "{message}");

    // a registry that wants a login: refused without one, scanned with the docker config Secret
    let private = Registry::start_with_auth("bot", "t0ken");
    private.push_flux("app", "3.0.0", &[("a", "b")], &[]);
    let image = format!("{}/app", private.host());
    let repos: Api<ImageRepository> = apply(
        &n,
        json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
            "metadata": {"name": "private"}, "spec": {"image": image, "interval": "1h"}}),
    )
    .await;
    let r = wait(&repos, "private", "an unauthorized scan", |r| {
        ready(r.status.as_ref().map(|s| &s.conditions)).0 == "False"
    })
    .await;
    let (_, reason, message) = ready(r.status.as_ref().map(|s| &s.conditions));
    assert!(
        reason == "AuthenticationFailed" || message.contains("401") || message.contains("nauthorized"),
        "{reason}: {message}"
    );
    apply::<Secret>(
        &n,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pull"},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": private.docker_config("bot", "t0ken")}}),
    )
    .await;
    env.image_repository("private", json!({"image": image, "secretRef": {"name": "pull"}}))
        .await;
    let r = wait(&repos, "private", "a scan with credentials", |r| {
        ready(r.status.as_ref().map(|s| &s.conditions)).0 == "True"
    })
    .await;
    assert_eq!(
        r.status.unwrap().last_scan_result.unwrap().latest_tags.unwrap(),
        ["3.0.0"]
    );

    // a tag in the image name, an invalid range, an invalid pattern: stalled, with what to fix
    let tagged: Api<ImageRepository> = env
        .image_repository("tagged", json!({"image": format!("{}:1.0", env.image("app"))}))
        .await;
    let r = wait(&tagged, "tagged", "a refused image", |r| {
        stalled(r.status.as_ref().map(|s| &s.conditions))
    })
    .await;
    let (_, reason, message) = ready(r.status.as_ref().map(|s| &s.conditions));
    assert_eq!(reason, "ImageURLInvalid");
    assert!(
        message.contains("should not include a tag; remove ':1.0'"),
        "{message}"
    );
    env.image_repository("app", json!({})).await;
    for (name, spec, want) in [
        (
            "range",
            json!({"policy": {"semver": {"range": "one point oh"}}}),
            "invalid policy",
        ),
        (
            "pattern",
            json!({"policy": {"semver": {"range": "*"}}, "filterTags": {"pattern": "(["}}),
            "invalid regular expression pattern",
        ),
    ] {
        let p = env.policy(name, "app", spec).await;
        let p = wait(&p, name, name, |p| {
            stalled(p.status.as_ref().map(|s| &s.conditions))
        })
        .await;
        let (_, reason, message) = ready(p.status.as_ref().map(|s| &s.conditions));
        assert_eq!(reason, "InvalidPolicy", "{name}: {message}");
        assert!(message.contains(want), "{name}: {message}");
    }
    let policies = env
        .policy("app", "app", json!({"policy": {"semver": {"range": "1.x"}}}))
        .await;
    wait(&policies, "app", "the latest", |p| latest(p).is_some()).await;

    // the automation: a file with a marker that is not YAML, a marker naming no policy, a push the
    // server refuses — each Ready=False with what to fix, the branch untouched
    let good = DEPLOYMENT.replace("IMAGE", &env.image("app")).replace("NS", &n);
    let fleet = Fleet::start(&n, &[("deploy/app.yaml", &good)]).await;
    let bad_yaml = format!(
        "image: [{} # {{\"$imagepolicy\": \"{n}:app\"}}\n",
        env.image("app")
    );
    let head = fleet
        .repo
        .commit(&[("deploy/bad.yaml", &bad_yaml)], "a broken file");
    let automations = apply::<ImageUpdateAutomation>(
        &n,
        json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
            "metadata": {"name": "auto"}, "spec": {"interval": "1h",
            "sourceRef": {"kind": "GitRepository", "name": "fleet"},
            "git": {"checkout": {"ref": {"branch": "main"}}, "commit": {"author": {"email": "flux@example.com"}}},
            "update": {"path": "./deploy"}}}),
    )
    .await;
    let failed = |want: &'static str| {
        move |a: &ImageUpdateAutomation| ready(a.status.as_ref().map(|s| &s.conditions)).2.contains(want)
    };
    let a = wait(
        &automations,
        "auto",
        "a file that is not YAML",
        failed("not valid YAML"),
    )
    .await;
    let (status, reason, message) = ready(a.status.as_ref().map(|s| &s.conditions));
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "UpdateFailed"),
        "{message}"
    );
    assert!(
        message.contains("bad.yaml holds an image policy marker"),
        "{message}"
    );
    assert_eq!(git(fleet.repo.bare(), &["rev-parse", "main"]).trim(), head);

    fleet.repo.remove(&["deploy/bad.yaml"], "fixed");
    let gone = format!("a: x:1 # {{\"$imagepolicy\": \"{n}:nosuchpolicy\"}}\n");
    let head = fleet
        .repo
        .commit(&[("deploy/gone.yaml", &gone)], "a stale marker");
    request(&automations, "auto").await;
    let a = wait(
        &automations,
        "auto",
        "a marker naming no policy",
        failed("nosuchpolicy"),
    )
    .await;
    let (_, reason, message) = ready(a.status.as_ref().map(|s| &s.conditions));
    assert_eq!(reason, "UpdateFailed");
    assert!(
        message.contains(&format!(
            "gone.yaml:1: marker '{n}:nosuchpolicy' names ImagePolicy {n}/nosuchpolicy, which does not exist"
        )),
        "{message}"
    );
    assert_eq!(git(fleet.repo.bare(), &["rev-parse", "main"]).trim(), head);

    fleet.repo.remove(&["deploy/gone.yaml"], "fixed");
    let hook = fleet.repo.bare().join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'main is protected' >&2\nexit 1\n").unwrap();
    Command::new("chmod").arg("755").arg(&hook).status().unwrap();
    let head = git(fleet.repo.bare(), &["rev-parse", "main"]).trim().to_string();
    request(&automations, "auto").await;
    let a = wait(&automations, "auto", "a refused push", |a| {
        let (_, reason, _) = ready(a.status.as_ref().map(|s| &s.conditions));
        reason == "GitOperationFailed"
    })
    .await;
    let (_, _, message) = ready(a.status.as_ref().map(|s| &s.conditions));
    assert!(message.starts_with("failed to update source: "), "{message}");
    assert_eq!(git(fleet.repo.bare(), &["rev-parse", "main"]).trim(), head);

    // the hook gone: pushed
    std::fs::remove_file(&hook).unwrap();
    request(&automations, "auto").await;
    let a = wait(&automations, "auto", "a push", |a| {
        a.status.as_ref().is_some_and(|s| s.last_push_commit.is_some())
    })
    .await;
    assert_eq!(ready(a.status.as_ref().map(|s| &s.conditions)).0, "True");
    assert!(git(fleet.repo.bare(), &["show", "main:deploy/app.yaml"]).contains(":1.0.1 #"));

    // the GitRepository's credentials no longer valid: refused, with what failed
    apply::<Secret>(
        &n,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "auth"},
            "stringData": {"username": "flux", "password": "hunter2-not-it"}}),
    )
    .await;
    request(&automations, "auto").await;
    let a = wait(&automations, "auto", "refused credentials", |a| {
        ready(a.status.as_ref().map(|s| &s.conditions)).0 == "False"
    })
    .await;
    let (_, reason, message) = ready(a.status.as_ref().map(|s| &s.conditions));
    assert_eq!(reason, "GitOperationFailed", "{message}");
    assert!(message.starts_with("failed to checkout source: "), "{message}");
    assert!(
        !message.contains("hunter2"),
        "no secret in the message: {message}"
    );
}

#[tokio::test]
async fn a_branch_that_moved_meanwhile_is_updated_again_from_its_new_head() {
    let env = Env::start("image-race").await;
    let n = env.n.clone();
    push(&env.registry, "app", "1.0.0");
    push(&env.registry, "app", "1.0.1");
    env.image_repository("app", json!({})).await;
    let policies = env
        .policy("app", "app", json!({"policy": {"semver": {"range": "1.x"}}}))
        .await;
    wait(&policies, "app", "the latest", |p| latest(p).is_some()).await;
    let original = DEPLOYMENT.replace("IMAGE", &env.image("app")).replace("NS", &n);
    let fleet = Fleet::start(&n, &[("deploy/app.yaml", &original)]).await;
    // someone else's push lands while the automation's is in flight (once): the server then refuses
    // the automation's update of main, which no longer is where its clone started
    let hook = fleet.repo.bare().join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\n[ -e raced ] && exit 0\ntouch raced\n\
         unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES\n\
         tree=$(git rev-parse 'refs/heads/main^{tree}')\n\
         c=$(echo 'someone else' | git -c user.name=x -c user.email=x@y commit-tree \"$tree\" -p refs/heads/main)\n\
         git update-ref refs/heads/main \"$c\"\n",
    )
    .unwrap();
    Command::new("chmod").arg("755").arg(&hook).status().unwrap();
    let automations = apply::<ImageUpdateAutomation>(
        &n,
        json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
            "metadata": {"name": "auto"}, "spec": {"interval": "1h",
            "sourceRef": {"kind": "GitRepository", "name": "fleet"},
            "git": {"commit": {"author": {"email": "flux@example.com"}}, "push": {"branch": "main"}},
            "update": {"path": "./deploy"}}}),
    )
    .await;
    let auto = wait(&automations, "auto", "a push", |a| {
        a.status.as_ref().is_some_and(|s| s.last_push_commit.is_some())
    })
    .await;
    assert!(fleet.repo.bare().join("raced").exists(), "the race happened");
    let pushed = auto.status.unwrap().last_push_commit.unwrap();
    assert_eq!(git(fleet.repo.bare(), &["rev-parse", "main"]).trim(), pushed);
    assert_eq!(
        git(fleet.repo.bare(), &["log", "--format=%s", "main"])
            .lines()
            .collect::<Vec<_>>(),
        ["Update from image update automation", "someone else", "first"],
        "the update went on top of the other push, nothing lost"
    );
    assert_eq!(
        git(fleet.repo.bare(), &["show", "main:deploy/app.yaml"]),
        original.replace(":1.0.0 #", ":1.0.1 #")
    );
}

#[tokio::test]
async fn commits_are_signed_with_the_secrets_openpgp_key() {
    let env = Env::start("image-sign").await;
    let n = env.n.clone();
    push(&env.registry, "app", "1.0.0");
    push(&env.registry, "app", "1.0.1");
    env.image_repository("app", json!({})).await;
    let policies = env
        .policy("app", "app", json!({"policy": {"semver": {"range": "1.x"}}}))
        .await;
    wait(&policies, "app", "the latest", |p| latest(p).is_some()).await;
    let original = DEPLOYMENT.replace("IMAGE", &env.image("app")).replace("NS", &n);
    let fleet = Fleet::start(&n, &[("deploy/app.yaml", &original)]).await;
    let key = driftless_testkit::git::GpgKey::generate("Fluxbot <flux@example.com>");
    let exported = Command::new(driftless_testkit::tool("gpg"))
        .env("GNUPGHOME", key.home.path())
        .args(["--batch", "--armor", "--export-secret-keys", &key.fingerprint])
        .output()
        .unwrap();
    assert!(exported.status.success());
    let secret = String::from_utf8(exported.stdout).unwrap();
    apply::<Secret>(
        &n,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "signing"}, "stringData": {"git.asc": "not a key"}}),
    )
    .await;
    let automation = |key: &str| {
        json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
            "metadata": {"name": "auto"}, "spec": {"interval": "1h",
            "sourceRef": {"kind": "GitRepository", "name": "fleet"},
            "git": {"commit": {"author": {"name": "Fluxbot", "email": "flux@example.com"},
                               "signingKey": {"secretRef": {"name": key}}}},
            "update": {"path": "./deploy"}}})
    };
    // a Secret without a usable key: nothing is pushed unsigned
    let automations = apply::<ImageUpdateAutomation>(&n, automation("signing")).await;
    let a = wait(&automations, "auto", "a refused key", |a| {
        stalled(a.status.as_ref().map(|s| &s.conditions))
    })
    .await;
    let (_, reason, message) = ready(a.status.as_ref().map(|s| &s.conditions));
    assert_eq!(reason, "InvalidSourceConfiguration");
    assert!(
        message.contains("'git.asc' is not an ASCII-armored OpenPGP secret key"),
        "{message}"
    );
    assert_eq!(git(fleet.repo.bare(), &["rev-parse", "main"]).trim(), fleet.head);

    apply::<Secret>(
        &n,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "signing-key"}, "stringData": {"git.asc": secret}}),
    )
    .await;
    apply::<ImageUpdateAutomation>(&n, automation("signing-key")).await;
    let a = wait(&automations, "auto", "a signed push", |a| {
        a.status.as_ref().is_some_and(|s| s.last_push_commit.is_some())
    })
    .await;
    let pushed = a.status.unwrap().last_push_commit.unwrap();
    // git itself, with gpg, checks the signature
    let verified = Command::new("git")
        .env("GNUPGHOME", key.home.path())
        .arg("--git-dir")
        .arg(fleet.repo.bare())
        .args(["verify-commit", "--raw", &pushed])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&verified.stderr);
    assert!(verified.status.success(), "git verify-commit: {out}");
    assert!(
        out.contains(&format!("VALIDSIG {}", key.fingerprint)) || out.contains("GOODSIG"),
        "{out}"
    );
}

#[tokio::test]
async fn a_tag_semver_range_or_commit_is_checked_out_and_pushed_to_the_push_branch() {
    let env = Env::start("image-checkout").await;
    let n = env.n.clone();
    push(&env.registry, "app", "1.0.0");
    push(&env.registry, "app", "1.0.1");
    env.image_repository("app", json!({})).await;
    let policies = env
        .policy("app", "app", json!({"policy": {"semver": {"range": "1.x"}}}))
        .await;
    wait(&policies, "app", "the latest", |p| latest(p).is_some()).await;
    let original = DEPLOYMENT.replace("IMAGE", &env.image("app")).replace("NS", &n);
    let fleet = Fleet::start(&n, &[("deploy/app.yaml", &original)]).await;
    let first = fleet.head.clone();
    fleet.repo.tag("v1.0.0");
    let second = fleet.repo.commit(&[("notes.txt", "second")], "second");
    fleet.repo.tag("v1.1.0");
    fleet.repo.commit(&[("notes.txt", "third")], "third");
    let automation = |name: &str, checkout: Value, push: Value| {
        let mut git =
            json!({"commit": {"author": {"email": "flux@example.com"}}, "checkout": {"ref": checkout}});
        if !push.is_null() {
            git["push"] = push;
        }
        json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
            "metadata": {"name": name}, "spec": {"interval": "1h",
            "sourceRef": {"kind": "GitRepository", "name": "fleet"},
            "git": git, "update": {"path": "./deploy"}}})
    };

    // the highest tag of a semver range; the push branch starts there
    let automations = apply::<ImageUpdateAutomation>(
        &n,
        automation("semver", json!({"semver": "1.0.x"}), json!({"branch": "auto"})),
    )
    .await;
    let auto = wait(&automations, "semver", "a push", |a| {
        a.status.as_ref().is_some_and(|s| s.last_push_commit.is_some())
    })
    .await;
    let status = auto.status.unwrap();
    assert_eq!(
        status.observed_source_revision.as_deref(),
        Some(format!("v1.0.0@sha1:{first}").as_str())
    );
    assert_eq!(
        git(fleet.repo.bare(), &["log", "--format=%s", "auto"])
            .lines()
            .collect::<Vec<_>>(),
        ["Update from image update automation", "first"]
    );
    assert_eq!(
        git(fleet.repo.bare(), &["show", "auto:deploy/app.yaml"]),
        original.replace(":1.0.0 #", ":1.0.1 #")
    );
    assert_eq!(
        git(fleet.repo.bare(), &["log", "--format=%s", "-1", "main"]).trim(),
        "third",
        "the checkout's branch untouched"
    );

    // a commit
    apply::<ImageUpdateAutomation>(
        &n,
        automation(
            "commit",
            json!({"commit": second}),
            json!({"branch": "auto-commit"}),
        ),
    )
    .await;
    let auto = wait(&automations, "commit", "a push", |a| {
        a.status.as_ref().is_some_and(|s| s.last_push_commit.is_some())
    })
    .await;
    assert_eq!(
        auto.status.unwrap().observed_source_revision.as_deref(),
        Some(format!("sha1:{second}").as_str())
    );
    assert_eq!(
        git(fleet.repo.bare(), &["log", "--format=%s", "auto-commit"])
            .lines()
            .collect::<Vec<_>>(),
        ["Update from image update automation", "second", "first"]
    );

    // a tag with no push branch: nowhere to push
    apply::<ImageUpdateAutomation>(&n, automation("tag", json!({"tag": "v1.1.0"}), Value::Null)).await;
    let auto = wait(&automations, "tag", "refused", |a| {
        ready(a.status.as_ref().map(|s| &s.conditions)).0 == "False"
    })
    .await;
    let (_, reason, message) = ready(auto.status.as_ref().map(|s| &s.conditions));
    assert_eq!(reason, "InvalidSourceConfiguration");
    assert!(message.contains("push spec not provided"), "{message}");
}
