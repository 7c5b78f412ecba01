//! The fault suite: the controllers, in process and impersonating their ServiceAccounts, against an API
//! server instance of their own that each case stops, crashes, compacts or slows down, and against Git
//! servers that go away. Every case asserts that the controllers converge within a bound, that nothing
//! is lost or wrongly pruned, and what a user saw meanwhile; each prints how long recovery took
//! (`docs/reliability.md` lists the figures).

mod apiproxy;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use driftless_api::{
    kustomize::{CrossNamespaceSourceReference, Kustomization, KustomizationSpec},
    meta::RECONCILE_REQUEST_ANNOTATION,
    notification::{Receiver, ReceiverResource, ReceiverSpec},
    source::GitRepository,
};
use driftless_e2e::Fleet;
use driftless_runtime::conditions;
use driftless_testkit::cluster::{TestCluster, start_instance};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Resource,
    api::{Patch, PatchParams},
};
use serde::de::DeserializeOwned;
use serde_json::json;

/// How long a controller may take to converge again once the fault is over.
const RECOVERY_BOUND: Duration = Duration::from_secs(60);

/// One case's own API server instance (stopped with its data at the end) and namespace.
struct Instance {
    tc: TestCluster,
    ns: String,
    _ns: driftless_testkit::cluster::TestNamespace,
}

impl Instance {
    async fn start(case: &str) -> Self {
        if std::env::var_os("RUST_LOG").is_some() {
            use clap::Parser;
            #[derive(Parser)]
            struct Log {
                #[command(flatten)]
                log: driftless_runtime::flags::LogArgs,
            }
            driftless_runtime::telemetry::init(&Log::parse_from(["t", "--log-encoding=console"]).log);
        }
        let tc = start_instance(&format!("fault-{case}"));
        tc.install_crds().await;
        tc.apply_kustomization("config/default");
        let guard = tc.namespace(case).await;
        Self {
            tc,
            ns: guard.name().to_string(),
            _ns: guard,
        }
    }

    async fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.tc.client().await, &self.ns)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if std::env::var_os("DRIFTLESS_KEEP_FAULT_CLUSTERS").is_none() {
            // NB: killed, not stopped gracefully: the controllers' aborted tasks still hold their watches
            // open until the test's runtime polls them again, and a graceful API server would wait a
            // minute for them
            self.tc.kill_apiserver("KILL");
            self.tc.stop();
        }
    }
}

/// A free loopback address for a controller's health server.
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `GET http://addr/path`'s status code, or 0 when nothing answers.
async fn probe(addr: SocketAddr, path: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Polls `f` until it gives a value, at most `bound`; panics naming `what`.
async fn within<T>(bound: Duration, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    let deadline = start + bound;
    loop {
        if let Some(v) = f().await {
            eprintln!("fault suite: {what} after {:.1?}", start.elapsed());
            return v;
        }
        assert!(Instant::now() < deadline, "not within {bound:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The object `name` once `pred` holds for it (errors while the server is away count as not yet).
async fn until<K>(api: &Api<K>, name: &str, bound: Duration, what: &str, pred: impl Fn(&K) -> bool) -> K
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    within(bound, what, async || api.get(name).await.ok().filter(|o| pred(o))).await
}

/// Asks for a reconcile of `name` with the token `token`.
async fn request<K>(api: &Api<K>, name: &str, token: &str)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let req = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: token}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&req))
        .await
        .unwrap();
}

/// The Kustomization `name` of `path` in the fleet, applied into `ns`.
fn kustomization(ns: &str, name: &str, path: &str) -> Kustomization {
    Kustomization::new(
        name,
        KustomizationSpec {
            interval: "1h".into(),
            target_namespace: Some(ns.into()),
            path: Some(path.into()),
            prune: true,
            source_ref: CrossNamespaceSourceReference {
                kind: "GitRepository".into(),
                name: "fleet".into(),
                ..Default::default()
            },
            ..Default::default()
        },
    )
}

fn applied(k: &Kustomization, revision: &str) -> bool {
    k.status.as_ref().is_some_and(|s| {
        conditions::is_ready(&s.conditions, k.metadata.generation)
            && s.last_applied_revision
                .as_deref()
                .is_some_and(|r| r.ends_with(revision))
    })
}

fn handled(k: &Kustomization, token: &str) -> bool {
    k.status
        .as_ref()
        .and_then(|s| s.reconcile_request.last_handled_reconcile_at.as_deref())
        == Some(token)
}

