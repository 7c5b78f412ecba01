//! ImagePolicy on the shared reconcile lifecycle: the ImageRepository it names (same namespace, or
//! another one that its `accessFrom` admits), the policy and tag filter checked, the latest tag picked
//! from the repository's stored tags — no registry call — and, as `digestReflectionPolicy` asks, the
//! tag's manifest digest read from the registry (`IfNotPresent`: once per tag; `Always`: every
//! `spec.interval`). A change of `latestRef` keeps the previous one in `observedPreviousRef` and is told
//! by an event. Reconciled at once when its ImageRepository changes (a new scan).

use std::{sync::Arc, time::Duration};

use driftless_api::{
    image::{ImagePolicy, ImagePolicyStatus, ImageRef, ImageRepository},
    meta::{
        conditions::{READY, RECONCILING, STALLED, reasons},
        parse_duration,
    },
};
use driftless_credentials::oci::{RegistryRefs, for_registry};
use driftless_oci::{Client, Wanted};
use driftless_runtime::{
    conditions, controller as run_loop,
    error::{ErrorClass, ReconcileError},
    events::Severity,
    manager::{watched_api, watcher_config},
    reconcile::{Reconciler, Runtime, StatusWriter, error_policy, reconcile},
    refs,
    request::is_suspended,
    sources::SourceRef,
};
use kube::{Api, Resource, ResourceExt};
use tracing::info;

use crate::{
    Context, FIELD_MANAGER,
    imagerepository::{self, parse_image},
    policy::{self, Filter, Policy},
    store::RepoId,
};

/// How often a policy without `spec.interval` is looked at again (it is reconciled at once when its
/// ImageRepository scans anyway).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);

/// A failed step, with Flux's reasons and messages.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `digestReflectionPolicy: Always` without `interval`.
    #[error("spec.interval must be set when spec.digestReflectionPolicy is set to 'Always'")]
    IntervalNotConfigured,
    /// The ImageRepository may not be used from here.
    #[error("failed to get the referred ImageRepository: {0}")]
    AccessDenied(String),
    /// The ImageRepository does not exist (yet), or has no tags stored yet.
    #[error("{message}")]
    DependencyNotReady {
        /// Which, and why.
        message: String,
        /// `--requeue-dependency`.
        retry: Duration,
    },
    /// The ImageRepository's image name is not valid.
    #[error("{0}")]
    ImageUrl(String),
    /// The policy or the tag filter cannot work.
    #[error("{0}")]
    InvalidPolicy(#[from] policy::Invalid),
    /// No tag fits the policy.
    #[error("{0}")]
    NoLatest(#[from] policy::NoLatest),
    /// The latest tag's digest could not be read.
    #[error("failed fetching digest of {image}: {message}")]
    Digest {
        /// `name:tag`.
        image: String,
        /// Why.
        message: String,
    },
    /// The tag database failed.
    #[error("{0}")]
    Store(#[from] crate::store::Error),
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
            Error::IntervalNotConfigured => "IntervalNotConfigured",
            Error::AccessDenied(_) => reasons::ACCESS_DENIED,
            Error::DependencyNotReady { .. } => reasons::DEPENDENCY_NOT_READY,
            Error::ImageUrl(_) => imagerepository::IMAGE_URL_INVALID,
            Error::InvalidPolicy(_) => "InvalidPolicy",
            Error::NoLatest(_)
            | Error::Digest { .. }
            | Error::Store(_)
            | Error::Kube(_)
            | Error::Finalizer(_) => "Failure",
        }
    }

    fn class(&self) -> ErrorClass {
        match self {
            Error::IntervalNotConfigured | Error::ImageUrl(_) | Error::InvalidPolicy(_) => {
                ErrorClass::Stalled
            }
            Error::DependencyNotReady { retry, .. } => ErrorClass::Waiting(*retry),
            _ => ErrorClass::Transient,
        }
    }
}

/// What a run found.
#[derive(Debug, Clone, PartialEq)]
pub struct Picked {
    /// Whether `latestRef` changed.
    pub changed: bool,
}

fn reflection(obj: &ImagePolicy) -> &str {
    obj.spec.digest_reflection_policy.as_deref().unwrap_or("Never")
}

