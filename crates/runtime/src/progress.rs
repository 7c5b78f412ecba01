//! Whether a controller can make progress, as the health endpoints report it: each watch it needs says
//! whether it is receiving ([`Progress::watch_ok`]) or failing ([`Progress::watch_failed`]), and each
//! reconcile in flight says when it started and how long it may take ([`Progress::start`]).
//!
//! `/readyz` fails while a watch has failed for longer than [`READY_GRACE`] (the controller cannot see
//! changes: the API server is away, or refuses it); `/healthz` fails when a reconcile has run past its
//! deadline (a worker is wedged: a restart helps) or a watch has failed for longer than [`ALIVE_GRACE`].

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// How long a watch may fail before `/readyz` does.
pub const READY_GRACE: Duration = Duration::from_secs(5);
/// How long a watch may fail before `/healthz` does.
pub const ALIVE_GRACE: Duration = Duration::from_secs(300);
/// A failing watch that has not failed again for this long beyond the longest it waits between
/// attempts ([`crate::backoff`]) counts as recovered: its last attempt did not fail, and a watch that
/// started again delivers nothing until something changes.
pub const QUIET_MARGIN: Duration = Duration::from_secs(5);

/// The watches and the reconciles in flight of one process.
#[derive(Debug, Default)]
pub struct Progress {
    // NB: one entry per watch and per reconcile in flight, never more: nothing grows while a watch fails
    failing: Mutex<HashMap<String, Failing>>,
    inflight: Mutex<HashMap<u64, (String, Instant, Duration)>>,
    next: AtomicU64,
}

/// A watch's outage: since when, its last error and when that came.
#[derive(Debug)]
struct Failing {
    since: Instant,
    last: Instant,
    error: String,
    /// How long without another failure means it recovered.
    quiet: Duration,
}

impl Failing {
    fn quiet(&self, now: Instant) -> bool {
        now.duration_since(self.last) >= self.quiet
    }
}

/// A reconcile in flight; it ends when dropped.
#[must_use]
pub struct InFlight<'a> {
    progress: &'a Progress,
    id: u64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.progress.inflight.lock().expect("progress").remove(&self.id);
    }
}

impl Progress {
    /// The watch `name` delivered something. True when it had been failing: it has recovered (also if
    /// it counted as recovered already, having been quiet).
    pub fn watch_ok(&self, name: &str) -> bool {
        let mut failing = self.failing.lock().expect("progress");
        if failing.is_empty() {
            return false;
        }
        failing.remove(name).is_some()
    }

    /// The watch `name` failed with `error` and tries again within `retry_within`. True when it was not
    /// failing before: a new outage.
    pub fn watch_failed(&self, name: &str, error: &str, retry_within: Duration) -> bool {
        let mut failing = self.failing.lock().expect("progress");
        let now = Instant::now();
        let quiet = retry_within.saturating_add(QUIET_MARGIN);
        match failing.get_mut(name) {
            Some(f) if !f.quiet(now) => {
                error.clone_into(&mut f.error);
                f.last = now;
                f.quiet = quiet;
                false
            }
            _ => {
                let error = error.to_string();
                failing.insert(
                    name.to_string(),
                    Failing {
                        since: now,
                        last: now,
                        error,
                        quiet,
                    },
                );
                true
            }
        }
    }

