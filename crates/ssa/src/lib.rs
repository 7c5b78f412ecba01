//! The apply engine of kustomize-controller (and, later, helm-controller), after fluxcd/pkg `ssa`:
//! every object is server-side applied with the controller's field manager after a server dry-run, so
//! unchanged objects are reported and not written; CRDs, Namespaces and ClusterRoles go first (CRDs must be
//! established before their custom resources), then `*Class` kinds, then the rest; what left the set is
//! pruned from the previous inventory. Fields set with `kubectl` are taken over and so removed when Git does
//! not have them. Per-object annotations, named after the owner's API group ([`Annotations`]; for
//! kustomize-controller `kustomize.toolkit.fluxcd.io`, for helm-controller `helm.toolkit.fluxcd.io`):
//! `<group>/ssa` (`Ignore`, `IfNotPresent`, `Merge`: keep kubectl's fields), `<group>/prune: disabled`,
//! `<group>/reconcile: disabled`, `<group>/force: enabled` (also as a label: recreate when an immutable
//! field changed; values compared case-insensitively).
#![warn(missing_docs)]

pub mod health;

use std::{collections::BTreeMap, fmt, time::Duration};

use driftless_api::kustomize::ResourceRef;
use driftless_runtime::error::is_unavailable;
use futures::{FutureExt, StreamExt, TryStreamExt, future::BoxFuture};
use kube::{
    Api, Client,
    api::{DeleteParams, DynamicObject, Patch, PatchParams},
    core::GroupVersionKind,
    discovery::{ApiCapabilities, ApiResource, Scope},
};
use serde_json::Value;
use tracing::{debug, warn};

/// The API group of Kustomizations: its annotations steer what kustomize-controller applies.
pub const KUSTOMIZE_GROUP: &str = "kustomize.toolkit.fluxcd.io";
/// The API group of HelmReleases: its annotations steer what helm-controller applies.
pub const HELM_GROUP: &str = "helm.toolkit.fluxcd.io";

/// The per-object annotations a manager honours, named after its owner's API group as Flux's `ssa`
/// package names them (`<group>/ssa`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotations {
    /// The SSA policy: `Ignore`, `IfNotPresent`, `Merge` (keep kubectl's fields).
    pub ssa: String,
    /// The prune policy: `disabled` keeps the object when it leaves the set.
    pub prune: String,
    /// The reconcile policy: `disabled` leaves a live object alone.
    pub reconcile: String,
    /// The force annotation or label: `enabled` recreates the object when an immutable field changed.
    pub force: String,
}

impl Annotations {
    /// The annotations of the owner group `group`.
    pub fn of(group: &str) -> Self {
        let key = |name: &str| format!("{group}/{name}");
        Self {
            ssa: key("ssa"),
            prune: key("prune"),
            reconcile: key("reconcile"),
            force: key("force"),
        }
    }
}

/// An apply or prune failure, naming the object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object's kind is not served by the cluster.
    #[error("{id}: no matches for kind \"{kind}\" in version \"{api_version}\"")]
    UnknownKind {
        /// The object.
        id: String,
        /// Its kind.
        kind: String,
        /// Its apiVersion.
        api_version: String,
    },
    /// The object lacks apiVersion, kind or name.
    #[error("invalid object: {0}")]
    Invalid(String),
    /// The API server refused the object (dry-run or apply).
    #[error("{id} {action} failed: {message}")]
    Api {
        /// The object.
        id: String,
        /// dry-run, apply, delete.
        action: &'static str,
        /// The server's message.
        message: String,
        /// The server did not answer or was overloaded (see [`driftless_runtime::error::is_unavailable`]).
        unavailable: bool,
    },
    /// Discovery failed.
    #[error("discovery failed: {message}")]
    Discovery {
        /// Why.
        message: String,
        /// The server did not answer or was overloaded.
        unavailable: bool,
    },
}

impl Error {
    /// Whether the API server did not answer or was overloaded: worth retrying soon, unlike a refusal.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Api {
                unavailable: true,
                ..
            } | Error::Discovery {
                unavailable: true,
                ..
            }
        )
    }
}

/// Field managers whose fields we take over, so that what they set and Git does not have is removed at the
/// next apply (unless the object is annotated `<group>/ssa: Merge`): `kubectl apply
/// --server-side`, `kubectl` edits and client-side applies, and our own pre-SSA updates.
const TAKEN_OVER: &[(&str, &str)] = &[
    ("kubectl", "Apply"),
    ("kubectl", "Update"),
    ("kubectl-client-side-apply", "Update"),
    ("kubectl-edit", "Update"),
    ("before-first-apply", "Update"),
];

/// Annotations and labels removed from live objects: kubectl's client-side apply record and the marks of
/// Flux v1 and early kustomize-controller.
const CLEANED_UP: &[(&str, &str)] = &[
    ("annotations", "kubectl.kubernetes.io/last-applied-configuration"),
    ("annotations", "kustomize.toolkit.fluxcd.io/checksum"),
    ("annotations", "fluxcd.io/sync-checksum"),
    ("labels", "fluxcd.io/sync-gc-mark"),
];

/// The object's managedFields with the entries of [`TAKEN_OVER`] managers, `overridden` ones and `ours`
/// with Update merged
/// into our Apply entry; `None` when there is nothing to take over.
fn take_over_managers(live: &Value, ours: &str, overridden: &[String]) -> Option<Value> {
    let entries = live.pointer("/metadata/managedFields")?.as_array()?;
    let taken = |e: &Value| {
        let (m, op) = (str_at(e, &["manager"]), str_at(e, &["operation"]));
        TAKEN_OVER.contains(&(m, op)) || (m == ours && op == "Update") || overridden.iter().any(|o| o == m)
    };
    if !entries.iter().any(taken) {
        return None;
    }
    let mut fields = Value::Object(Default::default());
    let mut api_version = str_at(live, &["apiVersion"]).to_string();
    let mut kept = Vec::new();
    for e in entries {
        let ours_apply = str_at(e, &["manager"]) == ours && str_at(e, &["operation"]) == "Apply";
        if taken(e) || ours_apply {
            merge_fields(&mut fields, e.get("fieldsV1").unwrap_or(&Value::Null));
            if ours_apply {
                api_version = str_at(e, &["apiVersion"]).to_string();
            }
        } else {
            kept.push(e.clone());
        }
    }
    kept.push(
        serde_json::json!({"manager": ours, "operation": "Apply", "apiVersion": api_version,
        "fieldsType": "FieldsV1", "fieldsV1": fields}),
    );
    Some(Value::Array(kept))
}

