//! kstatus conditions, as fluxcd/pkg `runtime/conditions` keeps them: `lastTransitionTime` changes only
//! when status, reason or message change; `Reconciling` and `Stalled` exist only while True; `Ready` is
//! summarised last from the others and listed first.

use driftless_api::meta::conditions::{READY, RECONCILING, STALLED, reasons};
use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};

/// The status of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `"True"`.
    True,
    /// `"False"`.
    False,
    /// `"Unknown"`.
    Unknown,
}

impl Status {
    /// The string Kubernetes uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

/// Condition types that exist only while True (kstatus "abnormal-true" markers).
const ONLY_WHILE_TRUE: &[&str] = &[RECONCILING, STALLED];

/// Sets a condition of `type_`, keeping its `lastTransitionTime` unless status, reason or message change.
/// `Reconciling` and `Stalled` are removed instead of being set to anything but True.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: Status,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
) {
    if status != Status::True && ONLY_WHILE_TRUE.contains(&type_) {
        delete(conditions, type_);
        return;
    }
    let mut new = Condition {
        type_: type_.to_string(),
        status: status.as_str().to_string(),
        reason: reason.to_string(),
        message: bounded(message),
        observed_generation,
        last_transition_time: Time(Timestamp::now()),
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(old) => {
            if old.status == new.status && old.reason == new.reason && old.message == new.message {
                new.last_transition_time = old.last_transition_time.clone();
            }
            *old = new;
        }
        None => conditions.push(new),
    }
    sort(conditions);
}

/// Sets `type_` to True.
pub fn mark_true(
    conditions: &mut Vec<Condition>,
    type_: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    set(conditions, type_, Status::True, reason, message, generation);
}

/// The longest message a condition may hold (`metav1.Condition`'s schema): a longer one would make the
/// API server refuse the whole status write.
pub const MAX_MESSAGE: usize = 32768;

/// `message` cut to [`MAX_MESSAGE`] bytes (at a character boundary), marked as cut.
fn bounded(message: &str) -> String {
    if message.len() <= MAX_MESSAGE {
        return message.to_string();
    }
    const MARK: &str = "… (truncated)";
    let mut end = MAX_MESSAGE - MARK.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &message[..end])
}

/// Sets `type_` to False.
pub fn mark_false(
    conditions: &mut Vec<Condition>,
    type_: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    set(conditions, type_, Status::False, reason, message, generation);
}

/// Sets `type_` to Unknown.
pub fn mark_unknown(
    conditions: &mut Vec<Condition>,
    type_: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    set(conditions, type_, Status::Unknown, reason, message, generation);
}

/// Marks the object as being reconciled (`Reconciling=True`), Flux's "progressive status".
pub fn mark_reconciling(
    conditions: &mut Vec<Condition>,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    mark_true(conditions, RECONCILING, reason, message, generation);
}

/// What a failed reconcile leaves of `Reconciling`, as Flux writes it: a failure of `class` that may pass
/// is retried, so `Reconciling` stays True with reason `ProgressingWithRetry` and `progress`; a stalled one
/// (only a spec change helps) drops it.
pub fn mark_failed_attempt(
    conditions: &mut Vec<Condition>,
    class: crate::error::ErrorClass,
    progress: &str,
    generation: Option<i64>,
) {
    match class {
        crate::error::ErrorClass::Stalled => delete(conditions, RECONCILING),
        _ => mark_reconciling(conditions, reasons::PROGRESSING_WITH_RETRY, progress, generation),
    }
}

/// The end of a failed run of a kind whose `Ready` carries the failure itself: `Reconciling` as
/// [`mark_failed_attempt`] leaves it (`progress` while retried), `Stalled` when only a spec change helps,
/// and `Ready=False` with the error's reason and message.
pub fn mark_failed_run(
    conditions: &mut Vec<Condition>,
    err: &dyn crate::error::ReconcileError,
    progress: &str,
    generation: Option<i64>,
) {
    let message = err.to_string();
    mark_failed_attempt(conditions, err.class(), progress, generation);
    if err.class() == crate::error::ErrorClass::Stalled {
        mark_stalled(conditions, err.reason(), &message, generation);
    }
    mark_false(conditions, READY, err.reason(), &message, generation);
}

/// Marks the object as stalled (`Stalled=True`): only a change of the spec can help.
pub fn mark_stalled(conditions: &mut Vec<Condition>, reason: &str, message: &str, generation: Option<i64>) {
    mark_true(conditions, STALLED, reason, message, generation);
}

/// Removes the condition of `type_`.
pub fn delete(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

/// The condition of `type_`, if set.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of `type_` is True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_some_and(|c| c.status == "True")
}