    /// Records a reconcile of `what` that should end within `deadline`.
    pub fn start(&self, what: String, deadline: Duration) -> InFlight<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.inflight
            .lock()
            .expect("progress")
            .insert(id, (what, Instant::now(), deadline));
        InFlight { progress: self, id }
    }

    fn failing_longer_than(&self, grace: Duration) -> Option<String> {
        let failing = self.failing.lock().expect("progress");
        let now = Instant::now();
        let mut long: Vec<_> = failing
            .iter()
            .filter(|(_, f)| now.duration_since(f.since) > grace && !f.quiet(now))
            .map(|(name, f)| {
                format!(
                    "watch of {name} failing for {}s: {}",
                    f.since.elapsed().as_secs(),
                    f.error
                )
            })
            .collect();
        long.sort();
        (!long.is_empty()).then(|| long.join("; "))
    }

    /// `Err` with what stops the controller from seeing changes.
    pub fn ready(&self) -> Result<(), String> {
        self.failing_longer_than(READY_GRACE).map_or(Ok(()), Err)
    }

    /// `Err` with what keeps the controller from ever making progress again without a restart.
    pub fn alive(&self) -> Result<(), String> {
        let inflight = self.inflight.lock().expect("progress");
        let mut stuck: Vec<_> = inflight
            .values()
            .filter(|(_, started, deadline)| started.elapsed() > *deadline)
            .map(|(what, started, deadline)| {
                format!(
                    "reconcile of {what} running for {}s, past its deadline of {}s",
                    started.elapsed().as_secs(),
                    deadline.as_secs()
                )
            })
            .collect();
        drop(inflight);
        stuck.extend(self.failing_longer_than(ALIVE_GRACE));
        stuck.sort();
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(stuck.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Backdates the start of watch `name`'s outage by `by`.
    fn age(p: &Progress, name: &str, by: Duration) {
        let mut failing = p.failing.lock().unwrap();
        let since = &mut failing.get_mut(name).unwrap().since;
        *since = since
            .checked_sub(by)
            .expect("the machine has been up longer than that");
    }

    const RETRY: Duration = Duration::from_secs(3);

    #[test]
    fn a_watch_that_stopped_failing_counts_as_recovered_after_a_quiet_while() {
        let p = Progress::default();
        p.watch_failed("Bucket", "connection refused", RETRY);
        age(&p, "Bucket", READY_GRACE * 2);
        assert!(p.ready().is_err());
        let mut failing = p.failing.lock().unwrap();
        let last = &mut failing.get_mut("Bucket").unwrap().last;
        *last = last.checked_sub(RETRY + QUIET_MARGIN).expect("uptime");
        drop(failing);
        assert_eq!(p.ready(), Ok(()), "started again and idle: nothing to deliver");
        assert!(
            p.watch_failed("Bucket", "again", RETRY),
            "a later failure is a new outage"
        );
    }

    #[test]
    fn a_watch_that_retries_soon_counts_as_recovered_sooner() {
        let p = Progress::default();
        p.watch_failed("Bucket", "connection refused", RETRY);
        p.watch_failed("GitRepository", "429", Duration::from_secs(30));
        age(&p, "Bucket", READY_GRACE * 2);
        age(&p, "GitRepository", READY_GRACE * 2);
        let mut failing = p.failing.lock().unwrap();
        for f in failing.values_mut() {
            f.last = f.last.checked_sub(RETRY + QUIET_MARGIN).expect("uptime");
        }
        drop(failing);
        let err = p.ready().unwrap_err();
        assert!(err.contains("GitRepository") && !err.contains("Bucket"), "{err}");
    }

    #[test]
    fn a_watch_fails_readiness_only_after_the_grace_and_recovers() {
        let p = Progress::default();
        assert!(
            p.watch_failed("Kustomization", "connection refused", RETRY),
            "a new outage"
        );
        assert!(!p.watch_failed("Kustomization", "connection refused again", RETRY));
        assert_eq!(p.ready(), Ok(()), "within the grace");
        age(&p, "Kustomization", READY_GRACE * 2);
        let err = p.ready().unwrap_err();
        assert!(err.contains("Kustomization") && err.contains("again"), "{err}");
        assert_eq!(p.alive(), Ok(()), "alive: a restart would not help yet");
        assert!(p.watch_ok("Kustomization"), "recovered");
        assert!(!p.watch_ok("Kustomization"));
        assert_eq!(p.ready(), Ok(()));
    }

    #[test]
    fn a_reconcile_past_its_deadline_fails_liveness_until_it_ends() {
        let p = Progress::default();
        let quick = p.start("Kustomization/a/quick".into(), Duration::from_secs(60));
        let stuck = p.start("Kustomization/a/stuck".into(), Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        let err = p.alive().unwrap_err();
        assert!(err.contains("stuck") && !err.contains("quick"), "{err}");
        drop(stuck);
        assert_eq!(p.alive(), Ok(()));
        drop(quick);
        assert!(p.inflight.lock().unwrap().is_empty());
    }

    #[test]
    fn a_watch_failing_for_minutes_fails_liveness() {
        let p = Progress::default();
        p.watch_failed("GitRepository", "403", Duration::from_secs(30));
        age(&p, "GitRepository", ALIVE_GRACE + Duration::from_secs(1));
        assert!(p.alive().unwrap_err().contains("GitRepository"));
    }
}