/// The union of two FieldsV1 trees.
fn merge_fields(into: &mut Value, from: &Value) {
    let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) else {
        return;
    };
    for (k, v) in from {
        merge_fields(
            into.entry(k.clone())
                .or_insert_with(|| Value::Object(Default::default())),
            v,
        );
    }
}

/// The API server refused a change to a field that cannot change after creation.
fn is_immutable(e: &kube::Error) -> bool {
    let kube::Error::Api(s) = e else { return false };
    let m = s.message.to_lowercase();
    s.code == 422 && (m.contains("immutable") || m.contains("may not change") || m.contains("cannot change"))
}

fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// What happened to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// It did not exist and was created.
    Created,
    /// It existed and was changed.
    Configured,
    /// It was already as desired: nothing was written.
    Unchanged,
    /// It was deleted (pruned).
    Deleted,
    /// An annotation told us to leave it alone.
    Skipped,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Created => "created",
            Action::Configured => "configured",
            Action::Unchanged => "unchanged",
            Action::Deleted => "deleted",
            Action::Skipped => "skipped",
        })
    }
}

/// One entry of a change set: `Deployment/default/web configured`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// `Kind/namespace/name` (or `Kind/name` when cluster-scoped).
    pub subject: String,
    /// What happened.
    pub action: Action,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.subject, self.action)
    }
}

/// The changes of one apply or prune.
#[derive(Clone, Debug, Default)]
pub struct ChangeSet {
    /// The entries, in apply order.
    pub entries: Vec<Change>,
}

impl ChangeSet {
    /// Whether anything was written or deleted.
    pub fn has_changes(&self) -> bool {
        self.entries
            .iter()
            .any(|c| matches!(c.action, Action::Created | Action::Configured | Action::Deleted))
    }

    /// Flux's event message: one changed object per line.
    pub fn summary(&self) -> String {
        self.entries
            .iter()
            .filter(|c| matches!(c.action, Action::Created | Action::Configured | Action::Deleted))
            .map(Change::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn str_at<'a>(o: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(o, |v, k| v.get(*k))
        .and_then(|v| v.as_str())
        .unwrap_or("")
}

/// Whether `o` carries every `owner` label with its value.
fn owned(o: &Value, owner: &BTreeMap<String, String>) -> bool {
    let labels = o.pointer("/metadata/labels");
    owner
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v))
}

fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.get("metadata")?.get("annotations")?.get(key)?.as_str()
}

fn gvk_of(o: &Value) -> Result<GroupVersionKind, Error> {
    let api_version = str_at(o, &["apiVersion"]);
    let kind = str_at(o, &["kind"]);
    if api_version.is_empty() || kind.is_empty() || str_at(o, &["metadata", "name"]).is_empty() {
        return Err(Error::Invalid(format!(
            "an object lacks apiVersion, kind or metadata.name: {}",
            short(o)
        )));
    }
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    Ok(GroupVersionKind::gvk(group, version, kind))
}

fn short(o: &Value) -> String {
    format!("{}/{}", str_at(o, &["kind"]), str_at(o, &["metadata", "name"]))
}

/// `Kind/namespace/name`, Flux's subject of change-set entries.
pub fn subject(o: &Value) -> String {
    let ns = str_at(o, &["metadata", "namespace"]);
    if ns.is_empty() {
        format!("{}/{}", str_at(o, &["kind"]), str_at(o, &["metadata", "name"]))
    } else {
        format!(
            "{}/{ns}/{}",
            str_at(o, &["kind"]),
            str_at(o, &["metadata", "name"])
        )
    }
}

/// The inventory entry of an object: `<namespace>_<name>_<group>_<kind>`, version `v`.
pub fn inventory_ref(o: &Value) -> ResourceRef {
    let api_version = str_at(o, &["apiVersion"]);
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ResourceRef {
        id: format!(
            "{}_{}_{}_{}",
            str_at(o, &["metadata", "namespace"]),
            str_at(o, &["metadata", "name"]),
            group,
            str_at(o, &["kind"])
        ),
        v: version.to_string(),
    }
}

/// Parses an inventory entry back into (namespace, name, gvk).
pub fn parse_ref(r: &ResourceRef) -> Option<(String, String, GroupVersionKind)> {
    let mut parts = r.id.splitn(4, '_');
    let (ns, name, group, kind) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    Some((
        ns.to_string(),
        name.to_string(),
        GroupVersionKind::gvk(group, &r.v, kind),
    ))
}

/// Runs `futures` with at most `n` at once; results in input order, the first error ends it.
async fn in_parallel<T>(futures: Vec<BoxFuture<'_, Result<T, Error>>>, n: usize) -> Result<Vec<T>, Error> {
    futures::stream::iter(futures).buffered(n).try_collect().await
}

/// [`in_parallel`], pushing results onto `done` in input order as they come: the first error ends it and
/// leaves in `done` the results before it.
async fn in_parallel_into<T>(
    futures: Vec<BoxFuture<'_, Result<T, Error>>>,
    n: usize,
    done: &mut Vec<T>,
) -> Result<(), Error> {
    let mut results = futures::stream::iter(futures).buffered(n);
    while let Some(result) = results.next().await {
        done.push(result?);
    }
    Ok(())
}

