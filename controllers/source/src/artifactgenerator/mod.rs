//! ArtifactGenerator (`source.extensions.fluxcd.io/v1beta1`, Flux's source-watcher), run inside
//! source-controller: it reads its sources' artifacts straight from this controller's storage (over
//! HTTP, digest-checked, only for an artifact stored elsewhere), writes the ExternalArtifacts' files
//! into the same storage and serves them from the same server — no second storage, no second artifact
//! server, no extra Deployment. Each output artifact is built by its copy operations (`build.rs`) and
//! named by its content, so a commit that changes only one folder gives a new artifact only to the
//! ExternalArtifact built from it. Its sources changing reconciles it at once.

mod build;

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use driftless_api::{
    extensions::{
        ArtifactGenerator, ArtifactGeneratorStatus, ExternalArtifactReference, GENERATOR_LABEL,
        RECONCILE_ANNOTATION,
    },
    kinds,
    meta::{Artifact, conditions::RECONCILING},
    source::{Bucket, ExternalArtifact, GitRepository, HelmChart, OCIRepository},
};
use driftless_artifact::storage::{Integrity, Owner, collect_garbage};
use driftless_runtime::{
    conditions, controller as run_loop,
    error::{ErrorClass, ReconcileError},
    events::Severity,
    manager::{watched_api, watcher_config},
    reconcile::{Reconciler, Runtime, StatusWriter, error_policy, reconcile},
};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams},
    runtime::reflector::{ObjectRef, Store},
};
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::info;

use crate::{Context, FIELD_MANAGER, common::remove_artifacts};

/// Flux's kind name.
pub const KIND: &str = "ArtifactGenerator";
/// The ExternalArtifacts' kind.
const EXTERNAL_ARTIFACT: &str = "ExternalArtifact";
/// The annotation the origin revision goes under.
const ORIGIN_REVISION: &str = "org.opencontainers.image.revision";

/// A failed step, with source-watcher's reasons and messages.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec is inconsistent: only a change helps.
    #[error("{0}")]
    Validation(String),
    /// A cross-namespace source reference while they are blocked.
    #[error("{0}")]
    AccessDenied(String),
    /// A source is missing or has no artifact yet.
    #[error("get sources failed: {0}")]
    Sources(String),
    /// A source's artifact could not be fetched.
    #[error("fetch sources failed: {0}")]
    Fetch(String),
    /// An output artifact could not be built.
    #[error("{name} build failed: {message}")]
    Build {
        /// The output artifact.
        name: String,
        /// Why.
        message: String,
    },
    /// An ExternalArtifact could not be written.
    #[error("{name} reconcile failed: {message}")]
    Apply {
        /// The output artifact.
        name: String,
        /// Why.
        message: String,
    },
    /// Talking to the API server failed.
    #[error("kubernetes API: {}", driftless_runtime::error::api_message(.0))]
    Kube(#[from] kube::Error),
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    // NB: boxed to break the error cycle
    Finalizer(#[from] Box<kube::runtime::finalizer::Error<Error>>),
}

impl ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::Validation(_) => "ValidationFailed",
            Error::AccessDenied(_) => "AccessDenied",
            Error::Sources(_) | Error::Fetch(_) => "SourceFetchFailed",
            Error::Build { .. } => "BuildFailed",
            Error::Apply { .. } | Error::Kube(_) | Error::Finalizer(_) => "ReconciliationFailed",
        }
    }

    fn class(&self) -> ErrorClass {
        match self {
            Error::Validation(_) | Error::AccessDenied(_) => ErrorClass::Stalled,
            Error::Sources(_) | Error::Fetch(_) => ErrorClass::Waiting(Duration::from_secs(5)),
            _ => ErrorClass::Transient,
        }
    }
}

/// What a successful run did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The ExternalArtifacts that got a new artifact (`ns/name (digest)`).
    pub changed: Vec<String>,
}

