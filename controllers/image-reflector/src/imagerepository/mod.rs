//! ImageRepository on the shared reconcile lifecycle: the image name checked and made canonical
//! (`alpine` is `index.docker.io/library/alpine`), the registry's credentials read (`secretRef`,
//! `serviceAccountName`'s pull secrets, `certSecretRef`, `proxySecretRef`), and — only when a scan is due
//! (never scanned, a reconcile requested, a new image or exclusion list, no tags stored, or the interval
//! passed since `lastScanResult.scanTime`, which survives a restart) — every tag listed page by page,
//! the excluded ones dropped (`exclusionList`, default `^.*\.sig$`), and the rest stored with Flux's
//! checksum as the scan's revision. A failed scan keeps the stored tags: policies go on with them.

use std::{sync::Arc, time::Duration};

use driftless_api::{
    image::{ImageRepository, ImageRepositoryStatus, ScanResult},
    meta::{
        conditions::{READY, RECONCILING, STALLED, reasons},
        parse_duration,
    },
    source::CloudProvider,
};
use driftless_credentials::oci::{RegistryRefs, for_registry};
use driftless_oci::{Client, Repository};
use driftless_runtime::{
    conditions, controller as run_loop,
    error::{ErrorClass, ReconcileError},
    events::Severity,
    manager::{watched_api, watcher_config},
    reconcile::{Reconciler, Runtime, StatusWriter, error_policy, reconcile},
    request::{is_suspended, requested_at},
};
use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{Api, Resource, ResourceExt};
use tracing::info;

use crate::{
    Context, FIELD_MANAGER,
    store::{self, RepoId},
};

/// Flux's default `exclusionList`: cosign signatures are not images.
pub const DEFAULT_EXCLUSION: &str = "^.*\\.sig$";
/// How many tags `lastScanResult.latestTags` shows.
const LATEST_TAGS: usize = 10;

/// Flux's reason of an image name that cannot be parsed.
pub const IMAGE_URL_INVALID: &str = "ImageURLInvalid";
/// Flux's reason of a failed scan.
pub const READ_OPERATION_FAILED: &str = "ReadOperationFailed";