/// Kinds one cluster served recently, shared across reconciles: a kind found is not asked for again for
/// the cache's time to live; kinds not found are asked for every time (a CRD may appear at any moment),
/// and a kind the server no longer knows (a 404 on an object of it) is forgotten at once. Use one cache
/// per cluster (impersonation does not change what a cluster serves; a remote cluster does).
#[derive(Debug)]
pub struct KindCache {
    ttl: Duration,
    found: std::sync::Mutex<
        std::collections::HashMap<GroupVersionKind, (ApiResource, ApiCapabilities, tokio::time::Instant)>,
    >,
}

impl KindCache {
    /// An empty cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            found: Default::default(),
        }
    }

    fn get(&self, gvk: &GroupVersionKind) -> Option<(ApiResource, ApiCapabilities)> {
        let found = self.found.lock().expect("kind cache");
        let (ar, caps, at) = found.get(gvk)?;
        (at.elapsed() < self.ttl).then(|| (ar.clone(), caps.clone()))
    }

    fn put(&self, gvk: GroupVersionKind, resolved: (ApiResource, ApiCapabilities)) {
        let now = tokio::time::Instant::now();
        self.found
            .lock()
            .expect("kind cache")
            .insert(gvk, (resolved.0, resolved.1, now));
    }

    /// Forgets `gvk` (its CRD went away or changed).
    pub fn forget(&self, gvk: &GroupVersionKind) {
        self.found.lock().expect("kind cache").remove(gvk);
    }

    /// Whether `gvk` is cached and fresh.
    pub fn contains(&self, gvk: &GroupVersionKind) -> bool {
        self.get(gvk).is_some()
    }
}

/// Resolved kinds: what the API server serves for each wanted kind.
pub(crate) struct Kinds(std::collections::HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)>);

impl Kinds {
    pub(crate) fn resolve_gvk(&self, gvk: &GroupVersionKind) -> Option<(ApiResource, ApiCapabilities)> {
        self.0.get(gvk).cloned()
    }
}

/// Why [`ResourceManager::plan`] could not plan an object, and whether that is final: the object itself
/// is wrong (400, 422, an unknown kind) rather than missing something an earlier stage may yet write.
struct Refusal {
    error: Error,
    definite: bool,
}

impl Refusal {
    fn definite(error: Error) -> Self {
        Self {
            error,
            definite: true,
        }
    }
}

/// What earlier stages are about to write that objects of later stages may need: CRDs (by the group and
/// kind they define), Namespaces and ClusterRoles, created or changed.
#[derive(Default)]
struct Writes {
    kinds: std::collections::HashSet<(String, String)>,
    namespaces: std::collections::HashSet<String>,
    cluster_roles: std::collections::HashSet<String>,
}

impl Writes {
    fn record(&mut self, o: &Value, step: &Step) {
        if matches!(step, Step::Done(_)) {
            return;
        }
        let name = str_at(o, &["metadata", "name"]).to_string();
        match str_at(o, &["kind"]) {
            "CustomResourceDefinition" => {
                let (group, kind) = crd_defines(o);
                self.kinds.insert((group.to_string(), kind.to_string()));
            }
            "Namespace" => {
                self.namespaces.insert(name);
            }
            "ClusterRole" => {
                self.cluster_roles.insert(name);
            }
            _ => {}
        }
    }

    /// Whether `o` can only be judged once these writes are done.
    fn needed_by(&self, o: &Value) -> bool {
        let (group, kind) = group_kind(o);
        self.kinds.contains(&(group.to_string(), kind.to_string()))
            || self.namespaces.contains(str_at(o, &["metadata", "namespace"]))
            || (matches!(kind, "RoleBinding" | "ClusterRoleBinding")
                && str_at(o, &["roleRef", "kind"]) == "ClusterRole"
                && self.cluster_roles.contains(str_at(o, &["roleRef", "name"])))
    }
}

/// What to do with one object, decided by [`ResourceManager::plan`] before anything is written.
struct Plan<'a> {
    object: &'a Value,
    api: Api<DynamicObject>,
    step: Step,
}

enum Step {
    /// Nothing to write.
    Done(Action),
    /// Server-side apply, after the takeover patch when there is one.
    Apply {
        takeover: Option<json_patch::Patch>,
        exists: bool,
    },
    /// An immutable field changed and force is on: delete, then create.
    Recreate,
}

/// An object's API group (empty for the core group) and kind.
fn group_kind(o: &Value) -> (&str, &str) {
    let group = str_at(o, &["apiVersion"]).rsplit_once('/').map_or("", |(g, _)| g);
    (group, str_at(o, &["kind"]))
}

/// The group and kind a CustomResourceDefinition defines.
fn crd_defines(crd: &Value) -> (&str, &str) {
    (
        str_at(crd, &["spec", "group"]),
        str_at(crd, &["spec", "names", "kind"]),
    )
}

/// The (group, kind) pairs the CRDs among `objects` define.
fn defined_kinds(objects: &[Value]) -> std::collections::HashSet<(&str, &str)> {
    objects
        .iter()
        .filter(|o| str_at(o, &["kind"]) == "CustomResourceDefinition")
        .map(crd_defines)
        .collect()
}

fn stage(o: &Value) -> u8 {
    match str_at(o, &["kind"]) {
        "CustomResourceDefinition" | "Namespace" | "ClusterRole" | "ClusterRoleBinding" => 0,
        k if k.ends_with("Class") => 1,
        _ => 2,
    }
}

/// Metadata the API server owns: ignored when comparing a dry-run with the live object.
const SERVER_FIELDS: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "uid",
];

fn comparable(o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(meta) = o.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        for f in SERVER_FIELDS {
            meta.remove(*f);
        }
    }
    if let Some(map) = o.as_object_mut() {
        map.remove("status");
    }
    o
}