/// The ArtifactGenerators that read `kind/namespace/name`.
fn generators_of(
    store: &Store<ArtifactGenerator>,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<ArtifactGenerator>> {
    store
        .state()
        .into_iter()
        .filter(|g| {
            let own = g.namespace().unwrap_or_default();
            g.spec.sources.iter().any(|s| {
                s.kind.as_str() == kind
                    && s.name == name
                    && s.namespace.as_deref().unwrap_or(&own) == namespace
            })
        })
        .map(|g| ObjectRef::from_obj(g.as_ref()))
        .collect()
}

macro_rules! watch_sources {
    ($ctrl:expr, $ctx:expr, $store:expr, $progress:expr, $($kind:ty),*) => {{
        let mut ctrl = $ctrl;
        $(
            let store = $store.clone();
            let api: Api<$kind> = watched_api($ctx.client.clone(), &$ctx.config);
            ctrl = run_loop::watch_related(
                ctrl,
                concat!(stringify!($kind), " (generators)"),
                api,
                (),
                watcher_config(&$ctx.config),
                move |s: $kind| {
                    if s.status.as_ref().and_then(|st| st.artifact.as_ref()).is_none() {
                        return Vec::new();
                    }
                    generators_of(&store, <$kind as kube::Resource>::kind(&()).as_ref(), &s.namespace().unwrap_or_default(), &s.name_any())
                },
                $progress.clone(),
            );
        )*
        ctrl
    }};
}

/// Runs the ArtifactGenerator controller until its stream ends.
pub async fn run(ctx: Arc<Context>) {
    let api: Api<ArtifactGenerator> = watched_api(ctx.client.clone(), &ctx.config);
    let progress = ctx.metrics.progress.clone();
    let (ctrl, store) = run_loop::for_kind(
        api,
        watcher_config(&ctx.config),
        ctx.config.concurrent,
        progress.clone(),
    );
    let ctrl = watch_sources!(
        ctrl,
        ctx,
        store,
        progress,
        GitRepository,
        OCIRepository,
        Bucket,
        HelmChart,
        ExternalArtifact
    );
    let generators = Arc::new(Generators(ctx));
    run_loop::drain(ctrl.run(reconcile::<Generators>, error_policy::<Generators>, generators)).await;
}

/// The ArtifactGenerator reconciler.
pub struct Generators(pub Arc<Context>);

impl Reconciler for Generators {
    type Object = ArtifactGenerator;
    type Status = ArtifactGeneratorStatus;
    type Outcome = Outcome;
    type Error = Error;
    const FIELD_MANAGER: &'static str = FIELD_MANAGER;

    fn runtime(&self) -> Runtime<'_> {
        self.0.runtime()
    }

    fn status(obj: &ArtifactGenerator) -> Option<&ArtifactGeneratorStatus> {
        obj.status.as_ref()
    }

    /// `source.extensions.fluxcd.io/reconcile: disabled` stops it, as source-watcher's annotation does.
    fn suspended(obj: &ArtifactGenerator) -> bool {
        obj.annotations()
            .get(RECONCILE_ANNOTATION)
            .is_some_and(|v| v.eq_ignore_ascii_case("disabled"))
    }

    fn interval(_obj: &ArtifactGenerator) -> Result<Duration, Error> {
        Ok(Duration::from_secs(3600))
    }

    fn timeout(_obj: &ArtifactGenerator) -> Duration {
        Duration::from_secs(300)
    }

    async fn run(
        &self,
        obj: &ArtifactGenerator,
        status: &mut ArtifactGeneratorStatus,
        _writer: &mut StatusWriter<ArtifactGenerator, ArtifactGeneratorStatus>,
    ) -> Result<Outcome, Error> {
        generate(obj, &self.0, status).await
    }

    fn summarize(
        obj: &ArtifactGenerator,
        status: &mut ArtifactGeneratorStatus,
        result: &Result<Outcome, Error>,
    ) {
        let generation = obj.metadata.generation;
        match result {
            Ok(_) => {
                conditions::delete(&mut status.conditions, RECONCILING);
                conditions::delete(&mut status.conditions, driftless_api::meta::conditions::STALLED);
                conditions::mark_true(
                    &mut status.conditions,
                    driftless_api::meta::conditions::READY,
                    driftless_api::meta::conditions::reasons::SUCCEEDED,
                    &format!(
                        "reconciliation succeeded, generated {} artifact(s)",
                        status.inventory.len()
                    ),
                    generation,
                );
            }
            Err(err) => conditions::mark_failed_run(
                &mut status.conditions,
                err,
                "reconciliation in progress",
                generation,
            ),
        }
    }

    fn after(
        &self,
        obj: &ArtifactGenerator,
        _status: &ArtifactGeneratorStatus,
        result: &Result<Outcome, Error>,
    ) {
        if let Ok(outcome) = result
            && !outcome.changed.is_empty()
        {
            let message = format!("external artifacts reconciled: {}", outcome.changed.join("\n"));
            self.0.recorder.record(
                &obj.object_ref(&()),
                Severity::Info,
                "Ready",
                &message,
                BTreeMap::new(),
            );
            info!("{message}");
        }
    }

    async fn cleanup(&self, obj: &ArtifactGenerator) -> Result<(), Error> {
        let inventory = obj
            .status
            .as_ref()
            .map(|s| s.inventory.clone())
            .unwrap_or_default();
        delete_artifacts(&self.0, &inventory).await
    }
}