/// Whether the object is Ready for its current generation (what `kubectl wait --for=condition=Ready` and
/// kstatus check): Ready=True and observed at `generation`.
pub fn is_ready(conditions: &[Condition], generation: Option<i64>) -> bool {
    get(conditions, READY)
        .is_some_and(|c| c.status == "True" && (generation.is_none() || c.observed_generation == generation))
}

/// Ready first, then by type (fluxcd/pkg `conditions.lexicographicLess`).
fn sort(conditions: &mut [Condition]) {
    conditions.sort_by(|a, b| (a.type_ != READY, &a.type_).cmp(&(b.type_ != READY, &b.type_)));
}

/// How to summarise Ready from the other conditions of a kind.
pub struct Summary<'a> {
    /// Condition types in priority order: the first one that is "bad" decides Ready.
    pub order: &'a [&'a str],
    /// The types that are bad when True (`Stalled`, `Reconciling`, `FetchFailed`, …); the rest are bad
    /// when False.
    pub negative_polarity: &'a [&'a str],
}

/// Summarises `Ready` last: False with the reason and message of the first bad condition in `order`
/// (Unknown while only `Reconciling` is), otherwise True with the reason and message of the first True
/// positive condition, or of `success_reason`/`success_message` when none is listed.
pub fn summarize(
    conditions: &mut Vec<Condition>,
    summary: &Summary<'_>,
    success_reason: &str,
    success_message: &str,
    generation: Option<i64>,
) {
    let bad = summary.order.iter().filter_map(|t| get(conditions, t)).find(|c| {
        let negative = summary.negative_polarity.contains(&c.type_.as_str());
        (negative && c.status == "True") || (!negative && c.status == "False")
    });
    let (status, reason, message) = match bad {
        Some(c) if c.type_ == RECONCILING => (Status::Unknown, c.reason.clone(), c.message.clone()),
        Some(c) => (Status::False, c.reason.clone(), c.message.clone()),
        None => summary
            .order
            .iter()
            .filter(|t| !summary.negative_polarity.contains(t))
            .filter_map(|t| get(conditions, t))
            .find(|c| c.status == "True")
            .map(|c| (Status::True, c.reason.clone(), c.message.clone()))
            .unwrap_or((
                Status::True,
                success_reason.to_string(),
                success_message.to_string(),
            )),
    };
    set(conditions, READY, status, &reason, &message, generation);
}

/// Ready=False with `reason`, and no `Reconciling`: the end of a failed run.
pub fn mark_failed(conditions: &mut Vec<Condition>, reason: &str, message: &str, generation: Option<i64>) {
    delete(conditions, RECONCILING);
    mark_false(conditions, READY, reason, message, generation);
}

/// Ready=Unknown with `Progressing` and Reconciling=True: the start of a run on a new generation.
pub fn mark_progressing(conditions: &mut Vec<Condition>, message: &str, generation: Option<i64>) {
    mark_reconciling(conditions, reasons::PROGRESSING, message, generation);
    mark_unknown(conditions, READY, reasons::PROGRESSING, message, generation);
}

#[cfg(test)]
mod tests {
    use driftless_api::meta::conditions::{ARTIFACT_IN_STORAGE, FETCH_FAILED};

    use super::*;

    fn backdate(conditions: &mut [Condition]) {
        for c in conditions {
            c.last_transition_time = Time("2020-01-01T00:00:00Z".parse().unwrap());
        }
    }

    #[test]
    fn messages_are_cut_to_what_the_schema_allows() {
        let mut conditions = Vec::new();
        let long = "é".repeat(MAX_MESSAGE);
        mark_false(&mut conditions, "Ready", "BuildFailed", &long, Some(1));
        let message = &conditions[0].message;
        assert!(
            message.len() <= MAX_MESSAGE && message.ends_with("(truncated)"),
            "{}",
            message.len()
        );
        mark_false(&mut conditions, "Ready", "BuildFailed", "short", Some(1));
        assert_eq!(conditions[0].message, "short");
    }

    #[test]
    fn a_retried_failure_keeps_reconciling_and_a_stalled_one_drops_it() {
        use crate::error::ErrorClass;
        let mut c = Vec::new();
        mark_progressing(&mut c, "working", Some(1));
        mark_failed_attempt(&mut c, ErrorClass::Transient, "retrying", Some(1));
        let r = get(&c, RECONCILING).unwrap();
        assert_eq!(
            (r.status.as_str(), r.reason.as_str(), r.message.as_str()),
            ("True", "ProgressingWithRetry", "retrying")
        );
        mark_failed_attempt(&mut c, ErrorClass::Stalled, "unused", Some(1));
        assert!(get(&c, RECONCILING).is_none());
    }