/// Applies and prunes with one field manager.
pub struct ResourceManager {
    client: Client,
    field_manager: String,
    annotations: Annotations,
    force: bool,
    overridden: Vec<String>,
    concurrency: usize,
    verified: Option<std::sync::Arc<Verified>>,
    kinds: Option<std::sync::Arc<KindCache>>,
}

/// What a manager last found or made unchanged: per object, the hash of the desired object and the
/// resourceVersion it had then. While both match, applying again cannot change anything (nobody wrote
/// the object since, and we want what we wanted), so the object is reported unchanged without asking
/// the API server. Shared across reconciles by the controller; a restart starts it empty.
#[derive(Debug, Default)]
pub struct Verified(std::sync::Mutex<std::collections::HashMap<String, (u64, String)>>);

impl Verified {
    fn key(o: &Value) -> String {
        format!(
            "{}/{}/{}/{}",
            str_at(o, &["apiVersion"]),
            str_at(o, &["kind"]),
            str_at(o, &["metadata", "namespace"]),
            str_at(o, &["metadata", "name"])
        )
    }

    fn hash(o: &Value, manager: &str, force: bool) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        serde_json::to_string(o).unwrap_or_default().hash(&mut h);
        manager.hash(&mut h);
        force.hash(&mut h);
        h.finish()
    }

    fn matches(&self, o: &Value, hash: u64, live: &Value) -> bool {
        let rv = str_at(live, &["metadata", "resourceVersion"]);
        !rv.is_empty()
            && self
                .0
                .lock()
                .expect("verified lock")
                .get(&Self::key(o))
                .is_some_and(|(h, v)| *h == hash && v == rv)
    }

    fn record(&self, o: &Value, hash: u64, resource_version: &str) {
        if resource_version.is_empty() {
            return;
        }
        self.0
            .lock()
            .expect("verified lock")
            .insert(Self::key(o), (hash, resource_version.to_string()));
    }
}

/// How many requests a manager has in flight at once by default.
pub const DEFAULT_CONCURRENCY: usize = 8;

impl ResourceManager {
    /// A manager writing as `field_manager` through `client` for an owner of the API group
    /// `owner_group` ([`KUSTOMIZE_GROUP`], [`HELM_GROUP`]), whose [`Annotations`] it honours.
    pub fn new(client: Client, field_manager: &str, owner_group: &str) -> Self {
        Self {
            client,
            field_manager: field_manager.to_string(),
            annotations: Annotations::of(owner_group),
            force: false,
            overridden: Vec::new(),
            concurrency: DEFAULT_CONCURRENCY,
            verified: None,
            kinds: None,
        }
    }

    /// Resolves kinds through `cache` (shared across reconciles against the same cluster).
    pub fn with_kind_cache(mut self, cache: std::sync::Arc<KindCache>) -> Self {
        self.kinds = Some(cache);
        self
    }

    /// Remembers verified objects in `verified` (shared across reconciles), so an object nobody changed
    /// since is not even dry-run again.
    pub fn with_verified(mut self, verified: std::sync::Arc<Verified>) -> Self {
        self.verified = Some(verified);
        self
    }

    /// At most `n` (at least 1) requests in flight at once: objects of a stage are looked up, dry-run
    /// and applied in parallel.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Field managers whose fields are taken over too, whatever their operation (`--override-manager`).
    pub fn with_overridden_managers(mut self, managers: &[String]) -> Self {
        self.overridden = managers.to_vec();
        self
    }

    /// With `force`, an object the API server refuses because an immutable field changed is deleted and
    /// created again (Kustomization `spec.force`); without it, only objects annotated or labelled
    /// `kustomize.toolkit.fluxcd.io/force: enabled` are.
    pub fn with_force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Forgets a cached kind when the server answers 404 for it: its CRD may be gone or no longer serve
    /// that version (an object missing is not an error: lookups ask for it optionally).
    fn forget_if_gone(&self, gvk: &GroupVersionKind, e: &kube::Error) {
        if let (Some(cache), kube::Error::Api(status)) = (&self.kinds, e)
            && status.code == 404
        {
            cache.forget(gvk);
        }
    }

    /// Resolves the kinds of `gvks` (one discovery request per kind, in parallel): unknown kinds are
    /// absent from the result. Cheaper than a full discovery, which asks every API group.
    async fn resolve(&self, gvks: impl IntoIterator<Item = GroupVersionKind>) -> Result<Kinds, Error> {
        let mut wanted: Vec<GroupVersionKind> = gvks.into_iter().collect();
        wanted.sort_by(|a, b| (&a.group, &a.version, &a.kind).cmp(&(&b.group, &b.version, &b.kind)));
        wanted.dedup();
        let mut cached = std::collections::HashMap::new();
        if let Some(cache) = &self.kinds {
            wanted.retain(|gvk| match cache.get(gvk) {
                Some(resolved) => {
                    cached.insert(gvk.clone(), resolved);
                    false
                }
                None => true,
            });
        }
        let lookups: Vec<BoxFuture<'_, Result<_, Error>>> = wanted
            .into_iter()
            .map(|gvk| {
                async move {
                    match kube::discovery::oneshot::pinned_kind(&self.client, &gvk).await {
                        Ok(resolved) => Ok(Some((gvk, resolved))),
                        Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
                        Err(kube::Error::Discovery(_)) => Ok(None),
                        Err(e) => Err(Error::Discovery {
                            message: api_message(&e),
                            unavailable: is_unavailable(&e),
                        }),
                    }
                }
                .boxed()
            })
            .collect();
        let found: Vec<_> = in_parallel(lookups, self.concurrency).await?;
        for (gvk, resolved) in found.into_iter().flatten() {
            if let Some(cache) = &self.kinds {
                cache.put(gvk.clone(), resolved.clone());
            }
            cached.insert(gvk, resolved);
        }
        Ok(Kinds(cached))
    }

