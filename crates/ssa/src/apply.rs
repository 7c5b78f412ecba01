//! The apply: every object planned up front (a server dry-run, unless it is known unchanged), stage by
//! stage, so a refused object leaves the cluster untouched; then written with server-side apply, in
//! parallel, recreating it when forced and an immutable field changed.

use std::{collections::BTreeMap, time::Duration};

use driftless_runtime::error::is_unavailable;
use futures::{FutureExt, StreamExt, TryStreamExt, future::BoxFuture};
use kube::{
    Api,
    api::{DeleteParams, DynamicObject, Patch, PatchParams},
};
use serde_json::Value;
use tracing::debug;

use crate::{Action, Change, ChangeSet, Error, ResourceManager, kinds::*, object::*};

/// Runs `futures` with at most `n` at once; results in input order, the first error ends it.
pub(crate) async fn in_parallel<T>(
    futures: Vec<BoxFuture<'_, Result<T, Error>>>,
    n: usize,
) -> Result<Vec<T>, Error> {
    futures::stream::iter(futures).buffered(n).try_collect().await
}

/// [`in_parallel`], pushing results onto `done` in input order as they come: the first error ends it and
/// leaves in `done` the results before it.
pub(crate) async fn in_parallel_into<T>(
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

/// Why [`ResourceManager::plan`] could not plan an object, and whether that is final: the object itself
/// is wrong (400, 422, an unknown kind) rather than missing something an earlier stage may yet write.
pub(crate) struct Refusal {
    pub(crate) error: Error,
    pub(crate) definite: bool,
}

impl Refusal {
    pub(crate) fn definite(error: Error) -> Self {
        Self {
            error,
            definite: true,
        }
    }
}

/// What earlier stages are about to write that objects of later stages may need: CRDs (by the group and
/// kind they define), Namespaces and ClusterRoles, created or changed.
#[derive(Default)]
pub(crate) struct Writes {
    pub(crate) kinds: std::collections::HashSet<(String, String)>,
    pub(crate) namespaces: std::collections::HashSet<String>,
    pub(crate) cluster_roles: std::collections::HashSet<String>,
}

impl Writes {
    pub(crate) fn record(&mut self, o: &Value, step: &Step) {
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
    pub(crate) fn needed_by(&self, o: &Value) -> bool {
        let (group, kind) = group_kind(o);
        self.kinds.contains(&(group.to_string(), kind.to_string()))
            || self.namespaces.contains(str_at(o, &["metadata", "namespace"]))
            || (matches!(kind, "RoleBinding" | "ClusterRoleBinding")
                && str_at(o, &["roleRef", "kind"]) == "ClusterRole"
                && self.cluster_roles.contains(str_at(o, &["roleRef", "name"])))
    }
}

/// What to do with one object, decided by [`ResourceManager::plan`] before anything is written.
pub(crate) struct Plan<'a> {
    pub(crate) object: &'a Value,
    pub(crate) api: Api<DynamicObject>,
    pub(crate) step: Step,
}

pub(crate) enum Step {
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

/// What a manager last found or made unchanged: per object, the hash of the desired object and the
/// resourceVersion it had then. While both match, applying again cannot change anything (nobody wrote
/// the object since, and we want what we wanted), so the object is reported unchanged without asking
/// the API server. Shared across reconciles by the controller; a restart starts it empty.
#[derive(Debug, Default)]
pub struct Verified(std::sync::Mutex<std::collections::HashMap<String, (u64, String)>>);

impl Verified {
    pub(crate) fn key(o: &Value) -> String {
        format!(
            "{}/{}/{}/{}",
            str_at(o, &["apiVersion"]),
            str_at(o, &["kind"]),
            str_at(o, &["metadata", "namespace"]),
            str_at(o, &["metadata", "name"])
        )
    }

    pub(crate) fn hash(o: &Value, manager: &str, force: bool) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        serde_json::to_string(o).unwrap_or_default().hash(&mut h);
        manager.hash(&mut h);
        force.hash(&mut h);
        h.finish()
    }

    pub(crate) fn matches(&self, o: &Value, hash: u64, live: &Value) -> bool {
        let rv = str_at(live, &["metadata", "resourceVersion"]);
        !rv.is_empty()
            && self
                .0
                .lock()
                .expect("verified lock")
                .get(&Self::key(o))
                .is_some_and(|(h, v)| *h == hash && v == rv)
    }

    pub(crate) fn record(&self, o: &Value, hash: u64, resource_version: &str) {
        if resource_version.is_empty() {
            return;
        }
        self.0
            .lock()
            .expect("verified lock")
            .insert(Self::key(o), (hash, resource_version.to_string()));
    }
}

impl ResourceManager {
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
    pub(crate) async fn plan_into<'a>(
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
    pub(crate) async fn live_objects(
        &self,
        kinds: &Kinds,
        group: &[&Value],
    ) -> Result<Vec<Option<Value>>, Error> {
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

    /// Decides what to do with `o` without writing anything: skipped by policy, unchanged (the server's
    /// dry-run equals the live object), applied (after taking over kubectl's fields), or recreated.
    pub(crate) async fn plan<'a>(
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
        let fail = |action| api_error(o, action);
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
    pub(crate) fn takeover_patch(&self, live: &Value) -> Option<json_patch::Patch> {
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
    pub(crate) async fn execute(&self, plan: Plan<'_>) -> Result<Action, Error> {
        let Plan { object: o, api, step } = plan;
        let name = str_at(o, &["metadata", "name"]);
        let fail = |action| api_error(o, action);
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

    pub(crate) fn forced(&self, o: &Value) -> bool {
        let enabled = |v: Option<&str>| v.is_some_and(|v| v.eq_ignore_ascii_case("enabled"));
        self.force
            || enabled(annotation(o, &self.annotations.force))
            || enabled(
                o.pointer("/metadata/labels")
                    .and_then(|l| l.get(&self.annotations.force))
                    .and_then(Value::as_str),
            )
    }
}