/// Deletes the ExternalArtifacts of `refs` and their files.
async fn delete_artifacts(ctx: &Context, refs: &[ExternalArtifactReference]) -> Result<(), Error> {
    for r in refs {
        let api: Api<ExternalArtifact> = Api::namespaced(ctx.client.clone(), &r.namespace);
        match api.delete(&r.name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        let owner = Owner {
            kind: EXTERNAL_ARTIFACT,
            namespace: &r.namespace,
            name: &r.name,
        };
        remove_artifacts(ctx, owner).map_err(|e| Error::Apply {
            name: r.name.clone(),
            message: e.to_string(),
        })?;
    }
    Ok(())
}

/// A source's artifact, as observed.
struct Observed {
    artifact: Artifact,
}

/// source-watcher's digest of the observed sources: `alias=[digest=…,revision=…,url=…]`, sorted, `|`-joined.
fn sources_digest(sources: &BTreeMap<String, Observed>) -> String {
    let mut parts: Vec<String> = sources
        .iter()
        .map(|(alias, o)| {
            format!(
                "{alias}=[digest={},revision={},url={}]",
                o.artifact.digest, o.artifact.revision, o.artifact.url
            )
        })
        .collect();
    parts.sort();
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(parts.join("|").as_bytes()))
    )
}