    fn api(&self, ar: &ApiResource, caps: &ApiCapabilities, namespace: &str) -> Api<DynamicObject> {
        match caps.scope {
            Scope::Cluster => Api::all_with(self.client.clone(), ar),
            Scope::Namespaced => Api::namespaced_with(
                self.client.clone(),
                if namespace.is_empty() {
                    "default"
                } else {
                    namespace
                },
                ar,
            ),
        }
    }

    /// Applies `objects` in stages with `labels` added to each (owner labels); returns what changed.
    pub async fn apply_all(
        &self,
        objects: &[Value],
        labels: &BTreeMap<String, String>,
    ) -> Result<ChangeSet, Error> {
        let mut changes = ChangeSet::default();
        self.apply_all_into(objects, labels, &mut changes).await?;
        Ok(changes)
    }

    /// [`ResourceManager::apply_all`], recording each object in `changes` once it is applied: after a
    /// failure, `changes` holds exactly what was written or found unchanged before it (an object whose
    /// request was still in flight is left out), which is what an inventory may record.
    pub async fn apply_all_into(
        &self,
        objects: &[Value],
        labels: &BTreeMap<String, String>,
        changes: &mut ChangeSet,
    ) -> Result<(), Error> {
        let mut objects: Vec<Value> = objects.to_vec();
        for o in &mut objects {
            gvk_of(o)?;
            let meta = o["metadata"].as_object_mut().expect("objects have metadata");
            let existing = meta
                .entry("labels")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(l) = existing.as_object_mut() {
                for (k, v) in labels {
                    l.insert(k.clone(), Value::String(v.clone()));
                }
            }
        }
        objects.sort_by_key(stage);
        let gvks = || objects.iter().filter_map(|o| gvk_of(o).ok()).collect::<Vec<_>>();
        let mut kinds = self.resolve(gvks()).await?;
        let groups: Vec<&[Value]> = objects.chunk_by(|a, b| stage(a) == stage(b)).collect();
        // NB: nothing is written before the server accepted a dry-run of every object it can judge yet:
        // those of the first stage, and those of later stages that need nothing an earlier stage is about
        // to write (a CRD defining their kind, their Namespace, the ClusterRole they bind). The others
        // are checked once that is written; one the server refuses for another reason than its own
        // content (403, 404: a ClusterRoleBinding of the set may grant what it needs) is checked again then
        let mut writes = Writes::default();
        let defined = defined_kinds(&objects);
        // a kind a CRD of the set defines that discovery does not serve yet is waited for, as if written
        let unserved = |o: &Value| {
            defined.contains(&group_kind(o)) && gvk_of(o).is_ok_and(|g| kinds.resolve_gvk(&g).is_none())
        };
        let mut plans: Vec<Vec<Option<Plan<'_>>>> = Vec::with_capacity(groups.len());
        for (i, group) in groups.iter().enumerate() {
            let ready: Vec<usize> = (0..group.len())
                .filter(|&j| i == 0 || !(writes.needed_by(&group[j]) || unserved(&group[j])))
                .collect();
            let mut slots: Vec<Option<Plan>> = group.iter().map(|_| None).collect();
            self.plan_into(&kinds, group, ready, &mut slots, i > 0).await?;
            for plan in slots.iter().flatten() {
                writes.record(plan.object, &plan.step);
            }
            plans.push(slots);
        }
        for (i, (group, mut slots)) in groups.iter().zip(plans).enumerate() {
            if i == 1 && !defined.is_empty() {
                self.wait_for_crds(&objects).await;
                kinds = self.resolve_defined(&objects, gvks()).await?;
            }
            let deferred: Vec<usize> = (0..group.len()).filter(|&j| slots[j].is_none()).collect();
            self.plan_into(&kinds, group, deferred, &mut slots, false).await?;
            let executing: Vec<BoxFuture<'_, Result<Change, Error>>> = slots
                .into_iter()
                .map(|plan| {
                    let plan = plan.expect("every object is planned");
                    async move {
                        let subject = subject(plan.object);
                        self.execute(plan).await.map(|action| Change { subject, action })
                    }
                    .boxed()
                })
                .collect();
            in_parallel_into(executing, self.concurrency, &mut changes.entries).await?;
        }
        Ok(())
    }

    /// Plans the objects of `group` at `indices` into their `slots`. A refusal ends it, unless `defer` is
    /// set and the refusal is not definite: then the object's slot stays empty, to be planned again once
    /// the earlier stages are written.
    async fn plan_into<'a>(
        &self,
        kinds: &Kinds,
        group: &'a [Value],
        indices: Vec<usize>,
        slots: &mut [Option<Plan<'a>>],
        defer: bool,
    ) -> Result<(), Error> {
        if indices.is_empty() {
            return Ok(());
        }
        let objs: Vec<&Value> = indices.iter().map(|&j| &group[j]).collect();
        let live = self.live_objects(kinds, &objs).await?;
        let planning: Vec<BoxFuture<'_, Result<Option<Plan>, Error>>> = objs
            .iter()
            .zip(live)
            .map(|(o, existing)| {
                async move {
                    match self.plan(kinds, o, existing).await {
                        Ok(plan) => Ok(Some(plan)),
                        Err(refusal) if defer && !refusal.definite => Ok(None),
                        Err(refusal) => Err(refusal.error),
                    }
                }
                .boxed()
            })
            .collect();
        for (j, plan) in indices
            .into_iter()
            .zip(in_parallel(planning, self.concurrency).await?)
        {
            slots[j] = plan;
        }
        Ok(())
    }