/// The ImageRepository `obj` names.
pub fn repository_ref(obj: &ImagePolicy) -> SourceRef {
    let r = &obj.spec.image_repository_ref;
    SourceRef {
        kind: "ImageRepository".into(),
        namespace: r
            .namespace
            .clone()
            .unwrap_or_else(|| obj.namespace().unwrap_or_default()),
        name: r.name.clone(),
    }
}

async fn run_steps(
    obj: &ImagePolicy,
    ctx: &Context,
    status: &mut ImagePolicyStatus,
) -> Result<Picked, Error> {
    let ns = obj.namespace().unwrap_or_default();
    if reflection(obj) == "Always" && obj.spec.interval.is_none() {
        return Err(Error::IntervalNotConfigured);
    }
    let policy = Policy::from_spec(&obj.spec.policy)?;
    let filter = obj.spec.filter_tags.as_ref().map(Filter::new).transpose()?;

    // the ImageRepository
    let source = repository_ref(obj);
    refs::cross_namespace(
        ctx.config.no_cross_namespace_refs,
        &ns,
        "ImageRepository",
        &source.namespace,
        &source.name,
    )
    .map_err(Error::AccessDenied)?;
    let not_ready = |message: String| Error::DependencyNotReady {
        message: format!("failed to get the referred ImageRepository: {message}"),
        retry: ctx.config.requeue_dependency,
    };
    let repo = Api::<ImageRepository>::namespaced(ctx.client.clone(), &source.namespace)
        .get_opt(&source.name)
        .await?
        .ok_or_else(|| {
            not_ready(format!(
                "referenced ImageRepository does not exist: imagerepositories.image.toolkit.fluxcd.io \"{}\" not found",
                source.name
            ))
        })?;
    refs::has_access(
        &ctx.client,
        &ns,
        &source.namespace,
        &source.name,
        repo.spec.access_from.as_ref(),
    )
    .await
    .map_err(|e| Error::AccessDenied(format!("access denied: {e}")))?;
    let (oci_repo, _) = parse_image(&repo.spec.image).map_err(|e| Error::ImageUrl(e.to_string()))?;

    // the latest tag, from the stored scan
    let canonical = repo
        .status
        .as_ref()
        .and_then(|s| s.canonical_image_name.clone())
        .unwrap_or_default();
    let tags = ctx.store.tags(RepoId {
        namespace: &source.namespace,
        name: &source.name,
        canonical: &canonical,
    })?;
    if tags.is_empty() {
        return Err(Error::DependencyNotReady {
            message: format!(
                "retrying in {} error: no tags in database",
                driftless_api::meta::format_duration(ctx.config.requeue_dependency)
            ),
            retry: ctx.config.requeue_dependency,
        });
    }
    let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
    let latest = policy::latest(&policy, filter.as_ref(), &refs)?.to_string();

    // the digest, as reflection asks
    let mut next = ImageRef {
        name: repo.spec.image.clone(),
        tag: latest.clone(),
        digest: None,
    };
    let previous = status.latest_ref.clone();
    let fetch = match reflection(obj) {
        "IfNotPresent" => match &previous {
            Some(p)
                if p.name == next.name
                    && p.tag == next.tag
                    && p.digest.as_deref().is_some_and(|d| !d.is_empty()) =>
            {
                next.digest = p.digest.clone();
                false
            }
            _ => true,
        },
        "Always" => true,
        _ => false,
    };
    if fetch {
        let image = format!("{}:{}", next.name, next.tag);
        let digest_err = |message: String| Error::Digest {
            image: image.clone(),
            message,
        };
        let timeout = imagerepository::timeout(&repo);
        let (keychain, options) = for_registry(
            &ctx.client,
            RegistryRefs {
                namespace: &source.namespace,
                secret: repo.spec.secret_ref.as_ref(),
                service_account: repo.spec.service_account_name.as_deref(),
                cert_secret: repo.spec.cert_secret_ref.as_ref(),
                proxy_secret: repo.spec.proxy_secret_ref.as_ref(),
                insecure: repo.spec.insecure.unwrap_or(false),
            },
            timeout,
        )
        .await
        .map_err(|e| digest_err(format!("failed to configure authentication options: {e}")))?;
        let client = Client::new(&oci_repo, &keychain, &options, &ctx.oci)
            .await
            .map_err(|e| digest_err(e.to_string()))?;
        let resolved = client
            .resolve(&Wanted::Tag(latest.clone()))
            .await
            .map_err(|e| digest_err(e.to_string()))?;
        next.digest = Some(resolved.digest);
    }
    let changed = previous.as_ref() != Some(&next);
    if changed {
        status.observed_previous_ref = previous;
        status.latest_ref = Some(next);
    }
    Ok(Picked { changed })
}

