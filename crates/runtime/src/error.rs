//! The error model every reconciler shares: each error names a PascalCase reason and a class, and one
//! policy maps the class to a requeue (Flux: stalling → wait for a spec change, waiting → the dependency
//! interval, generic → retry with backoff or `spec.retryInterval`).

use std::{collections::HashMap, sync::Mutex, time::Duration};

use kube::runtime::controller::Action;

use crate::request::jitter;

/// What a failed reconcile can expect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Only a change of the spec can help: wait for it (the watch brings it).
    Stalled,
    /// Something else must become ready first: look again after this long.
    Waiting(Duration),
    /// May pass by itself: retry with backoff.
    Transient,
    /// The API server (or another service the reconcile needs) did not answer or was overloaded: retry
    /// with backoff, whatever the kind's `spec.retryInterval` (as Flux does for an error it returns), so
    /// the object recovers soon after the service does.
    Unavailable,
}

/// Whether `err` says the API server was unreachable, overloaded or failing (no answer, a timeout, 429,
/// 5xx) rather than that it refused the request: worth retrying soon.
pub fn is_unavailable(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// The message of a Kubernetes API error as the API server wrote it (`secrets "x" not found`), or the
/// error itself for other failures: what users read in conditions, without the client's debug output.
pub fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// An error and its causes, `: `-joined, each once (a connection error's cause is in its source, and
/// what users need to read).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text = format!("{text}: {s_text}");
        }
        source = s.source();
    }
    text
}

/// Implemented by every reconciler error.
pub trait ReconcileError: std::error::Error {
    /// The PascalCase reason: condition reason, event reason, metric label.
    fn reason(&self) -> &'static str;
    /// How the failure is retried.
    fn class(&self) -> ErrorClass;
}

/// Requeue policy: jittered `spec.interval` after success; by error class after failure, with per-object
/// exponential backoff between `min_retry_delay` and `max_retry_delay` for transient errors of kinds
/// without `spec.retryInterval`.
#[derive(Debug)]
pub struct RetryPolicy {
    min_retry_delay: Duration,
    max_retry_delay: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl RetryPolicy {
    /// A policy with Flux's `--min-retry-delay` and `--max-retry-delay`.
    pub fn new(min_retry_delay: Duration, max_retry_delay: Duration) -> Self {
        Self {
            min_retry_delay,
            max_retry_delay,
            failures: Mutex::default(),
        }
    }

    /// After a successful run of the object `key`: forget its failures, come back after `interval`
    /// (jittered).
    pub fn on_success(&self, key: &str, interval: Duration) -> Action {
        self.failures.lock().expect("retry lock").remove(key);
        Action::requeue(jitter(interval))
    }

    /// After a failed run of the object `key`. `retry_interval` is the kind's `spec.retryInterval`, if it
    /// has one.
    pub fn on_error(&self, key: &str, class: ErrorClass, retry_interval: Option<Duration>) -> Action {
        match class {
            ErrorClass::Stalled => Action::await_change(),
            ErrorClass::Waiting(after) => Action::requeue(after),
            ErrorClass::Transient => match retry_interval {
                Some(interval) => Action::requeue(interval),
                None => Action::requeue(self.backoff(key)),
            },
            ErrorClass::Unavailable => Action::requeue(self.backoff(key)),
        }
    }

    /// The next backoff delay of `key`: doubles per failure from the minimum, capped at the maximum.
    pub fn backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().expect("retry lock");
        let n = failures.entry(key.to_string()).or_default();
        let delay = self
            .min_retry_delay
            .saturating_mul(2u32.saturating_pow(*n))
            .min(self.max_retry_delay);
        *n = n.saturating_add(1);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::new(Duration::from_millis(750), Duration::from_secs(15 * 60))
    }

    #[test]
    fn stalled_waits_for_a_spec_change() {
        assert_eq!(
            policy().on_error("a", ErrorClass::Stalled, Some(Duration::from_secs(1))),
            Action::await_change()
        );
    }

    #[test]
    fn waiting_requeues_after_the_dependency_interval() {
        let d = Duration::from_secs(30);
        assert_eq!(
            policy().on_error("a", ErrorClass::Waiting(d), None),
            Action::requeue(d)
        );
    }

    #[test]
    fn transient_uses_retry_interval_when_the_kind_has_one() {
        let d = Duration::from_secs(120);
        assert_eq!(
            policy().on_error("a", ErrorClass::Transient, Some(d)),
            Action::requeue(d)
        );
    }

    #[test]
    fn unavailable_backs_off_even_when_the_kind_has_a_retry_interval() {
        let p = policy();
        let hour = Some(Duration::from_secs(3600));
        assert_eq!(
            p.on_error("a", ErrorClass::Unavailable, hour),
            Action::requeue(Duration::from_millis(750))
        );
        assert_eq!(
            p.on_error("a", ErrorClass::Unavailable, hour),
            Action::requeue(Duration::from_millis(1500))
        );
    }

    #[test]
    fn overload_and_server_errors_are_unavailable_refusals_are_not() {
        let status = |code| kube::Error::Api(kube::core::Status::failure("m", "r").with_code(code).boxed());
        assert!(is_unavailable(&status(429)) && is_unavailable(&status(503)));
        assert!(!is_unavailable(&status(422)) && !is_unavailable(&status(404)));
    }

    #[test]
    fn transient_backs_off_per_object_and_resets_on_success() {
        let p = policy();
        let delays: Vec<_> = (0..4).map(|_| p.backoff("a")).collect();
        assert_eq!(delays, [750, 1500, 3000, 6000].map(Duration::from_millis));
        assert_eq!(
            p.backoff("b"),
            Duration::from_millis(750),
            "another object has its own backoff"
        );
        let _ = p.on_success("a", Duration::from_secs(60));
        assert_eq!(p.backoff("a"), Duration::from_millis(750));
    }

    #[test]
    fn backoff_is_capped() {
        let p = policy();
        let last = (0..40).map(|_| p.backoff("a")).last().unwrap();
        assert_eq!(last, Duration::from_secs(15 * 60));
    }
}
