//! Alerts: which events go to which Provider, as Flux decides (the event's namespace, `eventSeverity`,
//! `eventSources` by kind, name or `*` with `matchLabels`, `inclusionList`/`exclusionList`), and the
//! dispatch. Alert and Provider have no status: a broken one is reported by a Kubernetes Event on it,
//! a log line and a metric.

use std::{collections::BTreeMap, sync::Arc};

use driftless_api::notification::{Alert, CrossNamespaceObjectReference, Provider};
use driftless_runtime::events::{FluxEvent, Severity};
use kube::{Api, Resource, ResourceExt, api::DynamicObject, core::GroupVersionKind};
use tracing::{debug, warn};

use crate::{Context, provider};

/// Whether `source` (of an Alert in `alert_ns`) names the event's object; `labels` are the object's,
/// needed only for `name: "*"` with `matchLabels`.
pub fn source_matches(
    source: &CrossNamespaceObjectReference,
    alert_ns: &str,
    event: &FluxEvent,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let o = &event.involved_object;
    let ns = source.namespace.as_deref().unwrap_or(alert_ns);
    if o.namespace.as_deref() != Some(ns) || o.kind.as_deref() != Some(source.kind.as_str()) {
        return false;
    }
    let name = o.name.as_deref().unwrap_or_default();
    if source.name == "*" {
        return match &source.match_labels {
            Some(want) if !want.is_empty() => {
                labels.is_some_and(|l| want.iter().all(|(k, v)| l.get(k) == Some(v)))
            }
            _ => true,
        };
    }
    glob(&source.name, name)
}

/// `*` matches any run of characters (Flux accepts `*` alone; driftless also `app-*`).
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((prefix, rest)) => {
            name.starts_with(prefix)
                && (0..=name.len() - prefix.len())
                    .any(|i| name.is_char_boundary(prefix.len() + i) && glob(rest, &name[prefix.len() + i..]))
        }
    }
}

/// Compiled inclusion/exclusion regexes, by pattern (events arrive far more often than Alerts change);
/// emptied when it reaches 1024 patterns. Failures are not remembered.
fn compiled_regex(pattern: &str) -> Result<regex::Regex, String> {
    static CACHE: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, regex::Regex>>> =
        std::sync::LazyLock::new(Default::default);
    if let Some(r) = CACHE.lock().expect("regex cache").get(pattern) {
        return Ok(r.clone());
    }
    let r = regex::Regex::new(pattern).map_err(|e| format!("invalid regex '{pattern}': {e}"))?;
    let mut cache = CACHE.lock().expect("regex cache");
    if cache.len() >= 1024 {
        cache.clear();
    }
    cache.insert(pattern.to_string(), r.clone());
    Ok(r)
}