/// Flux's Ready message: the latest tag (and digest), and the previous one when it changed.
pub fn ready_message(status: &ImagePolicyStatus) -> String {
    let Some(latest) = &status.latest_ref else {
        return String::new();
    };
    let mut message = format!("Latest image tag for {} resolved to {}", latest.name, latest.tag);
    if let Some(d) = latest.digest.as_deref().filter(|d| !d.is_empty()) {
        message.push_str(&format!(" with digest {d}"));
    }
    if let Some(prev) = &status.observed_previous_ref
        && prev != latest
    {
        message.push_str(&format!(" (previously {}:{}", prev.name, prev.tag));
        if let Some(d) = prev.digest.as_deref().filter(|d| !d.is_empty()) {
            message.push_str(&format!("@{d}"));
        }
        message.push(')');
    }
    message
}

/// Runs the ImagePolicy controller until its stream ends; a policy is reconciled at once when its
/// ImageRepository changes.
pub async fn run(ctx: Arc<Context>) {
    let api: Api<ImagePolicy> = watched_api(ctx.client.clone(), &ctx.config);
    let progress = ctx.metrics.progress.clone();
    let (ctrl, store) = run_loop::for_kind(
        api,
        watcher_config(&ctx.config),
        ctx.config.concurrent,
        progress.clone(),
    );
    let ctrl = driftless_runtime::sources::watch_sources(
        ctrl,
        &ctx.client,
        &ctx.config,
        &["ImageRepository"],
        store,
        repository_ref,
        progress,
    );
    let policies = Arc::new(ImagePolicies(ctx));
    run_loop::drain(ctrl.run(
        reconcile::<ImagePolicies>,
        error_policy::<ImagePolicies>,
        policies,
    ))
    .await;
}

/// The ImagePolicy reconciler.
pub struct ImagePolicies(pub Arc<Context>);

impl Reconciler for ImagePolicies {
    type Object = ImagePolicy;
    type Status = ImagePolicyStatus;
    type Outcome = Picked;
    type Error = Error;
    const FIELD_MANAGER: &'static str = FIELD_MANAGER;

    fn runtime(&self) -> Runtime<'_> {
        self.0.runtime()
    }

    fn status(obj: &ImagePolicy) -> Option<&ImagePolicyStatus> {
        obj.status.as_ref()
    }

    fn suspended(obj: &ImagePolicy) -> bool {
        is_suspended(obj.spec.suspend)
    }

    fn interval(obj: &ImagePolicy) -> Result<Duration, Error> {
        match &obj.spec.interval {
            Some(i) => parse_duration(i).map_err(|e| Error::InvalidPolicy(policy::Invalid(e.to_string()))),
            None => Ok(DEFAULT_INTERVAL),
        }
    }

    fn timeout(_obj: &ImagePolicy) -> Duration {
        Duration::from_secs(120)
    }

    async fn run(
        &self,
        obj: &ImagePolicy,
        status: &mut ImagePolicyStatus,
        _writer: &mut StatusWriter<ImagePolicy, ImagePolicyStatus>,
    ) -> Result<Picked, Error> {
        run_steps(obj, &self.0, status).await
    }

    fn summarize(obj: &ImagePolicy, status: &mut ImagePolicyStatus, result: &Result<Picked, Error>) {
        summarize(obj, status, result);
    }

    fn after(&self, obj: &ImagePolicy, status: &ImagePolicyStatus, result: &Result<Picked, Error>) {
        let Ok(picked) = result else {
            return;
        };
        let was_ready = obj
            .status
            .as_ref()
            .is_some_and(|s| conditions::is_true(&s.conditions, READY));
        if picked.changed || !was_ready {
            let message = ready_message(status);
            self.0.recorder.record(
                &obj.object_ref(&()),
                Severity::Info,
                reasons::SUCCEEDED,
                &message,
                Default::default(),
            );
            info!("{message}");
        }
    }

    async fn cleanup(&self, _obj: &ImagePolicy) -> Result<(), Error> {
        Ok(())
    }
}