    /// The live copy of each object of `group` (`None` when it does not exist yet): listed per kind and
    /// namespace when the group has many of them, fetched one by one otherwise.
    async fn live_objects(&self, kinds: &Kinds, group: &[&Value]) -> Result<Vec<Option<Value>>, Error> {
        const LIST_FROM: usize = 16;
        let key = |o: &Value| (gvk_of(o).ok(), str_at(o, &["metadata", "namespace"]).to_string());
        let mut counts: std::collections::HashMap<_, usize> = std::collections::HashMap::new();
        for o in group {
            *counts.entry(key(o)).or_default() += 1;
        }
        let mut listed: std::collections::HashMap<_, std::collections::HashMap<String, Value>> =
            std::collections::HashMap::new();
        for ((gvk, ns), count) in counts {
            let Some(gvk) = gvk.filter(|_| count >= LIST_FROM) else {
                continue;
            };
            let Some((ar, caps)) = kinds.resolve_gvk(&gvk) else {
                continue;
            };
            let api = self.api(&ar, &caps, &ns);
            let wanted: std::collections::HashSet<&str> = group
                .iter()
                .filter(|o| key(o) == (Some(gvk.clone()), ns.clone()))
                .map(|o| str_at(o, &["metadata", "name"]))
                .collect();
            let mut found = std::collections::HashMap::new();
            let mut params = kube::api::ListParams::default().limit(500);
            loop {
                let page = api.list(&params).await.map_err(|e| {
                    self.forget_if_gone(&gvk, &e);
                    Error::Api {
                        id: format!("{}/{ns}", gvk.kind),
                        action: "list",
                        message: api_message(&e),
                        unavailable: is_unavailable(&e),
                    }
                })?;
                for item in page.items {
                    let name = item.metadata.name.clone().unwrap_or_default();
                    if wanted.contains(name.as_str()) {
                        found.insert(name, serde_json::to_value(item).expect("objects serialise"));
                    }
                }
                match page.metadata.continue_ {
                    Some(token) if !token.is_empty() => params = params.continue_token(&token),
                    _ => break,
                }
            }
            listed.insert((Some(gvk), ns), found);
        }
        let listed = &listed;
        let lookups: Vec<BoxFuture<'_, Result<Option<Value>, Error>>> = group
            .iter()
            .map(|o| {
                async move {
                    let name = str_at(o, &["metadata", "name"]);
                    if let Some(found) = listed.get(&key(o)) {
                        return Ok(found.get(name).cloned());
                    }
                    let gvk = gvk_of(o)?;
                    let Some((ar, caps)) = kinds.resolve_gvk(&gvk) else {
                        return Ok(None);
                    };
                    let api = self.api(&ar, &caps, str_at(o, &["metadata", "namespace"]));
                    api.get_opt(name)
                        .await
                        .map(|live| live.map(|l| serde_json::to_value(l).expect("objects serialise")))
                        .map_err(|e| {
                            self.forget_if_gone(&gvk, &e);
                            Error::Api {
                                id: subject(o),
                                action: "get",
                                message: api_message(&e),
                                unavailable: is_unavailable(&e),
                            }
                        })
                }
                .boxed()
            })
            .collect();
        in_parallel(lookups, self.concurrency).await
    }

