//! The steps of a run: the policies `policySelector` picks in the automation's namespace (those with a
//! latest image), the GitRepository and its credentials, a clone of the checkout reference (a branch, or
//! a tag, semver range, commit or ref name checked out detached) in a temporary directory (discarded at
//! the end, whatever happens), the setters applied under `update.path`, the commit with the rendered
//! message, and the push — to the checkout branch, never forced (when it moved meanwhile, the run starts
//! again from its new head, up to three times), or to `push.branch` (created from the checkout, and
//! overwritten as Flux does), and to `push.refspec`.

use std::{collections::BTreeMap, time::Duration};

use driftless_api::{
    image::{ImagePolicy, ImageRef, ImageUpdateAutomation, ImageUpdateAutomationStatus},
    meta::parse_duration,
    source::GitRepository,
};
use driftless_git::{Auth, Options, push::Author, push::Worktree, reference::Reference};
use driftless_runtime::refs;
use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{LabelSelector, Time},
    jiff::Timestamp,
};
use kube::{Api, ResourceExt, api::ListParams};
use tracing::{info, warn};

use super::{Error, Outcome, Pushed, source_ref};
use crate::{Context, message, setters};

/// How often a push is tried again from a fresh clone when the branch moved.
const PUSH_ATTEMPTS: usize = 3;

/// `policySelector` as the API server reads a label selector.
pub fn selector_string(selector: &LabelSelector) -> Result<String, Error> {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => {
                return Err(Error::InvalidPolicySelector(format!(
                    "\"{other}\" is not a valid label selector operator"
                )));
            }
        });
    }
    Ok(parts.join(","))
}

/// The setters and `observedPolicies` of the selected policies that have a latest image.
pub fn setters_of(policies: &[ImagePolicy]) -> (BTreeMap<String, String>, BTreeMap<String, ImageRef>) {
    let mut setters = BTreeMap::new();
    let mut observed = BTreeMap::new();
    for p in policies {
        let Some(latest) = p.status.as_ref().and_then(|s| s.latest_ref.as_ref()) else {
            continue;
        };
        setters::policy_setters(
            &mut setters,
            &p.namespace().unwrap_or_default(),
            &p.name_any(),
            &latest.name,
            &latest.tag,
            latest.digest.as_deref(),
        );
        observed.insert(p.name_any(), latest.clone());
    }
    (setters, observed)
}

/// Where to clone from and push to.
struct Plan {
    url: String,
    auth: Auth,
    proxy: Option<String>,
    timeout: Duration,
    /// What to check out: `git.checkout.ref`, else the GitRepository's `ref`, else `master`.
    checkout: Reference,
    push: String,
    refspec: Option<String>,
}

impl Plan {
    /// Whether the push goes to another branch than the one checked out (always, for a tag, a commit…):
    /// the push branch is then the checkout plus the new commit, forced, as Flux's GitForcePushBranch.
    fn switches(&self) -> bool {
        !matches!(&self.checkout, Reference::Branch(b) if *b == self.push)
    }
}