/// The conditions after a run.
fn summarize(obj: &ImagePolicy, status: &mut ImagePolicyStatus, result: &Result<Picked, Error>) {
    let generation = obj.metadata.generation;
    conditions::delete(&mut status.conditions, RECONCILING);
    match result {
        Ok(_) => {
            conditions::delete(&mut status.conditions, STALLED);
            let message = ready_message(status);
            conditions::mark_true(
                &mut status.conditions,
                READY,
                reasons::SUCCEEDED,
                &message,
                generation,
            );
        }
        Err(e) => {
            // NB: a failure a retry may cure ends an earlier stall
            conditions::delete(&mut status.conditions, STALLED);
            conditions::mark_failed_run(
                &mut status.conditions,
                e,
                "reconciliation in progress",
                generation,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use driftless_api::image::{ImagePolicyChoice, ImagePolicySpec, SemVerPolicy};

    use super::*;

    fn policy() -> ImagePolicy {
        let mut obj = ImagePolicy::new(
            "web",
            ImagePolicySpec {
                policy: ImagePolicyChoice {
                    semver: Some(SemVerPolicy { range: "1.x".into() }),
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        obj.metadata.namespace = Some("apps".into());
        obj.metadata.generation = Some(2);
        obj
    }

    fn image(tag: &str, digest: Option<&str>) -> ImageRef {
        ImageRef {
            name: "ghcr.io/org/web".into(),
            tag: tag.into(),
            digest: digest.map(String::from),
        }
    }

    #[test]
    fn the_ready_message_names_the_latest_and_the_previous_as_flux_does() {
        let mut status = ImagePolicyStatus {
            latest_ref: Some(image("1.0.1", None)),
            ..Default::default()
        };
        assert_eq!(
            ready_message(&status),
            "Latest image tag for ghcr.io/org/web resolved to 1.0.1"
        );
        status.observed_previous_ref = Some(image("1.0.0", Some("sha256:aa")));
        status.latest_ref = Some(image("1.0.1", Some("sha256:bb")));
        assert_eq!(
            ready_message(&status),
            "Latest image tag for ghcr.io/org/web resolved to 1.0.1 with digest sha256:bb \
             (previously ghcr.io/org/web:1.0.0@sha256:aa)"
        );
    }

    #[test]
    fn failures_have_fluxs_reasons_and_retry_classes() {
        let obj = policy();
        let mut status = ImagePolicyStatus::default();
        let invalid = Policy::from_spec(&ImagePolicyChoice {
            semver: Some(SemVerPolicy {
                range: "not a range".into(),
            }),
            ..Default::default()
        })
        .unwrap_err();
        summarize(&obj, &mut status, &Err(Error::InvalidPolicy(invalid)));
        let ready = conditions::get(&status.conditions, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "InvalidPolicy")
        );
        assert!(conditions::is_true(&status.conditions, STALLED));

        let waiting = Error::DependencyNotReady {
            message: "no tags".into(),
            retry: Duration::from_secs(30),
        };
        assert_eq!(waiting.class(), ErrorClass::Waiting(Duration::from_secs(30)));
        summarize(&obj, &mut status, &Err(waiting));
        assert!(conditions::get(&status.conditions, STALLED).is_none());
        assert_eq!(
            conditions::get(&status.conditions, READY).unwrap().reason,
            reasons::DEPENDENCY_NOT_READY
        );

        status.latest_ref = Some(image("1.0.1", None));
        summarize(&obj, &mut status, &Ok(Picked { changed: true }));
        let ready = conditions::get(&status.conditions, READY).unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(ready.observed_generation, Some(2));
        assert_eq!(Error::IntervalNotConfigured.class(), ErrorClass::Stalled);
    }
}