/// The Alert's filters other than sources: suspend, severity, inclusion and exclusion lists. An invalid
/// regex is an error naming it.
pub fn passes(alert: &Alert, event: &FluxEvent) -> Result<bool, String> {
    let spec = &alert.spec;
    if spec.suspend.unwrap_or(false) {
        return Ok(false);
    }
    if spec.event_severity.as_deref() == Some("error") && event.severity != Severity::Error {
        return Ok(false);
    }
    if event.severity == Severity::Trace {
        return Ok(false);
    }
    let compile = |r: &String| compiled_regex(r);
    if let Some(include) = spec.inclusion_list.as_ref().filter(|l| !l.is_empty()) {
        let mut any = false;
        for r in include {
            any |= compile(r)?.is_match(&event.message);
        }
        if !any {
            return Ok(false);
        }
    }
    for r in spec.exclusion_list.iter().flatten() {
        if compile(r)?.is_match(&event.message) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The event as `alert` sends it: metadata cleaned as Flux does, the Alert's `eventMetadata` added (the
/// event's own keys win) and its `summary`.
pub fn for_alert(alert: &Alert, event: &FluxEvent) -> FluxEvent {
    let mut e = event.clone();
    e.metadata = provider::clean_metadata(event);
    for (k, v) in alert.spec.event_metadata.iter().flatten() {
        e.metadata.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if let Some(summary) = alert.spec.summary.as_ref().filter(|s| !s.is_empty()) {
        e.metadata.insert("summary".into(), summary.clone());
    }
    e
}

/// The Alert annotation that folds repeats (beyond Flux): events of the same object and reason within
/// this window after one was sent are held and sent as one message with their count when it ends.
pub const FOLD_ANNOTATION: &str = "driftless.io/fold-window";

/// Repeats held per (Alert, object, reason).
#[derive(Default)]
pub struct Folds(std::sync::Mutex<std::collections::HashMap<String, Fold>>);

struct Fold {
    until: std::time::Instant,
    held: usize,
    last: Option<FluxEvent>,
}

/// What to do with an event under a fold window.
#[derive(Debug, PartialEq, Eq)]
pub enum Folding {
    /// Send it now; a window starts.
    Send,
    /// Hold it; the first held event of the window asks for a flush at the window's end.
    Hold {
        /// Schedule the flush.
        flush: bool,
    },
}

impl Folds {
    /// Decides for `event` under `key` and `window`, at `now`.
    pub fn decide(
        &self,
        key: &str,
        window: std::time::Duration,
        event: &FluxEvent,
        now: std::time::Instant,
    ) -> Folding {
        let mut folds = self.0.lock().expect("folds lock");
        match folds.get_mut(key) {
            Some(f) if now < f.until => {
                f.held += 1;
                f.last = Some(event.clone());
                Folding::Hold { flush: f.held == 1 }
            }
            _ => {
                folds.insert(
                    key.to_string(),
                    Fold {
                        until: now + window,
                        held: 0,
                        last: None,
                    },
                );
                Folding::Send
            }
        }
    }

    /// At the window's end: the last held event, its message saying how many were folded into it.
    pub fn flush(&self, key: &str, window: std::time::Duration) -> Option<FluxEvent> {
        let mut folds = self.0.lock().expect("folds lock");
        let fold = folds.get_mut(key)?;
        let mut event = fold.last.take()?;
        let held = std::mem::take(&mut fold.held);
        event.message = format!(
            "{}\n({held} {} event{} of this object folded into this one in the last {})",
            event.message,
            event.reason,
            if held == 1 { "" } else { "s" },
            driftless_api::meta::format_duration(window)
        );
        event.metadata.insert("foldedEvents".into(), held.to_string());
        Some(event)
    }
}

/// The labels of the event's object, for `matchLabels`.
async fn labels_of(ctx: &Context, event: &FluxEvent) -> Option<BTreeMap<String, String>> {
    let o = &event.involved_object;
    let api_version = o.api_version.clone()?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let gvk = GroupVersionKind::gvk(group, version, o.kind.as_deref()?);
    let (ar, _) = kube::discovery::pinned_kind(&ctx.client, &gvk).await.ok()?;
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), o.namespace.as_deref()?, &ar);
    api.get_opt(o.name.as_deref()?)
        .await
        .ok()?
        .map(|obj| obj.labels().clone())
}

/// Sends `event` to every matching Alert's Provider, each delivery in its own task.
pub async fn dispatch(ctx: Arc<Context>, event: FluxEvent) {
    let Some(ns) = event.involved_object.namespace.clone() else {
        return;
    };
    let alerts = match Api::<Alert>::namespaced(ctx.client.clone(), &ns)
        .list(&Default::default())
        .await
    {
        Ok(list) => list.items,
        Err(e) => {
            warn!(namespace = %ns, error = %e, "listing alerts failed");
            return;
        }
    };
    let mut labels: Option<Option<BTreeMap<String, String>>> = None;
    for alert in alerts {
        let alert_ns = alert.namespace().unwrap_or_default();
        match passes(&alert, &event) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(message) => {
                report(&ctx, &alert, "InvalidSpec", &message);
                continue;
            }
        }
        let needs_labels = alert
            .spec
            .event_sources
            .iter()
            .any(|s| s.name == "*" && s.match_labels.as_ref().is_some_and(|l| !l.is_empty()));
        if needs_labels && labels.is_none() {
            labels = Some(labels_of(&ctx, &event).await);
        }
        let matched = alert
            .spec
            .event_sources
            .iter()
            .any(|s| source_matches(s, &alert_ns, &event, labels.clone().flatten().as_ref()));
        if !matched {
            continue;
        }
        let name = &alert.spec.provider_ref.name;
        let provider = match Api::<Provider>::namespaced(ctx.client.clone(), &alert_ns)
            .get_opt(name)
            .await
        {
            Ok(Some(p)) => p,
            Ok(None) => {
                report(
                    &ctx,
                    &alert,
                    "ProviderNotFound",
                    &format!("provider '{alert_ns}/{name}' not found"),
                );
                continue;
            }
            Err(e) => {
                warn!(error = %e, "reading provider failed");
                continue;
            }
        };
        if provider.spec.suspend.unwrap_or(false) {
            continue;
        }
        let target = match provider::target(&ctx.client, &provider).await {
            Ok(t) => t,
            Err(e) => {
                report(&ctx, &provider, "ProviderFailed", &e.to_string());
                continue;
            }
        };
        let out = for_alert(&alert, &event);
        let provider_name = format!("{alert_ns}/{}", provider.name_any());
        let window = alert
            .annotations()
            .get(FOLD_ANNOTATION)
            .and_then(|w| driftless_api::meta::parse_duration(w).ok())
            .filter(|w| !w.is_zero());
        if let Some(window) = window {
            let o = &event.involved_object;
            let key = format!(
                "{alert_ns}/{}|{}/{}/{}|{}",
                alert.name_any(),
                o.kind.clone().unwrap_or_default(),
                o.namespace.clone().unwrap_or_default(),
                o.name.clone().unwrap_or_default(),
                event.reason
            );
            match ctx.folds.decide(&key, window, &out, std::time::Instant::now()) {
                Folding::Send => {}
                Folding::Hold { flush } => {
                    if flush {
                        let ctx = ctx.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(window).await;
                            if let Some(folded) = ctx.folds.flush(&key, window) {
                                deliver(ctx.clone(), target, folded, provider_name).await;
                            }
                        });
                    }
                    continue;
                }
            }
        }
        tokio::spawn(deliver(ctx.clone(), target, out, provider_name));
    }
}