fn configmaps(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {prefix}-{i}\ndata:\n  i: \"{i}\"\n")
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Every controller running against `inst`: source, kustomize and notification, each with its health
/// server on a known address.
struct Controllers {
    health: [SocketAddr; 3],
    receivers: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _storage: tempfile::TempDir,
}

impl Drop for Controllers {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

async fn controllers(inst: &Instance) -> Controllers {
    let tc = &inst.tc;
    let config = async |c: &str| tc.config_as(&driftless_e2e::service_account(c)).await;
    controllers_with(
        inst,
        [
            config("source-controller").await,
            config("kustomize-controller").await,
            config("notification-controller").await,
        ],
    )
    .await
}

/// [`controllers`] with their client configurations: source, kustomize, notification.
async fn controllers_with(
    inst: &Instance,
    [source, kustomize, notification]: [kube::Config; 3],
) -> Controllers {
    let storage = tempfile::tempdir().unwrap();
    let health = [free_addr(), free_addr(), free_addr()];
    let flag = |a: SocketAddr| vec![format!("--health-addr={a}")];
    let (_, source) = driftless_e2e::source_with(source, &inst.ns, storage.path(), &flag(health[0])).await;
    let kustomize = driftless_e2e::kustomize_with(kustomize, &inst.ns, &flag(health[1]));
    let (bound, notification) =
        driftless_e2e::notification_with(notification, &inst.ns, &flag(health[2])).await;
    Controllers {
        health,
        receivers: bound.receivers,
        tasks: vec![source, kustomize, notification],
        _storage: storage,
    }
}

/// A generic Receiver `hook` for the GitRepository `fleet`; its webhook URL.
async fn receiver(inst: &Instance, c: &Controllers) -> String {
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hook-token"},
        "stringData": {"token": "t0ken"}});
    inst.api::<k8s_openapi::api::core::v1::Secret>()
        .await
        .patch("hook-token", &PatchParams::apply("t"), &Patch::Apply(&secret))
        .await
        .unwrap();
    let r = Receiver::new(
        "hook",
        ReceiverSpec {
            type_: "generic".into(),
            secret_ref: Some(driftless_api::meta::LocalObjectReference {
                name: "hook-token".into(),
            }),
            resources: vec![ReceiverResource {
                kind: "GitRepository".into(),
                name: "fleet".into(),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let receivers: Api<Receiver> = inst.api().await;
    receivers
        .patch("hook", &PatchParams::apply("t"), &Patch::Apply(&r))
        .await
        .unwrap();
    let path = within(Duration::from_secs(30), "the receiver's path", async || {
        receivers.get("hook").await.ok()?.status?.webhook_path
    })
    .await;
    format!("http://{}{path}", c.receivers)
}

/// What a user checks after a fault: every controller handles a request, a new object gets a status, a
/// webhook triggers a fetch, and the health endpoints say ok. Returns how long that took.
async fn converges(inst: &Instance, c: &Controllers, fleet: &Fleet, hook: &str, token: &str) -> Duration {
    let t0 = Instant::now();
    let ks: Api<Kustomization> = inst.api().await;
    let gits: Api<GitRepository> = inst.api().await;
    // the first write after the restart may itself meet the server still warming up
    within(RECOVERY_BOUND, "a request written", async || {
        let req = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: token}}});
        ks.patch("apps", &PatchParams::default(), &Patch::Merge(&req))
            .await
            .ok()
    })
    .await;
    let name = format!("new-{token}");
    ks.patch(
        &name,
        &PatchParams::apply("t"),
        &Patch::Apply(kustomization(&inst.ns, &name, "./extra")),
    )
    .await
    .unwrap();
    until(
        &ks,
        "apps",
        RECOVERY_BOUND,
        "kustomize-controller handles a request",
        |k| handled(k, token),
    )
    .await;
    until(
        &ks,
        &name,
        RECOVERY_BOUND,
        "a new Kustomization is applied",
        |k| applied(k, ""),
    )
    .await;
    // a push announced by the webhook: source-controller fetches, kustomize-controller applies
    let pushed = fleet
        .repo
        .commit(&[(&format!("apps/{token}.yaml"), &configmaps(token, 1))], token);
    within(RECOVERY_BOUND, "the receiver accepts the webhook", async || {
        let r = reqwest::Client::new()
            .post(hook)
            .json(&json!({}))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    until(
        &gits,
        "fleet",
        RECOVERY_BOUND,
        "source-controller fetches the push",
        |g| {
            g.status
                .as_ref()
                .and_then(|s| s.artifact.as_ref())
                .is_some_and(|a| a.revision.ends_with(&pushed))
        },
    )
    .await;
    until(&ks, "apps", RECOVERY_BOUND, "the push is applied", |k| {
        applied(k, &pushed)
    })
    .await;
    for addr in c.health {
        for path in ["/healthz", "/readyz"] {
            within(RECOVERY_BOUND, &format!("{path} of {addr} ok"), async || {
                (probe(addr, path).await == 200).then_some(())
            })
            .await;
        }
    }
    t0.elapsed()
}

/// The fleet (`apps/` with 40 ConfigMaps, `extra/` with one) served and a Kustomization `apps` applied.
async fn fleet(inst: &Instance) -> Fleet {
    let fleet = Fleet::start_on(
        &inst.tc,
        &inst.ns,
        &[
            ("apps/cms.yaml", &configmaps("cm", 40)),
            ("extra/one.yaml", &configmaps("extra", 1)),
        ],
    )
    .await;
    let ks: Api<Kustomization> = inst.api().await;
    ks.patch(
        "apps",
        &PatchParams::apply("t"),
        &Patch::Apply(kustomization(&inst.ns, "apps", "./apps")),
    )
    .await
    .unwrap();
    until(&ks, "apps", RECOVERY_BOUND, "the first apply", |k| {
        applied(k, &fleet.head)
    })
    .await;
    fleet
}

/// Every object of `apps` is still there (nothing lost, nothing pruned by mistake).
async fn nothing_lost(inst: &Instance) {
    let cms: Api<ConfigMap> = inst.api().await;
    for i in 0..40 {
        assert!(
            cms.get_opt(&format!("cm-{i}")).await.unwrap().is_some(),
            "cm-{i} was lost"
        );
    }
}

/// Pushes a revision of 200 more ConfigMaps, announces it and returns once `apps` is applying it; its
/// commit.
async fn start_big_revision(inst: &Instance, fleet: &Fleet) -> String {
    let big = fleet
        .repo
        .commit(&[("apps/big.yaml", &configmaps("big", 200))], "big");
    request(&inst.api::<GitRepository>().await, "fleet", "big").await;
    let ks: Api<Kustomization> = inst.api().await;
    until(&ks, "apps", RECOVERY_BOUND, "the big revision started", |k| {
        k.status
            .as_ref()
            .and_then(|s| s.last_attempted_revision.as_deref())
            .is_some_and(|r| r.ends_with(&big))
    })
    .await;
    big
}

async fn restart_case(case: &str, signal: &str, down: Duration, mid_apply: bool) {
    let inst = Instance::start(case).await;
    let c = controllers(&inst).await;
    let fleet = fleet(&inst).await;
    let hook = receiver(&inst, &c).await;
    if mid_apply {
        // a new revision of 200 objects is being applied when the server goes
        start_big_revision(&inst, &fleet).await;
    } else {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    inst.tc.kill_apiserver(signal);
    tokio::time::sleep(down).await;
    inst.tc.restart_apiserver();
    let took = converges(&inst, &c, &fleet, &hook, "after").await;
    nothing_lost(&inst).await;
    println!("FIGURE {case}: API server {signal} for {down:?}: converged {took:.1?} after it was back");
}

#[tokio::test]
async fn every_controller_recovers_from_a_graceful_api_server_restart_while_idle() {
    restart_case("idle-term", "TERM", Duration::from_secs(3), false).await;
}

#[tokio::test]
async fn every_controller_recovers_from_an_api_server_crash_mid_apply() {
    restart_case("apply-kill", "KILL", Duration::from_secs(5), true).await;
}

#[tokio::test]
async fn every_controller_recovers_from_a_long_outage() {
    // long enough for every watch's backoff to reach its ceiling
    restart_case("long-kill", "KILL", Duration::from_secs(40), false).await;
}

#[tokio::test]
async fn a_compacted_history_makes_watches_relist_and_nothing_is_missed() {
    let inst = Instance::start("compact").await;
    let c = controllers(&inst).await;
    let fleet = fleet(&inst).await;
    let hook = receiver(&inst, &c).await;
    // history the watches have not seen yet, then compacted away: resuming from their
    // resourceVersion is "too old" and they must list again
    let cms: Api<ConfigMap> = inst.api().await;
    for i in 0..20 {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("noise-{i}")}});
        cms.patch(
            &format!("noise-{i}"),
            &PatchParams::apply("t"),
            &Patch::Apply(&cm),
        )
        .await
        .unwrap();
    }
    inst.tc.kill_apiserver("TERM");
    inst.tc.compact_etcd();
    inst.tc.restart_apiserver();
    let took = converges(&inst, &c, &fleet, &hook, "compacted").await;
    nothing_lost(&inst).await;
    println!("FIGURE compact: etcd compacted under the watches: converged {took:.1?}");
}