async fn plan(obj: &ImageUpdateAutomation, ctx: &Context) -> Result<Plan, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let git = obj.spec.git.as_ref().ok_or_else(|| {
        Error::InvalidSourceConfig("source kind 'GitRepository' necessitates field .spec.git".into())
    })?;
    let source = source_ref(obj);
    if source.kind != "GitRepository" {
        return Err(Error::InvalidSourceConfig(format!(
            "source kind '{}' not supported",
            source.kind
        )));
    }
    refs::cross_namespace(
        ctx.config.no_cross_namespace_refs,
        &ns,
        "GitRepository",
        &source.namespace,
        &source.name,
    )
    .map_err(Error::AccessDenied)?;
    let repo = Api::<GitRepository>::namespaced(ctx.client.clone(), &source.namespace)
        .get_opt(&source.name)
        .await?
        .ok_or_else(|| {
            Error::SourceManager(format!(
                "failed to get source '{}/{}': GitRepository not found",
                source.namespace, source.name
            ))
        })?;
    let checkout_ref = git
        .checkout
        .as_ref()
        .map(|c| &c.reference)
        .or(repo.spec.reference.as_ref());
    let non_empty = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(String::from);
    let checkout = Reference::from_spec(checkout_ref);
    let push = match (git.push.as_ref().and_then(|p| non_empty(&p.branch)), &checkout) {
        (Some(branch), _) => branch,
        (None, Reference::Branch(branch)) => branch.clone(),
        (None, _) => {
            return Err(Error::InvalidSourceConfig(
                "push spec not provided, and cannot be inferred from .spec.git.checkout.ref or \
                 GitRepository .spec.ref: set spec.git.push.branch"
                    .into(),
            ));
        }
    };
    let credentials = driftless_credentials::for_repository(&ctx.client, &repo, &ctx.providers)
        .await
        .map_err(|e| Error::SourceManager(e.to_string()))?;
    let timeout = repo
        .spec
        .timeout
        .as_deref()
        .and_then(|t| parse_duration(t).ok())
        .unwrap_or(Duration::from_secs(60));
    Ok(Plan {
        url: repo.spec.url.clone(),
        auth: credentials.auth,
        proxy: credentials.proxy,
        timeout,
        checkout,
        push,
        refspec: git.push.as_ref().and_then(|p| non_empty(&p.refspec)),
    })
}

/// A clone with the setters applied.
struct Updated {
    _dir: tempfile::TempDir,
    worktree: Worktree,
    /// The checkout's revision (`main@sha1:…`, `v1.0.0@sha1:…`, `sha1:…`).
    revision: String,
    changes: setters::Result,
}

async fn clone_and_update(
    plan: &Plan,
    path: &str,
    setters: &BTreeMap<String, String>,
) -> Result<Updated, Error> {
    let (url, auth, proxy, timeout, reference) = (
        plan.url.clone(),
        plan.auth.clone(),
        plan.proxy.clone(),
        plan.timeout,
        plan.checkout.clone(),
    );
    let path = path.to_string();
    let setters = setters.clone();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::Builder::new()
            .prefix("image-automation-")
            .tempdir()
            .map_err(|e| Error::Checkout(format!("creating a working directory: {e}")))?;
        let opts = Options {
            url: &url,
            auth: &auth,
            proxy: proxy.as_deref(),
            timeout,
        };
        let (worktree, resolved) =
            Worktree::clone_at(opts, &reference, dir.path()).map_err(|e| Error::Checkout(e.to_string()))?;
        let changes = setters::update_tree(worktree.path(), &path, &setters)
            .map_err(|e| Error::Update(e.to_string()))?;
        Ok(Updated {
            _dir: dir,
            worktree,
            revision: resolved.revision,
            changes,
        })
    })
    .await
    .map_err(|e| Error::Checkout(format!("the checkout task failed: {e}")))?
}

/// Markers naming policies that exist nowhere are an error; those naming a policy another automation
/// selects (or one with no latest image yet) are left alone.
async fn check_unknown(ctx: &Context, unknown: &[setters::Unknown]) -> Result<(), Error> {
    let mut missing = Vec::new();
    for u in unknown {
        let mut parts = u.setter.splitn(3, ':');
        let (Some(ns), Some(name)) = (parts.next(), parts.next()) else {
            missing.push(format!(
                "{}:{}: marker '{}' names no policy (want '<namespace>:<name>')",
                u.path, u.line, u.setter
            ));
            continue;
        };
        if Api::<ImagePolicy>::namespaced(ctx.client.clone(), ns)
            .get_opt(name)
            .await?
            .is_none()
        {
            missing.push(format!(
                "{}:{}: marker '{}' names ImagePolicy {ns}/{name}, which does not exist",
                u.path, u.line, u.setter
            ));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Update(format!(
            "{}; create the policy or fix the marker",
            missing.join("; ")
        )))
    }
}