async fn deliver(ctx: Arc<Context>, target: provider::Target, event: FluxEvent, provider_name: String) {
    match provider::send(&ctx.http, &target, &event).await {
        Ok(()) => debug!(provider = %provider_name, "event sent"),
        Err(e) => {
            ctx.metrics.count_error("Provider", "SendFailed");
            warn!(provider = %provider_name, error = %e, "event not delivered");
        }
    }
}

/// A problem with an Alert or Provider: a Kubernetes Event on it, a log line and a metric.
fn report<K: Resource<DynamicType = ()>>(ctx: &Context, obj: &K, reason: &str, message: &str) {
    warn!(kind = %K::kind(&()), name = %obj.meta().name.clone().unwrap_or_default(), reason, message, "cannot deliver");
    ctx.metrics.count_error(&K::kind(&()), reason);
    ctx.recorder.record(
        &obj.object_ref(&()),
        Severity::Error,
        reason,
        message,
        BTreeMap::new(),
    );
}

#[cfg(test)]
mod tests {
    use driftless_api::{meta::LocalObjectReference, notification::AlertSpec};
    use k8s_openapi::api::core::v1::ObjectReference;

    use super::*;

    fn event(kind: &str, name: &str, severity: Severity, message: &str) -> FluxEvent {
        FluxEvent {
            involved_object: ObjectReference {
                api_version: Some("kustomize.toolkit.fluxcd.io/v1".into()),
                kind: Some(kind.into()),
                name: Some(name.into()),
                namespace: Some("apps".into()),
                ..Default::default()
            },
            severity,
            timestamp: String::new(),
            message: message.into(),
            reason: "ReconciliationSucceeded".into(),
            metadata: BTreeMap::new(),
            reporting_controller: "kustomize-controller".into(),
            reporting_instance: String::new(),
        }
    }