fn validate(obj: &ArtifactGenerator, ctx: &Context) -> Result<(), Error> {
    let ns = obj.namespace().unwrap_or_default();
    if obj.spec.path_pattern.as_deref().is_some_and(|p| !p.is_empty()) {
        return Err(Error::Validation(
            "spec.pathPattern is not supported yet: list the artifacts one by one".into(),
        ));
    }
    let mut aliases = std::collections::BTreeSet::new();
    for s in &obj.spec.sources {
        if !aliases.insert(s.alias.as_str()) {
            return Err(Error::Validation(format!(
                "duplicate source alias '{}' found",
                s.alias
            )));
        }
        if let Some(other) = s.namespace.as_deref()
            && ctx.config.no_cross_namespace_refs
            && other != ns
        {
            return Err(Error::AccessDenied(format!(
                "cross-namespace reference to source {}/{other}/{} is not allowed",
                s.kind.as_str(),
                s.name
            )));
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for a in &obj.spec.output_artifacts {
        if !names.insert(a.name.as_str()) {
            return Err(Error::Validation(format!(
                "duplicate artifact name '{}' found",
                a.name
            )));
        }
        for (field, alias) in [("revision", &a.revision), ("originRevision", &a.origin_revision)] {
            if let Some(alias) = alias.as_deref().map(|r| r.trim_start_matches('@'))
                && !aliases.contains(alias)
            {
                return Err(Error::Validation(format!(
                    "artifact {} {field} source alias '{alias}' not found",
                    a.name
                )));
            }
        }
    }
    Ok(())
}

/// Gets every source's artifact.
async fn observe(obj: &ArtifactGenerator, ctx: &Context) -> Result<BTreeMap<String, Observed>, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let mut observed = BTreeMap::new();
    for s in &obj.spec.sources {
        let kind = kinds::get(s.kind.as_str()).expect("every source kind is registered");
        let namespace = s.namespace.clone().unwrap_or_else(|| ns.clone());
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), &namespace, &kind.api_resource());
        let source = api.get(&s.name).await.map_err(|e| {
            Error::Sources(format!(
                "unable to get source '{namespace}/{}': {}",
                s.name,
                driftless_runtime::error::api_message(&e)
            ))
        })?;
        let artifact: Option<Artifact> = source
            .data
            .get("status")
            .and_then(|st| st.get("artifact"))
            .and_then(|a| serde_json::from_value(a.clone()).ok());
        let artifact = artifact.ok_or_else(|| {
            Error::Sources(format!(
                "source '{}/{namespace}/{}' is not ready",
                kind.kind, s.name
            ))
        })?;
        observed.insert(s.alias.clone(), Observed { artifact });
    }
    Ok(observed)
}

/// Whether nothing needs doing: Ready at this generation, the same sources, every generated artifact
/// still in storage with its digest, and the ExternalArtifacts in the cluster the inventory's.
async fn up_to_date(
    obj: &ArtifactGenerator,
    ctx: &Context,
    status: &ArtifactGeneratorStatus,
    digest: &str,
) -> Result<bool, Error> {
    let ready = conditions::get(&status.conditions, driftless_api::meta::conditions::READY);
    if !ready.is_some_and(|c| c.status == "True" && c.observed_generation == obj.metadata.generation)
        || status.observed_sources_digest.as_deref() != Some(digest)
        || status.inventory.len() != obj.spec.output_artifacts.len()
    {
        return Ok(false);
    }
    for r in &status.inventory {
        let path = format!(
            "{}/{}",
            driftless_artifact::storage::artifact_dir(EXTERNAL_ARTIFACT, &r.namespace, &r.name),
            r.filename
        );
        let stored = Artifact {
            url: ctx.storage.url(&path),
            path,
            revision: String::new(),
            digest: r.digest.clone(),
            last_update_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
            size: None,
            metadata: None,
        };
        match ctx.storage.check(&stored) {
            Ok(Integrity::Intact) => {}
            Ok(Integrity::Corrupted(_)) => {
                let _ = ctx.storage.remove(&stored);
                return Ok(false);
            }
            _ => return Ok(false),
        }
    }
    let uid = obj.uid().unwrap_or_default();
    let api: Api<ExternalArtifact> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let listed = api
        .list(&ListParams::default().labels(&format!("{GENERATOR_LABEL}={uid}")))
        .await?;
    Ok(listed.items.len() == status.inventory.len()
        && listed.items.iter().all(|ea| {
            let digest = ea
                .status
                .as_ref()
                .and_then(|s| s.artifact.as_ref())
                .map(|a| a.digest.as_str());
            status
                .inventory
                .iter()
                .any(|r| r.name == ea.name_any() && Some(r.digest.as_str()) == digest)
        }))
}