#[tokio::test]
async fn health_endpoints_fail_while_the_api_server_is_away_and_recover() {
    let inst = Instance::start("health").await;
    let c = controllers(&inst).await;
    let fleet = fleet(&inst).await;
    let hook = receiver(&inst, &c).await;
    inst.tc.kill_apiserver("KILL");
    let t0 = Instant::now();
    for addr in c.health {
        within(
            Duration::from_secs(90),
            &format!("/readyz of {addr} fails"),
            async || (probe(addr, "/readyz").await == 503).then_some(()),
        )
        .await;
        // alive: a restart would not bring the API server back
        assert_eq!(probe(addr, "/healthz").await, 200);
    }
    println!(
        "FIGURE health: /readyz failed {:.1?} after the API server went",
        t0.elapsed()
    );
    inst.tc.restart_apiserver();
    let took = converges(&inst, &c, &fleet, &hook, "healthy").await;
    println!("FIGURE health: ready again and converged {took:.1?} after it was back");
}

#[tokio::test]
async fn a_controller_killed_mid_apply_converges_when_started_again() {
    let inst = Instance::start("ctl-kill").await;
    let mut c = controllers(&inst).await;
    let fleet = fleet(&inst).await;
    let hook = receiver(&inst, &c).await;
    let big = start_big_revision(&inst, &fleet).await;
    let ks: Api<Kustomization> = inst.api().await;
    // killed: its futures dropped mid-request, nothing flushed (in process, its health server stays:
    // the new one listens elsewhere)
    c.tasks[1].abort();
    let health = free_addr();
    c.health[1] = health;
    c.tasks[1] = driftless_e2e::kustomize_on(&inst.tc, &inst.ns, &[format!("--health-addr={health}")]).await;
    let t0 = Instant::now();
    until(&ks, "apps", RECOVERY_BOUND, "the big revision applied", |k| {
        applied(k, &big)
    })
    .await;
    println!(
        "FIGURE ctl-kill: restarted kustomize-controller applied the revision in {:.1?}",
        t0.elapsed()
    );
    let cms: Api<ConfigMap> = inst.api().await;
    assert!(cms.get_opt("big-199").await.unwrap().is_some());
    converges(&inst, &c, &fleet, &hook, "again").await;
    nothing_lost(&inst).await;
}