    fn source(kind: &str, name: &str) -> CrossNamespaceObjectReference {
        CrossNamespaceObjectReference {
            kind: kind.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn sources_match_by_kind_name_wildcard_namespace_and_labels() {
        let e = event("Kustomization", "web", Severity::Info, "x");
        assert!(source_matches(&source("Kustomization", "web"), "apps", &e, None));
        assert!(source_matches(&source("Kustomization", "*"), "apps", &e, None));
        assert!(source_matches(&source("Kustomization", "w*"), "apps", &e, None));
        assert!(!source_matches(&source("Kustomization", "db"), "apps", &e, None));
        assert!(!source_matches(&source("GitRepository", "web"), "apps", &e, None));
        assert!(!source_matches(
            &source("Kustomization", "web"),
            "other",
            &e,
            None
        ));
        let mut labelled = source("Kustomization", "*");
        labelled.match_labels = Some(BTreeMap::from([("team".into(), "a".into())]));
        let a = BTreeMap::from([("team".to_string(), "a".to_string())]);
        assert!(source_matches(&labelled, "apps", &e, Some(&a)));
        assert!(!source_matches(&labelled, "apps", &e, Some(&BTreeMap::new())));
    }

    #[test]
    fn severity_inclusion_exclusion_and_suspend() {
        let mut alert = Alert::new(
            "a",
            AlertSpec {
                provider_ref: LocalObjectReference { name: "p".into() },
                event_severity: Some("error".into()),
                ..Default::default()
            },
        );
        assert!(!passes(&alert, &event("K", "x", Severity::Info, "m")).unwrap());
        assert!(passes(&alert, &event("K", "x", Severity::Error, "m")).unwrap());
        alert.spec.event_severity = Some("info".into());
        alert.spec.inclusion_list = Some(vec!["^Deployment/.*".into()]);
        alert.spec.exclusion_list = Some(vec!["unchanged".into()]);
        assert!(
            passes(
                &alert,
                &event("K", "x", Severity::Info, "Deployment/a/web configured")
            )
            .unwrap()
        );
        assert!(
            !passes(
                &alert,
                &event("K", "x", Severity::Info, "Service/a/web configured")
            )
            .unwrap()
        );
        assert!(
            !passes(
                &alert,
                &event("K", "x", Severity::Info, "Deployment/a/web unchanged")
            )
            .unwrap()
        );
        alert.spec.exclusion_list = Some(vec!["(".into()]);
        assert!(
            passes(&alert, &event("K", "x", Severity::Info, "Deployment/x"))
                .unwrap_err()
                .contains("invalid regex")
        );
        alert.spec.suspend = Some(true);
        alert.spec.exclusion_list = None;
        assert!(!passes(&alert, &event("K", "x", Severity::Info, "Deployment/x")).unwrap());
    }

    #[test]
    fn repeats_within_the_window_are_folded_into_one_message_with_their_count() {
        let folds = Folds::default();
        let window = std::time::Duration::from_secs(60);
        let t0 = std::time::Instant::now();
        let e = |m: &str| event("Kustomization", "web", Severity::Error, m);
        assert_eq!(folds.decide("k", window, &e("1"), t0), Folding::Send);
        assert_eq!(
            folds.decide("k", window, &e("2"), t0),
            Folding::Hold { flush: true }
        );
        assert_eq!(
            folds.decide("k", window, &e("3"), t0),
            Folding::Hold { flush: false }
        );
        let folded = folds.flush("k", window).unwrap();
        assert_eq!(
            folded.message,
            "3\n(2 ReconciliationSucceeded events of this object folded into this one in the last 1m0s)"
        );
        assert_eq!(folded.metadata["foldedEvents"], "2");
        assert!(folds.flush("k", window).is_none(), "flushed once");
        assert_eq!(
            folds.decide("other", window, &e("1"), t0),
            Folding::Send,
            "keys are apart"
        );
        let later = t0 + window + std::time::Duration::from_secs(1);
        assert_eq!(
            folds.decide("k", window, &e("4"), later),
            Folding::Send,
            "a new window"
        );
    }

    #[test]
    fn the_alert_adds_its_metadata_and_summary() {
        let mut alert = Alert::new("a", AlertSpec::default());
        alert.spec.summary = Some("prod cluster".into());
        alert.spec.event_metadata = Some(BTreeMap::from([
            ("env".into(), "prod".into()),
            ("revision".into(), "not this".into()),
        ]));
        let mut e = event("Kustomization", "web", Severity::Info, "m");
        e.metadata.insert(
            "kustomize.toolkit.fluxcd.io/revision".into(),
            "main@sha1:1".into(),
        );
        let out = for_alert(&alert, &e);
        assert_eq!(
            out.metadata,
            BTreeMap::from([
                ("env".to_string(), "prod".to_string()),
                ("revision".to_string(), "main@sha1:1".to_string()),
                ("summary".to_string(), "prod cluster".to_string())
            ])
        );
    }
}