    /// Resolves `gvks` once the CRDs of `objects` are established: discovery can lag a moment behind
    /// the Established condition, so a kind one of those CRDs defines is asked for again (for up to
    /// ten seconds) until the server serves it.
    async fn resolve_defined(&self, objects: &[Value], gvks: Vec<GroupVersionKind>) -> Result<Kinds, Error> {
        let defined = defined_kinds(objects);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let kinds = self.resolve(gvks.clone()).await?;
            let missing = gvks.iter().any(|g| {
                defined.contains(&(g.group.as_str(), g.kind.as_str())) && kinds.resolve_gvk(g).is_none()
            });
            if !missing || tokio::time::Instant::now() >= deadline {
                return Ok(kinds);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn wait_for_crds(&self, objects: &[Value]) {
        let api: Api<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        > = Api::all(self.client.clone());
        for o in objects
            .iter()
            .filter(|o| str_at(o, &["kind"]) == "CustomResourceDefinition")
        {
            let name = str_at(o, &["metadata", "name"]);
            let established = kube::runtime::wait::await_condition(
                api.clone(),
                name,
                kube::runtime::wait::conditions::is_crd_established(),
            );
            let _ = tokio::time::timeout(Duration::from_secs(30), established).await;
        }
    }

    /// Decides what to do with `o` without writing anything: skipped by policy, unchanged (the server's
    /// dry-run equals the live object), applied (after taking over kubectl's fields), or recreated.
    async fn plan<'a>(
        &self,
        kinds: &Kinds,
        o: &'a Value,
        existing: Option<Value>,
    ) -> Result<Plan<'a>, Refusal> {
        let gvk = gvk_of(o).map_err(Refusal::definite)?;
        let (ar, caps) = kinds.resolve_gvk(&gvk).ok_or_else(|| {
            Refusal::definite(Error::UnknownKind {
                id: subject(o),
                kind: gvk.kind.clone(),
                api_version: str_at(o, &["apiVersion"]).to_string(),
            })
        })?;
        let name = str_at(o, &["metadata", "name"]);
        let api = self.api(&ar, &caps, str_at(o, &["metadata", "namespace"]));
        let fail = |action: &'static str| {
            move |e: kube::Error| Error::Api {
                id: subject(o),
                action,
                message: api_message(&e),
                unavailable: is_unavailable(&e),
            }
        };
        let done = |api, action| Plan {
            object: o,
            api,
            step: Step::Done(action),
        };
        if let Some(live) = &existing {
            let policy = |key| annotation(live, key).map(str::to_lowercase);
            let keys = &self.annotations;
            if policy(&keys.reconcile).as_deref() == Some("disabled")
                || policy(&keys.ssa).as_deref() == Some("ignore")
                || policy(&keys.ssa).as_deref() == Some("ifnotpresent")
            {
                return Ok(done(api, Action::Skipped));
            }
        }
        let ssa = annotation(o, &self.annotations.ssa).map(str::to_lowercase);
        if ssa.as_deref() == Some("ignore") {
            return Ok(done(api, Action::Skipped));
        }
        let takeover = match (&existing, ssa.as_deref() == Some("merge")) {
            (Some(live), false) => self.takeover_patch(live),
            _ => None,
        };
        let hash = Verified::hash(o, &self.field_manager, self.force);
        if let (Some(verified), Some(live), None) = (&self.verified, &existing, &takeover)
            && verified.matches(o, hash, live)
        {
            return Ok(done(api, Action::Unchanged));
        }
        let params = PatchParams::apply(&self.field_manager).force().dry_run();
        let dry = match api.patch(name, &params, &Patch::Apply(o)).await {
            Ok(dry) => serde_json::to_value(&dry).expect("objects serialise"),
            Err(e) if existing.is_some() && is_immutable(&e) && self.forced(o) => {
                return Ok(Plan {
                    object: o,
                    api,
                    step: Step::Recreate,
                });
            }
            Err(e) => {
                self.forget_if_gone(&gvk, &e);
                let definite = matches!(&e, kube::Error::Api(s) if s.code == 400 || s.code == 422);
                return Err(Refusal {
                    error: fail("dry-run")(e),
                    definite,
                });
            }
        };
        let step = match &existing {
            Some(live) if takeover.is_none() && comparable(live) == comparable(&dry) => {
                debug!(object = %subject(o), "unchanged");
                if let Some(verified) = &self.verified {
                    verified.record(o, hash, str_at(live, &["metadata", "resourceVersion"]));
                }
                Step::Done(Action::Unchanged)
            }
            _ => Step::Apply {
                takeover,
                exists: existing.is_some(),
            },
        };
        Ok(Plan { object: o, api, step })
    }

    /// The JSON patch that hands kubectl's (and the overridden managers') fields to us and removes
    /// stale apply annotations, guarded by the live resourceVersion; `None` when there is nothing to do.
    fn takeover_patch(&self, live: &Value) -> Option<json_patch::Patch> {
        let mut ops = vec![serde_json::json!(
            {"op": "test", "path": "/metadata/resourceVersion", "value": live["metadata"]["resourceVersion"]}
        )];
        if let Some(fields) = take_over_managers(live, &self.field_manager, &self.overridden) {
            ops.push(
                serde_json::json!({"op": "replace", "path": "/metadata/managedFields", "value": fields}),
            );
        }
        for (map, key) in CLEANED_UP {
            if live["metadata"][map].get(key).is_some() {
                let path = format!("/metadata/{map}/{}", key.replace('~', "~0").replace('/', "~1"));
                ops.push(serde_json::json!({"op": "remove", "path": path}));
            }
        }
        (ops.len() > 1).then(|| serde_json::from_value(Value::Array(ops)).expect("a valid JSON patch"))
    }

    /// Carries out a [`Plan`].
    async fn execute(&self, plan: Plan<'_>) -> Result<Action, Error> {
        let Plan { object: o, api, step } = plan;
        let name = str_at(o, &["metadata", "name"]);
        let fail = |action: &'static str| {
            move |e: kube::Error| Error::Api {
                id: subject(o),
                action,
                message: api_message(&e),
                unavailable: is_unavailable(&e),
            }
        };
        let params = PatchParams::apply(&self.field_manager).force();
        match step {
            Step::Done(action) => Ok(action),
            Step::Recreate => {
                debug!(object = %subject(o), "immutable field changed: recreating");
                api.delete(name, &DeleteParams::background())
                    .await
                    .map_err(fail("delete"))?;
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                while api.get_opt(name).await.map_err(fail("get"))?.is_some() {
                    if tokio::time::Instant::now() > deadline {
                        return Err(Error::Api {
                            id: subject(o),
                            action: "recreate",
                            message: "the old object is still being deleted after 30s".into(),
                            unavailable: false,
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                api.patch(name, &params, &Patch::Apply(o))
                    .await
                    .map_err(fail("apply"))?;
                Ok(Action::Created)
            }
            Step::Apply { takeover, exists } => {
                if let Some(patch) = takeover {
                    debug!(object = %subject(o), "taking over kubectl's fields, removing stale annotations");
                    api.patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
                        .await
                        .map_err(fail("take over fields of"))?;
                }
                let applied = api
                    .patch(name, &params, &Patch::Apply(o))
                    .await
                    .map_err(fail("apply"))?;
                if let Some(verified) = &self.verified {
                    let hash = Verified::hash(o, &self.field_manager, self.force);
                    verified.record(
                        o,
                        hash,
                        applied.metadata.resource_version.as_deref().unwrap_or_default(),
                    );
                }
                Ok(if exists {
                    Action::Configured
                } else {
                    Action::Created
                })
            }
        }
    }

    fn forced(&self, o: &Value) -> bool {
        let enabled = |v: Option<&str>| v.is_some_and(|v| v.eq_ignore_ascii_case("enabled"));
        self.force
            || enabled(annotation(o, &self.annotations.force))
            || enabled(
                o.pointer("/metadata/labels")
                    .and_then(|l| l.get(&self.annotations.force))
                    .and_then(Value::as_str),
            )
    }

    /// Deletes what is in `old` and not in `new` (previous inventory minus the new set), except objects
    /// annotated `<group>/prune: disabled` and objects that lack one of the `owner`
    /// labels (Flux's inclusions: `kustomize.toolkit.fluxcd.io/name` and `…/namespace` with the owner's
    /// values): someone else's object of the same name is left, reported as skipped. Missing objects
    /// count as deleted.
    pub async fn prune(
        &self,
        old: &[ResourceRef],
        new: &[ResourceRef],
        owner: &BTreeMap<String, String>,
    ) -> Result<ChangeSet, Error> {
        let mut changes = ChangeSet::default();
        let stale: Vec<&ResourceRef> = old.iter().filter(|o| !new.iter().any(|n| n.id == o.id)).collect();
        if stale.is_empty() {
            return Ok(changes);
        }
        let kinds = self
            .resolve(stale.iter().filter_map(|r| parse_ref(r).map(|(_, _, gvk)| gvk)))
            .await?;
        // NB: reverse apply order, so Namespaces and CRDs go last
        let mut stale = stale;
        stale.reverse();
        for r in stale {
            let Some((ns, name, gvk)) = parse_ref(r) else {
                continue;
            };
            let Some((ar, caps)) = kinds.resolve_gvk(&gvk) else {
                continue;
            };
            let api = self.api(&ar, &caps, &ns);
            let subject = if ns.is_empty() {
                format!("{}/{name}", gvk.kind)
            } else {
                format!("{}/{ns}/{name}", gvk.kind)
            };
            let live = api.get_opt(&name).await.map_err(|e| Error::Api {
                id: subject.clone(),
                action: "get",
                message: api_message(&e),
                unavailable: is_unavailable(&e),
            })?;
            let Some(live) = live else { continue };
            let live = serde_json::to_value(&live).expect("serialise");
            if annotation(&live, &self.annotations.prune)
                .map(str::to_lowercase)
                .as_deref()
                == Some("disabled")
            {
                changes.entries.push(Change {
                    subject,
                    action: Action::Skipped,
                });
                continue;
            }
            if !owned(&live, owner) {
                warn!(object = %subject, "not pruned: it lacks our owner labels, so it is not ours");
                changes.entries.push(Change {
                    subject,
                    action: Action::Skipped,
                });
                continue;
            }
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => changes.entries.push(Change {
                    subject,
                    action: Action::Deleted,
                }),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    return Err(Error::Api {
                        id: subject,
                        action: "delete",
                        message: api_message(&e),
                        unavailable: is_unavailable(&e),
                    });
                }
            }
        }
        Ok(changes)
    }

    /// The objects of `refs` that still exist and are being deleted (a deletion timestamp, finalizers
    /// pending), as `Kind/namespace/name`: what a `WaitForTermination` deletion waits for.
    pub async fn terminating(&self, refs: &[ResourceRef]) -> Result<Vec<String>, Error> {
        let kinds = self
            .resolve(refs.iter().filter_map(|r| parse_ref(r).map(|(_, _, gvk)| gvk)))
            .await?;
        let mut left = Vec::new();
        for r in refs {
            let Some((ns, name, gvk)) = parse_ref(r) else {
                continue;
            };
            let Some((ar, caps)) = kinds.resolve_gvk(&gvk) else {
                continue;
            };
            let subject = if ns.is_empty() {
                format!("{}/{name}", gvk.kind)
            } else {
                format!("{}/{ns}/{name}", gvk.kind)
            };
            let live = self
                .api(&ar, &caps, &ns)
                .get_opt(&name)
                .await
                .map_err(|e| Error::Api {
                    id: subject.clone(),
                    action: "get",
                    message: api_message(&e),
                    unavailable: is_unavailable(&e),
                })?;
            if live.is_some_and(|l| l.metadata.deletion_timestamp.is_some()) {
                left.push(subject);
            }
        }
        Ok(left)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn later_objects_wait_for_the_crds_namespaces_and_cluster_roles_about_to_be_written() {
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "names": {"kind": "Widget"}}});
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}});
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "reader"}});
        let apply = || Step::Apply {
            takeover: None,
            exists: false,
        };
        let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "other"}});
        let inside =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "apps"}});
        let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "b", "namespace": "other"}, "roleRef": {"kind": "ClusterRole", "name": "reader"}});
        let elsewhere =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "other"}});

        let mut unchanged = Writes::default();
        for o in [&crd, &ns, &role] {
            unchanged.record(o, &Step::Done(Action::Unchanged));
        }
        let mut written = Writes::default();
        for o in [&crd, &ns, &role] {
            written.record(o, &apply());
        }
        for o in [&widget, &inside, &binding] {
            assert!(!unchanged.needed_by(o), "{o}");
            assert!(written.needed_by(o), "{o}");
        }
        assert!(!written.needed_by(&elsewhere));
    }

    #[test]
    fn inventory_ids_follow_flux() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}});
        let r = inventory_ref(&d);
        assert_eq!(
            (r.id.as_str(), r.v.as_str()),
            ("default_web_apps_Deployment", "v1")
        );
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}});
        assert_eq!(inventory_ref(&ns).id, "_apps__Namespace");
        let (n, name, gvk) = parse_ref(&r).unwrap();
        assert_eq!(
            (n.as_str(), name.as_str(), gvk.group.as_str(), gvk.kind.as_str()),
            ("default", "web", "apps", "Deployment")
        );
    }

    #[test]
    fn stages_put_crds_namespaces_and_classes_first() {
        let kinds = [
            "Deployment",
            "IngressClass",
            "Namespace",
            "CustomResourceDefinition",
        ];
        let mut objs: Vec<Value> = kinds.iter().map(|k| json!({"kind": k})).collect();
        objs.sort_by_key(stage);
        let sorted: Vec<&str> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(
            sorted,
            [
                "Namespace",
                "CustomResourceDefinition",
                "IngressClass",
                "Deployment"
            ]
        );
    }

    #[test]
    fn summaries_list_only_changes() {
        let cs = ChangeSet {
            entries: vec![
                Change {
                    subject: "Deployment/default/web".into(),
                    action: Action::Configured,
                },
                Change {
                    subject: "ConfigMap/default/c".into(),
                    action: Action::Unchanged,
                },
                Change {
                    subject: "Namespace/apps".into(),
                    action: Action::Created,
                },
            ],
        };
        assert_eq!(
            cs.summary(),
            "Deployment/default/web configured\nNamespace/apps created"
        );
    }
}