#[tokio::test]
async fn the_git_server_down_keeps_the_last_artifact_and_its_return_is_picked_up_by_itself() {
    let inst = Instance::start("git-down").await;
    let _c = controllers(&inst).await;
    let mut fleet = fleet(&inst).await;
    let gits: Api<GitRepository> = inst.api().await;
    let ks: Api<Kustomization> = inst.api().await;
    fleet.server.stop();
    let next = fleet.repo.commit(
        &[("apps/next.yaml", &configmaps("next", 1))],
        "while the server is down",
    );
    request(&gits, "fleet", "down").await;
    // what the user sees meanwhile: Ready=False naming the failure, the last artifact still served
    let failed = until(&gits, "fleet", RECOVERY_BOUND, "the fetch failure shown", |g| {
        g.status.as_ref().is_some_and(|s| {
            conditions::get(&s.conditions, "Ready").is_some_and(|c| c.status == "False")
                && s.reconcile_request.last_handled_reconcile_at.as_deref() == Some("down")
        })
    })
    .await;
    let status = failed.status.unwrap();
    let ready = conditions::get(&status.conditions, "Ready").unwrap();
    assert_eq!(ready.reason, "GitOperationFailed", "{}", ready.message);
    assert!(
        status
            .artifact
            .as_ref()
            .is_some_and(|a| a.revision.ends_with(&fleet.head)),
        "the last good artifact is kept"
    );
    let k = ks.get("apps").await.unwrap();
    assert!(
        applied(&k, &fleet.head),
        "the Kustomization stays at the last revision"
    );
    nothing_lost(&inst).await;
    // back: picked up by the retry alone, no request
    fleet.server.resume();
    let t0 = Instant::now();
    until(
        &ks,
        "apps",
        RECOVERY_BOUND,
        "the new revision applied after the server came back",
        |k| applied(k, &next),
    )
    .await;
    println!(
        "FIGURE git-down: new revision applied {:.1?} after the Git server came back",
        t0.elapsed()
    );
    nothing_lost(&inst).await;
}