/// Runs the steps.
pub async fn run(
    obj: &ImageUpdateAutomation,
    ctx: &Context,
    status: &mut ImageUpdateAutomationStatus,
) -> Result<Outcome, Error> {
    let ns = obj.namespace().unwrap_or_default();
    let update = obj.spec.update.clone().unwrap_or_default();
    if let Some(s) = update.strategy.as_deref().filter(|s| *s != "Setters") {
        return Err(Error::InvalidUpdateStrategy(format!(
            "unsupported update strategy '{s}': the only strategy is 'Setters'"
        )));
    }
    let git = obj.spec.git.clone().unwrap_or_default();
    let signer = match &git.commit.signing_key {
        None => None,
        Some(key) if key.type_.as_deref().is_some_and(|t| t != "gpg") => {
            return Err(Error::InvalidSourceConfig(format!(
                "signingKey type '{}' is not supported by driftless yet: use 'gpg' (an OpenPGP key in \
                 'git.asc')",
                key.type_.as_deref().unwrap_or_default()
            )));
        }
        Some(key) => {
            let data = refs::secret_data(&ctx.client, &ns, &key.secret_ref.name)
                .await
                .map_err(|e| {
                    Error::SourceManager(format!(
                        "failed to get the signing key Secret '{ns}/{}': {}",
                        key.secret_ref.name,
                        driftless_runtime::error::api_message(&e)
                    ))
                })?;
            let name = format!("{ns}/{}", key.secret_ref.name);
            Some(std::sync::Arc::new(
                driftless_git::Signer::from_secret(&data, &name)
                    .map_err(|e| Error::InvalidSourceConfig(e.to_string()))?,
            ))
        }
    };
    let template = message::parse(git.commit.message_template.as_deref()).map_err(Error::Template)?;

    // the policies
    let mut params = ListParams::default();
    if let Some(selector) = &obj.spec.policy_selector {
        params = params.labels(&selector_string(selector)?);
    }
    let policies = Api::<ImagePolicy>::namespaced(ctx.client.clone(), &ns)
        .list(&params)
        .await
        .map_err(|e| match e {
            kube::Error::Api(ref s) if s.code == 400 => Error::InvalidPolicySelector(s.message.clone()),
            e => Error::Kube(e),
        })?;
    let (setters, observed) = setters_of(&policies.items);

    let plan = plan(obj, ctx).await?;
    let path = update.path.unwrap_or_default();
    let author_name = git
        .commit
        .author
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "driftless".into());
    let author_email = git.commit.author.email.clone();
    let switch = plan.switches();
    for attempt in 1..=PUSH_ATTEMPTS {
        let updated = clone_and_update(&plan, &path, &setters).await?;
        check_unknown(ctx, &updated.changes.unknown).await?;
        let checkout_revision = updated.revision.clone();
        status.observed_policies = Some(observed.clone());
        if updated.changes.files.is_empty() {
            status.observed_source_revision = Some(checkout_revision);
            status.last_automation_run_time = Some(Time(Timestamp::now()));
            return Ok(Outcome::default());
        }
        let data = message::data(
            &ns,
            &obj.name_any(),
            &updated.changes,
            &git.commit.message_template_values.clone().unwrap_or_default(),
        );
        let text = message::render(&template, &data).map_err(Error::Template)?;
        let (push, refspec, name, email) = (
            plan.push.clone(),
            plan.refspec.clone(),
            author_name.clone(),
            author_email.clone(),
        );
        let (url, auth, proxy, timeout) = (
            plan.url.clone(),
            plan.auth.clone(),
            plan.proxy.clone(),
            plan.timeout,
        );
        let message = text.clone();
        let signer = signer.clone();
        let pushed = tokio::task::spawn_blocking(move || -> Result<Option<String>, driftless_git::Error> {
            let worktree = &updated.worktree;
            let Some(commit) = worktree.commit_signed(
                &Author {
                    name: &name,
                    email: &email,
                },
                &message,
                signer.as_deref(),
            )?
            else {
                return Ok(None);
            };
            let opts = Options {
                url: &url,
                auth: &auth,
                proxy: proxy.as_deref(),
                timeout,
            };
            if switch {
                // NB: Flux's GitForcePushBranch: the push branch is the checkout branch plus this commit
                worktree.push_refspec(opts, &format!("+HEAD:refs/heads/{push}"))?;
            } else {
                worktree.push(opts, &push)?;
            }
            if let Some(r) = &refspec {
                worktree.push_refspec(opts, r)?;
            }
            Ok(Some(commit))
        })
        .await
        .map_err(|e| Error::Push(format!("the push task failed: {e}")))?;
        let commit = match pushed {
            Ok(Some(commit)) => commit,
            Ok(None) => {
                status.observed_source_revision = Some(checkout_revision);
                status.last_automation_run_time = Some(Time(Timestamp::now()));
                return Ok(Outcome::default());
            }
            Err(driftless_git::Error::Rejected(why)) if attempt < PUSH_ATTEMPTS && !switch => {
                warn!(attempt, "{why}; updating again from the new head");
                continue;
            }
            Err(e) => return Err(Error::Push(e.to_string())),
        };
        info!(%commit, branch = %plan.push, "pushed");
        let now = Time(Timestamp::now());
        status.observed_source_revision = Some(if switch {
            checkout_revision
        } else {
            format!("{}@sha1:{commit}", plan.push)
        });
        status.last_push_commit = Some(commit.clone());
        status.last_push_time = Some(now.clone());
        status.last_automation_run_time = Some(now);
        return Ok(Outcome {
            pushed: Some(Pushed {
                commit,
                branch: plan.push.clone(),
                refspec: plan.refspec.clone(),
                message: text,
            }),
        });
    }
    Err(Error::Push(format!(
        "the branch '{}' kept moving: {PUSH_ATTEMPTS} pushes were rejected",
        plan.push
    )))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    #[test]
    fn a_policy_selector_is_read_as_the_api_server_reads_it() {
        let selector = LabelSelector {
            match_labels: Some(BTreeMap::from([("team".to_string(), "web".to_string())])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "env".into(),
                    operator: "In".into(),
                    values: Some(vec!["prod".into(), "stage".into()]),
                },
                LabelSelectorRequirement {
                    key: "skip".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert_eq!(
            selector_string(&selector).unwrap(),
            "team=web,env in (prod,stage),!skip"
        );
        let bad = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "x".into(),
                operator: "Near".into(),
                values: None,
            }]),
            ..Default::default()
        };
        assert!(matches!(
            selector_string(&bad),
            Err(Error::InvalidPolicySelector(_))
        ));
    }

    #[test]
    fn only_policies_with_a_latest_image_make_setters() {
        let mut with = ImagePolicy::new("web", Default::default());
        with.metadata.namespace = Some("apps".into());
        with.status = Some(driftless_api::image::ImagePolicyStatus {
            latest_ref: Some(ImageRef {
                name: "ghcr.io/org/web".into(),
                tag: "1.0.1".into(),
                digest: None,
            }),
            ..Default::default()
        });
        let mut without = ImagePolicy::new("api", Default::default());
        without.metadata.namespace = Some("apps".into());
        let (setters, observed) = setters_of(&[with, without]);
        assert_eq!(setters["apps:web"], "ghcr.io/org/web:1.0.1");
        assert_eq!(setters["apps:web:tag"], "1.0.1");
        assert!(!setters.contains_key("apps:api"));
        assert_eq!(observed.keys().collect::<Vec<_>>(), ["web"]);
    }
}