/// Unpacks every source's artifact under `dir/<alias>`: from this controller's storage when it is
/// there intact, else downloaded and checked against its digest.
async fn fetch(
    ctx: &Context,
    sources: &BTreeMap<String, Observed>,
    dir: &std::path::Path,
) -> Result<BTreeMap<String, PathBuf>, Error> {
    let mut out = BTreeMap::new();
    for (alias, o) in sources {
        let target = dir.join("sources").join(alias);
        let local = matches!(ctx.storage.check(&o.artifact), Ok(Integrity::Intact));
        if local {
            let path = ctx
                .storage
                .local_path(&o.artifact.path)
                .map_err(|e| Error::Fetch(e.to_string()))?;
            let target2 = target.clone();
            tokio::task::spawn_blocking(move || {
                let file = std::fs::File::open(&path)?;
                driftless_artifact::fetch::unpack(
                    file,
                    &target2,
                    driftless_artifact::fetch::Limits::default(),
                )
                .map_err(std::io::Error::other)
            })
            .await
            .expect("unpacking does not panic")
            .map_err(|e| Error::Fetch(format!("{alias}: {e}")))?;
        } else {
            let http = driftless_artifact::fetch::http_client(Duration::from_secs(120));
            driftless_artifact::fetch::fetch_and_unpack(
                &http,
                &o.artifact.url,
                &o.artifact.digest,
                &target,
                driftless_artifact::fetch::Limits::default(),
            )
            .await
            .map_err(|e| Error::Fetch(format!("{alias}: {e}")))?;
        }
        out.insert(alias.clone(), target);
    }
    Ok(out)
}

async fn generate(
    obj: &ArtifactGenerator,
    ctx: &Context,
    status: &mut ArtifactGeneratorStatus,
) -> Result<Outcome, Error> {
    validate(obj, ctx)?;
    let ns = obj.namespace().unwrap_or_default();
    let sources = observe(obj, ctx).await?;
    let digest = sources_digest(&sources);
    if up_to_date(obj, ctx, status, &digest).await? {
        return Ok(Outcome::default());
    }
    let work = tempfile::Builder::new()
        .prefix("ag-")
        .tempdir()
        .map_err(|e| Error::Fetch(format!("failed to create tmp dir: {e}")))?;
    let dirs = fetch(ctx, &sources, work.path()).await?;
    let uid = obj.uid().unwrap_or_default();
    let mut inventory = Vec::new();
    let mut changed = Vec::new();
    for output in &obj.spec.output_artifacts {
        let name = output.name.clone();
        let build_error = |message: String| Error::Build {
            name: name.clone(),
            message,
        };
        let staging = work.path().join("artifacts").join(&name);
        let (storage, dirs2, ops, staging2, ns2, name2) = (
            ctx.storage.clone(),
            dirs.clone(),
            output.copy.clone(),
            staging.clone(),
            ns.clone(),
            name.clone(),
        );
        let mut artifact = tokio::task::spawn_blocking(move || -> Result<Artifact, String> {
            std::fs::create_dir_all(&staging2).map_err(|e| format!("failed to create staging dir: {e}"))?;
            for op in &ops {
                build::apply_copy(op, &dirs2, &staging2).map_err(|e| {
                    format!("failed to apply copy operations: failed to apply copy operation from '{}' to '{}': {e}", op.from, op.to)
                })?;
            }
            let hash = build::dir_hash(&staging2, &name2).map_err(|e| format!("failed to hash staging dir: {e}"))?;
            let owner = Owner {
                kind: EXTERNAL_ARTIFACT,
                namespace: &ns2,
                name: &name2,
            };
            let everything = driftless_artifact::ignore::Filter::from_patterns(&staging2, "").map_err(|e| e.to_string())?;
            storage
                .archive(owner, &format!("{hash}.tar.gz"), "", &staging2, &everything)
                .map_err(|e| format!("failed to create artifact: {e}"))
        })
        .await
        .expect("building an artifact does not panic")
        .map_err(build_error)?;
        artifact.revision = match output.revision.as_deref().map(|r| r.trim_start_matches('@')) {
            Some(alias) => sources[alias].artifact.revision.clone(),
            None => format!("latest@{}", artifact.digest),
        };
        if let Some(alias) = output
            .origin_revision
            .as_deref()
            .map(|r| r.trim_start_matches('@'))
        {
            let source = &sources[alias].artifact;
            let origin = source
                .metadata
                .as_ref()
                .and_then(|m| m.get(ORIGIN_REVISION))
                .cloned()
                .unwrap_or_else(|| source.revision.clone());
            artifact.metadata = Some(BTreeMap::from([(ORIGIN_REVISION.to_string(), origin)]));
        }
        apply_external_artifact(ctx, obj, &uid, &name, &artifact)
            .await
            .map_err(|message| Error::Apply {
                name: name.clone(),
                message,
            })?;
        let filename = artifact.path.rsplit('/').next().unwrap_or_default().to_string();
        if !status
            .inventory
            .iter()
            .any(|r| r.name == name && r.namespace == ns && r.digest == artifact.digest)
        {
            changed.push(format!("{ns}/{name} ({})", artifact.digest));
        }
        collect_garbage(&ctx.storage, &artifact);
        inventory.push(ExternalArtifactReference {
            name,
            namespace: ns.clone(),
            digest: artifact.digest,
            filename,
        });
    }
    let orphans: Vec<ExternalArtifactReference> = status
        .inventory
        .iter()
        .filter(|old| {
            !inventory
                .iter()
                .any(|r| r.name == old.name && r.namespace == old.namespace)
        })
        .cloned()
        .collect();
    delete_artifacts(ctx, &orphans).await?;
    status.inventory = inventory;
    status.observed_sources_digest = Some(digest);
    Ok(Outcome { changed })
}