/// Leader election of the test: a Lease of 4 s, renewed every second.
const LEASE: Duration = Duration::from_secs(4);

fn elected(health: SocketAddr) -> Vec<String> {
    vec![
        format!("--health-addr={health}"),
        "--enable-leader-election=true".into(),
        format!("--leader-election-lease-duration={}s", LEASE.as_secs()),
        "--leader-election-renew-deadline=3s".into(),
        "--leader-election-retry-period=1s".into(),
    ]
}

/// How many reconciles of Kustomizations the process whose `/metrics` is at `addr` has finished.
async fn reconciles(addr: SocketAddr) -> u64 {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("gotk_reconcile_duration_seconds_count{") && l.contains("kind=\"Kustomization\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn a_standby_takes_over_when_the_leader_is_killed_and_applies_nothing_twice() {
    let inst = Instance::start("leader").await;
    let storage = tempfile::tempdir().unwrap();
    let (_, source) = driftless_e2e::source_on(&inst.tc, &inst.ns, storage.path(), &[]).await;
    let _source = AbortOnDrop(source);
    // the leader first, so which of the two leads is known
    let metrics = [free_addr(), free_addr()];
    let start = async |i: usize| {
        let mut flags = elected(free_addr());
        flags.push(format!("--metrics-addr={}", metrics[i]));
        AbortOnDrop(driftless_e2e::kustomize_on(&inst.tc, &inst.ns, &flags).await)
    };
    let leader = start(0).await;
    let fleet = fleet(&inst).await;
    let standby = start(1).await;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = inst.api().await;
    let holder = |l: &k8s_openapi::api::coordination::v1::Lease| {
        l.spec.as_ref().and_then(|s| s.holder_identity.clone())
    };
    let lease = leases.get("kustomize-controller-leader-election").await.unwrap();
    let first = holder(&lease).expect("the leader holds the Lease");
    // the standby does nothing while the leader lives
    let ks: Api<Kustomization> = inst.api().await;
    request(&ks, "apps", "while-led").await;
    until(&ks, "apps", RECOVERY_BOUND, "the leader handles a request", |k| {
        handled(k, "while-led")
    })
    .await;
    tokio::time::sleep(LEASE).await;
    assert!(reconciles(metrics[0]).await >= 2, "the leader reconciles");
    assert_eq!(reconciles(metrics[1]).await, 0, "a standby reconciles nothing");
    let cms: Api<ConfigMap> = inst.api().await;
    let versions = |cms: Vec<ConfigMap>| {
        let mut v: Vec<_> = cms
            .into_iter()
            .map(|c| (c.metadata.name.unwrap(), c.metadata.resource_version.unwrap()))
            .collect();
        v.sort();
        v
    };
    let before = versions(cms.list(&Default::default()).await.unwrap().items);
    // killed: its run and its election cut off mid-flight, the Lease not released
    drop(leader);
    let t0 = Instant::now();
    let next = fleet
        .repo
        .commit(&[("apps/next.yaml", &configmaps("next", 1))], "next");
    request(&inst.api::<GitRepository>().await, "fleet", "next").await;
    until(
        &ks,
        "apps",
        RECOVERY_BOUND,
        "the standby applies the next revision",
        |k| applied(k, &next),
    )
    .await;
    let took = t0.elapsed();
    let lease = leases.get("kustomize-controller-leader-election").await.unwrap();
    assert_ne!(holder(&lease).unwrap(), first, "the standby holds the Lease");
    assert!(
        took < LEASE + Duration::from_secs(10),
        "took over within the lease time and a reconcile: {took:?}"
    );
    assert!(reconciles(metrics[1]).await >= 1);
    // server-side apply of an unchanged object writes nothing: every object it had applied keeps its
    // resourceVersion, and the new one is there
    let mut after = versions(cms.list(&Default::default()).await.unwrap().items);
    after.retain(|(name, _)| name != "next-0");
    assert_eq!(before, after, "nothing was applied twice");
    assert!(cms.get_opt("next-0").await.unwrap().is_some());
    nothing_lost(&inst).await;
    drop(standby);
    println!(
        "FIGURE leader: the standby applied a new revision {took:.1?} after the leader was killed (Lease {LEASE:?})"
    );
}

/// A task aborted when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The controllers reaching the API server through an [`apiproxy::ApiProxy`].
async fn behind_proxy(inst: &Instance) -> (apiproxy::ApiProxy, Controllers) {
    let proxy = apiproxy::ApiProxy::start(inst.tc.client().await).await;
    let config = |c: &str| proxy.config_as(&driftless_e2e::service_account(c));
    let c = controllers_with(
        inst,
        [
            config("source-controller"),
            config("kustomize-controller"),
            config("notification-controller"),
        ],
    )
    .await;
    (proxy, c)
}

/// While the proxy answers `code` for `bound`: what a user sees (a request not handled, `/readyz`
/// failing once the watches have failed a while, the last state kept); then it passes again and
/// everything converges.
async fn failing_for_a_while(
    inst: &Instance,
    proxy: &apiproxy::ApiProxy,
    c: &Controllers,
    fleet: &Fleet,
    hook: &str,
    mode: apiproxy::Mode,
    token: &str,
) {
    let ks: Api<Kustomization> = inst.api().await;
    proxy.set(mode);
    let t0 = Instant::now();
    request(&ks, "apps", &format!("{token}-meanwhile")).await;
    for addr in c.health {
        within(RECOVERY_BOUND, &format!("/readyz of {addr} fails"), async || {
            (probe(addr, "/readyz").await == 503).then_some(())
        })
        .await;
        assert_eq!(
            probe(addr, "/healthz").await,
            200,
            "alive: a restart would not help"
        );
    }
    let k = ks.get("apps").await.unwrap();
    assert!(
        !handled(&k, &format!("{token}-meanwhile")),
        "nothing gets through"
    );
    assert!(applied(&k, ""), "the last state is kept: {:?}", k.status);
    nothing_lost(inst).await;
    let failed_for = t0.elapsed();
    proxy.set(apiproxy::Mode::Pass);
    let took = converges(inst, c, fleet, hook, token).await;
    nothing_lost(inst).await;
    println!(
        "FIGURE {token}: API server answering {mode:?} for {failed_for:.1?}: converged {took:.1?} after it answered again"
    );
}

#[tokio::test]
async fn every_controller_recovers_from_an_api_server_answering_500_then_429_for_a_while() {
    let inst = Instance::start("api-errors").await;
    let (proxy, c) = behind_proxy(&inst).await;
    let fleet = fleet(&inst).await;
    let hook = receiver(&inst, &c).await;
    for (mode, token) in [
        (apiproxy::Mode::Fail(500), "after-500"),
        (apiproxy::Mode::Fail(429), "after-429"),
    ] {
        failing_for_a_while(&inst, &proxy, &c, &fleet, &hook, mode, token).await;
    }
}

#[tokio::test]
async fn a_slow_api_server_slows_the_controllers_down_but_never_wedges_them() {
    let inst = Instance::start("api-slow").await;
    let (proxy, c) = behind_proxy(&inst).await;
    let fleet = fleet(&inst).await;
    let hook = receiver(&inst, &c).await;
    let ks: Api<Kustomization> = inst.api().await;
    // slow but within the request timeout: the work still gets done
    proxy.set(apiproxy::Mode::Slow(Duration::from_secs(2)));
    let t0 = Instant::now();
    request(&ks, "apps", "slow").await;
    until(
        &ks,
        "apps",
        RECOVERY_BOUND * 2,
        "a request handled while every answer takes 2 s",
        |k| handled(k, "slow"),
    )
    .await;
    println!(
        "FIGURE api-slow: a request handled in {:.1?} while every API answer took 2 s",
        t0.elapsed()
    );
    // slower than the request timeout: requests in flight time out instead of hanging, and the
    // controllers converge once the server answers in time again
    proxy.set(apiproxy::Mode::Slow(
        driftless_runtime::client::REQUEST_TIMEOUT + Duration::from_secs(5),
    ));
    request(&ks, "apps", "stuck").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.set(apiproxy::Mode::Pass);
    let took = converges(&inst, &c, &fleet, &hook, "fast-again").await;
    nothing_lost(&inst).await;
    for addr in c.health {
        assert_eq!(probe(addr, "/healthz").await, 200);
    }
    println!("FIGURE api-slow: converged {took:.1?} after the API server answered in time again");
}

#[tokio::test]
async fn status_writes_refused_for_a_while_are_written_once_the_server_takes_them() {
    let inst = Instance::start("status-writes").await;
    let (proxy, c) = behind_proxy(&inst).await;
    let fleet = fleet(&inst).await;
    let hook = receiver(&inst, &c).await;
    let gits: Api<GitRepository> = inst.api().await;
    let ks: Api<Kustomization> = inst.api().await;
    proxy.set(apiproxy::Mode::FailStatusWrites(500));
    let next = fleet.repo.commit(
        &[("apps/next.yaml", &configmaps("next", 1))],
        "while status writes fail",
    );
    request(&gits, "fleet", "unwritten").await;
    request(&ks, "apps", "unwritten").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    // what the user sees meanwhile: the last status written, nothing half-done in it, nothing lost
    let git = gits.get("fleet").await.unwrap();
    let artifact = git.status.as_ref().and_then(|s| s.artifact.as_ref()).unwrap();
    assert!(artifact.revision.ends_with(&fleet.head), "{artifact:?}");
    assert!(applied(&ks.get("apps").await.unwrap(), &fleet.head));
    nothing_lost(&inst).await;
    for addr in c.health {
        assert_eq!(probe(addr, "/healthz").await, 200);
    }
    proxy.set(apiproxy::Mode::Pass);
    let t0 = Instant::now();
    until(
        &gits,
        "fleet",
        RECOVERY_BOUND,
        "the request's status written",
        |g| {
            g.status.as_ref().is_some_and(|s| {
                s.reconcile_request.last_handled_reconcile_at.as_deref() == Some("unwritten")
            })
        },
    )
    .await;
    until(
        &ks,
        "apps",
        RECOVERY_BOUND,
        "the revision fetched meanwhile applied",
        |k| applied(k, &next) && handled(k, "unwritten"),
    )
    .await;
    let took = t0.elapsed();
    converges(&inst, &c, &fleet, &hook, "written").await;
    nothing_lost(&inst).await;
    println!(
        "FIGURE status-writes: status writes refused (500) for 5 s: written and applied {took:.1?} after"
    );
}

#[tokio::test]
async fn the_registry_down_keeps_the_last_artifact_and_its_return_is_picked_up_by_itself() {
    use driftless_api::source::{OCIRepository, OCIRepositorySpec};
    let inst = Instance::start("registry-down").await;
    let _c = controllers(&inst).await;
    let mut registry = driftless_testkit::registry::Registry::start();
    let first = registry.push_flux("fleet", "latest", &[("apps/cm.yaml", &configmaps("oci", 2))], &[]);
    let ocis: Api<OCIRepository> = inst.api().await;
    let oci = OCIRepository::new(
        "fleet",
        OCIRepositorySpec {
            url: registry.url("fleet"),
            interval: "1h".into(),
            ..Default::default()
        },
    );
    ocis.patch("fleet", &PatchParams::apply("t").force(), &Patch::Apply(&oci))
        .await
        .unwrap();
    let ks: Api<Kustomization> = inst.api().await;
    let mut k = kustomization(&inst.ns, "apps", "./apps");
    k.spec.source_ref.kind = "OCIRepository".into();
    ks.patch("apps", &PatchParams::apply("t").force(), &Patch::Apply(&k))
        .await
        .unwrap();
    until(&ks, "apps", RECOVERY_BOUND, "the first push applied", |k| {
        applied(k, &first)
    })
    .await;

    registry.stop();
    request(&ocis, "fleet", "down").await;
    let failed = until(&ocis, "fleet", RECOVERY_BOUND, "the pull failure shown", |o| {
        o.status.as_ref().is_some_and(|s| {
            conditions::get(&s.conditions, "Ready").is_some_and(|c| c.status == "False")
                && s.reconcile_request.last_handled_reconcile_at.as_deref() == Some("down")
        })
    })
    .await;
    let status = failed.status.unwrap();
    let ready = conditions::get(&status.conditions, "Ready").unwrap();
    assert_eq!(ready.reason, "OCIArtifactPullFailed", "{}", ready.message);
    assert!(
        status
            .artifact
            .as_ref()
            .is_some_and(|a| a.revision.ends_with(&first)),
        "the last good artifact is kept"
    );
    assert!(
        applied(&ks.get("apps").await.unwrap(), &first),
        "the Kustomization stays"
    );
    oci_objects_kept(&inst, 2).await;

    // back with a new push: picked up by the retry alone, no request
    registry.resume();
    let next = registry.push_flux("fleet", "latest", &[("apps/cm.yaml", &configmaps("oci", 3))], &[]);
    let t0 = Instant::now();
    until(
        &ks,
        "apps",
        RECOVERY_BOUND,
        "the new push applied after the registry came back",
        |k| applied(k, &next),
    )
    .await;
    println!(
        "FIGURE registry-down: new push applied {:.1?} after the registry came back",
        t0.elapsed()
    );
    oci_objects_kept(&inst, 3).await;
}

/// The ConfigMaps `oci-0`… the pushed artifacts hold are all there.
async fn oci_objects_kept(inst: &Instance, n: usize) {
    let cms: Api<ConfigMap> = inst.api().await;
    for i in 0..n {
        assert!(
            cms.get_opt(&format!("oci-{i}")).await.unwrap().is_some(),
            "oci-{i} was lost"
        );
    }
}

#[tokio::test]
async fn the_chart_repository_down_keeps_the_last_index_and_chart_and_its_return_is_picked_up_by_itself() {
    use driftless_api::source::{
        HelmChart, HelmChartSpec, HelmRepository, HelmRepositorySpec, LocalHelmChartSourceReference,
    };
    let inst = Instance::start("charts-down").await;
    let _c = controllers(&inst).await;
    let mut charts = driftless_testkit::helm::ChartRepo::start(None);
    charts.add_chart("podinfo", "6.5.0", &[]);
    let repos: Api<HelmRepository> = inst.api().await;
    let repo = HelmRepository::new(
        "charts",
        HelmRepositorySpec {
            url: charts.url(),
            interval: Some("1h".into()),
            ..Default::default()
        },
    );
    repos
        .patch("charts", &PatchParams::apply("t").force(), &Patch::Apply(&repo))
        .await
        .unwrap();
    let helmcharts: Api<HelmChart> = inst.api().await;
    let chart = HelmChart::new(
        "podinfo",
        HelmChartSpec {
            chart: "podinfo".into(),
            source_ref: LocalHelmChartSourceReference {
                kind: "HelmRepository".into(),
                name: "charts".into(),
                ..Default::default()
            },
            interval: "1h".into(),
            ..Default::default()
        },
    );
    helmcharts
        .patch("podinfo", &PatchParams::apply("t").force(), &Patch::Apply(&chart))
        .await
        .unwrap();
    let at = |version: &'static str| {
        move |c: &HelmChart| {
            c.status
                .as_ref()
                .and_then(|s| s.artifact.as_ref())
                .is_some_and(|a| a.revision == version)
                && conditions::is_ready(&c.status.as_ref().unwrap().conditions, c.metadata.generation)
        }
    };
    until(
        &helmcharts,
        "podinfo",
        RECOVERY_BOUND,
        "the chart stored",
        at("6.5.0"),
    )
    .await;

    charts.stop();
    request(&repos, "charts", "down").await;
    let failed = until(&repos, "charts", RECOVERY_BOUND, "the index failure shown", |r| {
        r.status.as_ref().is_some_and(|s| {
            conditions::get(&s.conditions, "Ready").is_some_and(|c| c.status == "False")
                && s.reconcile_request.last_handled_reconcile_at.as_deref() == Some("down")
        })
    })
    .await;
    let status = failed.status.unwrap();
    assert_eq!(
        conditions::get(&status.conditions, "Ready").unwrap().reason,
        "Failed"
    );
    assert!(status.artifact.is_some(), "the last index is kept");
    // NB: the repository's failure reconciles the chart too; it stays Ready at its version
    until(
        &helmcharts,
        "podinfo",
        Duration::from_secs(10),
        "the chart kept",
        at("6.5.0"),
    )
    .await;

    // back with a new version: picked up by the retry alone, the chart follows
    charts.resume();
    charts.add_chart("podinfo", "6.6.0", &[]);
    let t0 = Instant::now();
    until(
        &helmcharts,
        "podinfo",
        RECOVERY_BOUND,
        "the new version stored",
        at("6.6.0"),
    )
    .await;
    println!(
        "FIGURE charts-down: new chart version stored {:.1?} after the chart repository came back",
        t0.elapsed()
    );
}