/// A failed step, with Flux's reasons and messages.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `spec.image` is not an image repository name.
    #[error("{0}")]
    ImageUrl(String),
    /// The spec cannot work (an unsupported provider, a bad exclusion pattern).
    #[error("{0}")]
    InvalidSpec(String),
    /// The registry's credentials, certificates or proxy could not be had.
    #[error("failed to configure authentication options: {0}")]
    Credentials(#[from] driftless_credentials::Error),
    /// Listing the tags failed.
    #[error("scan failed: {0}")]
    Scan(#[source] driftless_oci::Error),
    /// The tag database failed.
    #[error("{0}")]
    Store(#[from] store::Error),
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
            Error::ImageUrl(_) => IMAGE_URL_INVALID,
            Error::InvalidSpec(_) => reasons::INVALID_SPEC,
            Error::Credentials(_) => reasons::AUTHENTICATION_FAILED,
            Error::Scan(driftless_oci::Error::Unauthorized(_)) => reasons::AUTHENTICATION_FAILED,
            Error::Scan(_) => READ_OPERATION_FAILED,
            Error::Store(_) | Error::Kube(_) | Error::Finalizer(_) => "Failure",
        }
    }

    fn class(&self) -> ErrorClass {
        match self {
            Error::ImageUrl(_) | Error::InvalidSpec(_) => ErrorClass::Stalled,
            Error::Credentials(driftless_credentials::Error::InvalidSpec(_)) => ErrorClass::Stalled,
            _ => ErrorClass::Transient,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Scanned {
    /// Whether the registry was scanned.
    pub scanned: bool,
    /// Whether the tags differ from the previous scan's.
    pub changed: bool,
    /// When the next scan is due.
    pub next: Duration,
}

/// `spec.image` checked as Flux checks it, with its canonical name.
pub fn parse_image(image: &str) -> Result<(Repository, String), Error> {
    if let Some((scheme, _)) = image.split_once("://") {
        return Err(Error::ImageUrl(format!(
            "image '{image}' should not include URL scheme; remove '{scheme}://'"
        )));
    }
    if image.contains('@') {
        return Err(Error::ImageUrl(format!(
            "image '{image}' should not include a digest; remove '@{}'",
            image.split_once('@').map_or("", |(_, d)| d)
        )));
    }
    // a colon after the registry (its port) names a tag
    let path = match image.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => rest,
        _ => image,
    };
    if let Some((_, tag)) = path.split_once(':') {
        return Err(Error::ImageUrl(format!(
            "image '{image}' should not include a tag; remove ':{tag}'"
        )));
    }
    let repo = Repository::parse(&format!("oci://{image}")).map_err(|e| Error::ImageUrl(e.to_string()))?;
    let registry = if repo.registry == "docker.io" {
        "index.docker.io"
    } else {
        repo.registry.as_str()
    };
    let canonical = format!("{registry}/{}", repo.repository);
    Ok((repo, canonical))
}

/// The exclusion list in force.
pub fn exclusion_list(obj: &ImageRepository) -> Vec<String> {
    obj.spec
        .exclusion_list
        .clone()
        .unwrap_or_else(|| vec![DEFAULT_EXCLUSION.to_string()])
}

/// Why a scan is due now (Flux's words), or how long until it is.
pub fn scan_due(
    obj: &ImageRepository,
    status: &ImageRepositoryStatus,
    canonical: &str,
    stored_tags: usize,
    interval: Duration,
    now: Timestamp,
) -> Result<&'static str, Duration> {
    let Some(last) = &status.last_scan_result else {
        return Ok("first scan");
    };
    if let Some(requested) = requested_at(obj)
        && Some(requested) != status.reconcile_request.last_handled_reconcile_at.as_deref()
    {
        return Ok("reconcile requested");
    }
    if status.canonical_image_name.as_deref() != Some(canonical) {
        return Ok("new image name");
    }
    let wanted = exclusion_list(obj);
    let observed = status.observed_exclusion_list.clone().unwrap_or_default();
    if wanted.len() != observed.len() || wanted.iter().any(|w| !observed.contains(w)) {
        return Ok("updated exclusion list");
    }
    if stored_tags == 0 {
        return Ok("no tags in database");
    }
    let since = last.scan_time.as_ref().map_or(interval, |t| {
        Duration::try_from(now.duration_since(t.0)).unwrap_or_default()
    });
    match interval.checked_sub(since) {
        Some(left) if left >= Duration::from_secs(1) => Err(left),
        _ => Ok("triggered by interval"),
    }
}

/// The tags kept: those no exclusion pattern matches, newest-looking first (descending), as Flux
/// stores them.
pub fn kept_tags(tags: Vec<String>, exclusion: &[String]) -> Result<Vec<String>, Error> {
    let patterns = exclusion
        .iter()
        .map(|p| {
            regex::Regex::new(p).map_err(|e| Error::InvalidSpec(format!("failed to compile regex {p}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut kept: Vec<String> = tags
        .into_iter()
        .filter(|t| !patterns.iter().any(|p| p.is_match(t)))
        .collect();
    kept.sort_by(|a, b| b.cmp(a));
    Ok(kept)
}

async fn run_steps(
    obj: &ImageRepository,
    ctx: &Context,
    status: &mut ImageRepositoryStatus,
) -> Result<Scanned, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let (repo, canonical) = parse_image(&obj.spec.image)?;
    let provider = obj.spec.provider.unwrap_or_default();
    if provider != CloudProvider::Generic {
        return Err(Error::InvalidSpec(format!(
            "provider '{}' is not supported yet: use 'generic' with spec.secretRef",
            serde_json::to_value(provider)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        )));
    }
    let exclusion = exclusion_list(obj);
    let interval = parse_duration(&obj.spec.interval).map_err(|e| Error::InvalidSpec(e.to_string()))?;
    let id = RepoId {
        namespace: &ns,
        name: &name,
        canonical: &canonical,
    };
    let stored = ctx.store.tags(id)?.len();
    let reason = match scan_due(obj, status, &canonical, stored, interval, Timestamp::now()) {
        Ok(reason) => reason,
        Err(left) => {
            return Ok(Scanned {
                scanned: false,
                changed: false,
                next: left,
            });
        }
    };
    info!(reason, image = %obj.spec.image, "scanning");
    let timeout = timeout(obj);
    let (keychain, options) = for_registry(
        &ctx.client,
        RegistryRefs {
            namespace: &ns,
            secret: obj.spec.secret_ref.as_ref(),
            service_account: obj.spec.service_account_name.as_deref(),
            cert_secret: obj.spec.cert_secret_ref.as_ref(),
            proxy_secret: obj.spec.proxy_secret_ref.as_ref(),
            insecure: obj.spec.insecure.unwrap_or(false),
        },
        timeout,
    )
    .await?;
    let client = Client::new(&repo, &keychain, &options, &ctx.oci)
        .await
        .map_err(Error::Scan)?;
    let tags = kept_tags(client.tags().await.map_err(Error::Scan)?, &exclusion)?;
    let revision = ctx.store.set_tags(id, &tags)?;
    let previous = status.last_scan_result.as_ref().and_then(|r| r.revision.clone());
    status.last_scan_result = Some(ScanResult {
        revision: Some(revision.clone()),
        tag_count: tags.len() as i64,
        scan_time: Some(Time(Timestamp::now())),
        latest_tags: (!tags.is_empty()).then(|| tags.iter().take(LATEST_TAGS).cloned().collect()),
    });
    status.canonical_image_name = Some(canonical);
    status.observed_exclusion_list = Some(exclusion);
    Ok(Scanned {
        scanned: true,
        changed: previous.as_deref() != Some(revision.as_str()),
        next: interval,
    })
}

/// `spec.timeout`, or the interval (Flux's default).
pub fn timeout(obj: &ImageRepository) -> Duration {
    obj.spec
        .timeout
        .as_deref()
        .or(Some(obj.spec.interval.as_str()))
        .and_then(|t| parse_duration(t).ok())
        .unwrap_or(Duration::from_secs(60))
}

/// Runs the ImageRepository controller until its stream ends.
pub async fn run(ctx: Arc<Context>) {
    let api: Api<ImageRepository> = watched_api(ctx.client.clone(), &ctx.config);
    let (ctrl, _store) = run_loop::for_kind(
        api,
        watcher_config(&ctx.config),
        ctx.config.concurrent,
        ctx.metrics.progress.clone(),
    );
    let repositories = Arc::new(ImageRepositories(ctx));
    run_loop::drain(ctrl.run(
        reconcile::<ImageRepositories>,
        error_policy::<ImageRepositories>,
        repositories,
    ))
    .await;
}

/// The ImageRepository reconciler.
pub struct ImageRepositories(pub Arc<Context>);

impl Reconciler for ImageRepositories {
    type Object = ImageRepository;
    type Status = ImageRepositoryStatus;
    type Outcome = Scanned;
    type Error = Error;
    const FIELD_MANAGER: &'static str = FIELD_MANAGER;

    fn runtime(&self) -> Runtime<'_> {
        self.0.runtime()
    }

    fn status(obj: &ImageRepository) -> Option<&ImageRepositoryStatus> {
        obj.status.as_ref()
    }

    fn suspended(obj: &ImageRepository) -> bool {
        is_suspended(obj.spec.suspend)
    }

    fn interval(obj: &ImageRepository) -> Result<Duration, Error> {
        parse_duration(&obj.spec.interval).map_err(|e| Error::InvalidSpec(e.to_string()))
    }

    fn timeout(obj: &ImageRepository) -> Duration {
        timeout(obj) + Duration::from_secs(30)
    }

    fn next_run(outcome: &Scanned) -> Option<Duration> {
        Some(outcome.next)
    }

    async fn run(
        &self,
        obj: &ImageRepository,
        status: &mut ImageRepositoryStatus,
        _writer: &mut StatusWriter<ImageRepository, ImageRepositoryStatus>,
    ) -> Result<Scanned, Error> {
        run_steps(obj, &self.0, status).await
    }

    fn summarize(obj: &ImageRepository, status: &mut ImageRepositoryStatus, result: &Result<Scanned, Error>) {
        summarize(obj, status, result);
    }

    fn after(&self, obj: &ImageRepository, status: &ImageRepositoryStatus, result: &Result<Scanned, Error>) {
        let Ok(scanned) = result else {
            return;
        };
        let was_ready = obj
            .status
            .as_ref()
            .is_some_and(|s| conditions::is_true(&s.conditions, READY));
        // a changed scan, or Ready again: an event (Flux's `notify`)
        if (scanned.scanned && scanned.changed) || !was_ready {
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

    async fn cleanup(&self, obj: &ImageRepository) -> Result<(), Error> {
        self.0
            .store
            .delete(&obj.namespace().unwrap_or_default(), &obj.name_any())?;
        Ok(())
    }
}

fn ready_message(status: &ImageRepositoryStatus) -> String {
    let (count, revision) = status.last_scan_result.as_ref().map_or((0, String::new()), |r| {
        (r.tag_count, r.revision.clone().unwrap_or_default())
    });
    format!("successful scan: found {count} tags with checksum {revision}")
}

/// The conditions after a run: Ready with the scan's tag count and checksum, or Ready=False with the
/// reason (and Stalled when only a spec change helps).
fn summarize(obj: &ImageRepository, status: &mut ImageRepositoryStatus, result: &Result<Scanned, Error>) {
    let generation = obj.metadata.generation;
    conditions::delete(&mut status.conditions, RECONCILING);
    match result {
        Ok(scanned) => {
            conditions::delete(&mut status.conditions, STALLED);
            // NB: the same words until the tags change, so an idle repository writes no status
            let _ = scanned;
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
mod tests;