/// Writes the ExternalArtifact `name` (server-side apply, labelled with the generator's UID) and its
/// status; one that another generator made is left alone, with an error saying so.
async fn apply_external_artifact(
    ctx: &Context,
    obj: &ArtifactGenerator,
    uid: &str,
    name: &str,
    artifact: &Artifact,
) -> Result<(), String> {
    let ns = obj.namespace().unwrap_or_default();
    let api: Api<ExternalArtifact> = Api::namespaced(ctx.client.clone(), &ns);
    if let Some(existing) = api.get_opt(name).await.map_err(|e| e.to_string())?
        && let Some(owner) = existing.labels().get(GENERATOR_LABEL)
        && owner != uid
    {
        return Err(format!(
            "ExternalArtifact '{ns}/{name}' belongs to another ArtifactGenerator (uid {owner}): rename the artifact"
        ));
    }
    let common = obj.spec.common_metadata.clone().unwrap_or_default();
    let mut labels = common.labels.unwrap_or_default();
    labels.insert("app.kubernetes.io/managed-by".into(), FIELD_MANAGER.into());
    labels.insert(GENERATOR_LABEL.into(), uid.into());
    let mut metadata = json!({"name": name, "namespace": ns, "labels": labels});
    if let Some(annotations) = common.annotations.filter(|a| !a.is_empty()) {
        metadata["annotations"] = json!(annotations);
    }
    let object = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": EXTERNAL_ARTIFACT,
        "metadata": metadata,
        "spec": {"sourceRef": {
            "apiVersion": "source.extensions.fluxcd.io/v1beta1",
            "kind": KIND,
            "name": obj.name_any(),
            "namespace": ns,
        }},
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let applied = api
        .patch(name, &params, &Patch::Apply(&object))
        .await
        .map_err(|e| e.to_string())?;
    let mut conditions_list = applied
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    conditions::mark_true(
        &mut conditions_list,
        driftless_api::meta::conditions::READY,
        driftless_api::meta::conditions::reasons::SUCCEEDED,
        "Artifact is ready",
        applied.metadata.generation,
    );
    let status = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": EXTERNAL_ARTIFACT,
        "status": {"artifact": artifact, "conditions": conditions_list},
    });
    api.patch_status(name, &params, &Patch::Apply(&status))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