    #[test]
    fn transition_time_is_kept_when_nothing_but_generation_changes() {
        let mut c = Vec::new();
        mark_true(&mut c, READY, "Succeeded", "stored", Some(1));
        backdate(&mut c);
        mark_true(&mut c, READY, "Succeeded", "stored", Some(2));
        assert_eq!(c[0].last_transition_time.0.to_string(), "2020-01-01T00:00:00Z");
        assert_eq!(c[0].observed_generation, Some(2));
    }

    #[test]
    fn transition_time_changes_with_status_reason_or_message() {
        for (status, reason, message) in [
            (Status::False, "Succeeded", "stored"),
            (Status::True, "Other", "stored"),
            (Status::True, "Succeeded", "new"),
        ] {
            let mut c = Vec::new();
            mark_true(&mut c, READY, "Succeeded", "stored", Some(1));
            backdate(&mut c);
            set(&mut c, READY, status, reason, message, Some(1));
            assert_ne!(
                c[0].last_transition_time.0.to_string(),
                "2020-01-01T00:00:00Z",
                "{status:?} {reason} {message}"
            );
        }
    }

    #[test]
    fn reconciling_and_stalled_exist_only_while_true() {
        let mut c = Vec::new();
        mark_reconciling(&mut c, "Progressing", "working", Some(1));
        mark_stalled(&mut c, "InvalidSpec", "bad", Some(1));
        assert_eq!(c.len(), 2);
        mark_false(&mut c, RECONCILING, "Done", "", Some(1));
        set(&mut c, STALLED, Status::Unknown, "Done", "", Some(1));
        assert!(c.is_empty());
    }

    #[test]
    fn ready_is_listed_first() {
        let mut c = Vec::new();
        mark_true(&mut c, ARTIFACT_IN_STORAGE, "Succeeded", "stored", Some(1));
        mark_true(&mut c, FETCH_FAILED, "GitOperationFailed", "boom", Some(1));
        mark_true(&mut c, READY, "Succeeded", "stored", Some(1));
        let types: Vec<_> = c.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, [READY, ARTIFACT_IN_STORAGE, FETCH_FAILED]);
    }

    const SOURCE: Summary<'static> = Summary {
        order: &[STALLED, FETCH_FAILED, ARTIFACT_IN_STORAGE, RECONCILING],
        negative_polarity: &[STALLED, FETCH_FAILED, RECONCILING],
    };

    #[test]
    fn ready_summarises_the_first_bad_condition() {
        let mut c = Vec::new();
        mark_true(
            &mut c,
            ARTIFACT_IN_STORAGE,
            "Succeeded",
            "stored artifact",
            Some(3),
        );
        mark_true(
            &mut c,
            FETCH_FAILED,
            "GitOperationFailed",
            "clone failed",
            Some(3),
        );
        summarize(&mut c, &SOURCE, "Succeeded", "ok", Some(3));
        let ready = get(&c, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "GitOperationFailed")
        );
        assert_eq!(ready.message, "clone failed");
    }

    #[test]
    fn ready_is_unknown_while_only_reconciling() {
        let mut c = Vec::new();
        mark_progressing(&mut c, "reconciliation in progress", Some(1));
        summarize(&mut c, &SOURCE, "Succeeded", "ok", Some(1));
        assert_eq!(get(&c, READY).unwrap().status, "Unknown");
        assert!(!is_ready(&c, Some(1)));
    }

    #[test]
    fn ready_is_true_with_the_first_positive_message() {
        let mut c = Vec::new();
        mark_true(
            &mut c,
            ARTIFACT_IN_STORAGE,
            "Succeeded",
            "stored artifact for revision 'main@sha1:abc'",
            Some(2),
        );
        summarize(&mut c, &SOURCE, "Succeeded", "ok", Some(2));
        let ready = get(&c, READY).unwrap();
        assert_eq!(ready.message, "stored artifact for revision 'main@sha1:abc'");
        assert!(is_ready(&c, Some(2)));
        assert!(
            !is_ready(&c, Some(3)),
            "ready for an older generation is not ready"
        );
    }

    #[test]
    fn failing_ends_reconciling() {
        let mut c = Vec::new();
        mark_progressing(&mut c, "working", Some(1));
        mark_failed(&mut c, "BuildFailed", "kustomize build failed", Some(1));
        assert!(get(&c, RECONCILING).is_none());
        assert_eq!(get(&c, READY).unwrap().reason, "BuildFailed");
    }
}
