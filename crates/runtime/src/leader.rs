//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection` does it: acquire
//! when the Lease is free or expired, renew every retry period, step down when renewing fails for the
//! renew deadline, and release on shutdown so a standby takes over at once. Writes use the Lease's
//! resourceVersion, so two candidates never both win.

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::{SignedDuration, Timestamp},
};
use kube::{Api, Client, api::PostParams};
use tokio::sync::watch;
use tracing::{info, warn};

/// What a candidate sees in the Lease.
#[derive(Debug, PartialEq, Eq)]
pub enum Observed {
    /// Nobody holds it, or the holder let it expire.
    Free,
    /// This candidate holds it.
    Mine,
    /// Another candidate holds it and renewed it recently.
    Held(String),
}

/// Reads a Lease spec at `now` for `identity` (pure: the decision every candidate makes).
pub fn observe(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Observed {
    let Some(spec) = spec else { return Observed::Free };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() {
        return Observed::Free;
    }
    if holder == identity {
        return Observed::Mine;
    }
    let duration = SignedDuration::from_secs(spec.lease_duration_seconds.unwrap_or(0).into());
    match &spec.renew_time {
        Some(MicroTime(renewed)) if renewed.saturating_add(duration).unwrap_or(*renewed) > now => {
            Observed::Held(holder.to_string())
        }
        _ => Observed::Free,
    }
}

/// Settings of one candidate.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Name of the Lease (one per controller, e.g. `source-controller-leader-election`).
    pub name: String,
    /// Namespace of the Lease.
    pub namespace: String,
    /// This candidate's identity (pod name + a unique suffix).
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before stepping down.
    pub renew_deadline: Duration,
    /// Time between tries.
    pub retry_period: Duration,
}

/// A candidate for leadership.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
}

impl LeaderElector {
    /// A candidate using `client`.
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
        }
    }

    /// One try: acquires a free Lease or renews ours. Returns whether we hold it now.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let lease = self.api.get_opt(&self.config.name).await?;
        let observed = observe(
            lease.as_ref().and_then(|l| l.spec.as_ref()),
            &self.config.identity,
            now,
        );
        if let Observed::Held(_) = observed {
            return Ok(false);
        }
        let old = lease.as_ref().and_then(|l| l.spec.clone()).unwrap_or_default();
        let spec = LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.config.lease_duration.as_secs().max(1) as i32),
            acquire_time: if observed == Observed::Mine {
                old.acquire_time.clone()
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(
                old.lease_transitions.unwrap_or(0) + i32::from(observed == Observed::Free && lease.is_some()),
            ),
            ..old
        };
        let result = match lease {
            Some(mut lease) => {
                lease.spec = Some(spec);
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease)
                    .await
                    .map(|_| ())
            }
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &lease).await.map(|_| ())
            }
        };
        match result {
            Ok(()) => Ok(true),
            // another candidate wrote first
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if we hold it, so a standby acquires it on its next try.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        self.api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await?;
        info!(lease = %self.config.name, "released leadership");
        Ok(())
    }

    /// Runs the election until `shutdown` turns true. The returned receiver tells whether this candidate
    /// leads; it turns false when renewing failed for the renew deadline. On shutdown the Lease is
    /// released when `release_on_cancel` is set.
    pub fn spawn(
        self,
        mut shutdown: watch::Receiver<bool>,
        release_on_cancel: bool,
    ) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut last_renew: Option<tokio::time::Instant> = None;
            loop {
                match self.try_acquire_or_renew().await {
                    Ok(true) => {
                        if !*tx.borrow() {
                            info!(lease = %self.config.name, identity = %self.config.identity, "acquired leadership");
                        }
                        last_renew = Some(tokio::time::Instant::now());
                        let _ = tx.send(true);
                    }
                    Ok(false) => {
                        if *tx.borrow() {
                            warn!(lease = %self.config.name, "lost leadership");
                        }
                        let _ = tx.send(false);
                    }
                    Err(err) => {
                        warn!(error = %err, lease = %self.config.name, "leader election try failed");
                        if last_renew.is_some_and(|t| t.elapsed() > self.config.renew_deadline) {
                            let _ = tx.send(false);
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(self.config.retry_period) => {}
                    _ = shutdown.wait_for(|stop| *stop) => break,
                }
            }
            if release_on_cancel
                && *tx.borrow()
                && let Err(err) = self.release().await
            {
                warn!(error = %err, "could not release leadership");
            }
            let _ = tx.send(false);
        });
        (rx, task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, renewed_secs_ago: i64, duration: i32) -> LeaseSpec {
        let now = Timestamp::now();
        LeaseSpec {
            holder_identity: holder.map(str::to_string),
            lease_duration_seconds: Some(duration),
            renew_time: Some(MicroTime(
                now.checked_sub(SignedDuration::from_secs(renewed_secs_ago))
                    .unwrap(),
            )),
            ..Default::default()
        }
    }

    #[test]
    fn a_missing_or_empty_lease_is_free() {
        assert_eq!(observe(None, "a", Timestamp::now()), Observed::Free);
        assert_eq!(
            observe(Some(&spec(None, 0, 15)), "a", Timestamp::now()),
            Observed::Free
        );
        assert_eq!(
            observe(Some(&spec(Some(""), 0, 15)), "a", Timestamp::now()),
            Observed::Free
        );
    }

    #[test]
    fn a_fresh_lease_of_another_is_held() {
        assert_eq!(
            observe(Some(&spec(Some("b"), 5, 15)), "a", Timestamp::now()),
            Observed::Held("b".into())
        );
    }

    #[test]
    fn an_expired_lease_is_free() {
        assert_eq!(
            observe(Some(&spec(Some("b"), 20, 15)), "a", Timestamp::now()),
            Observed::Free
        );
    }

    #[test]
    fn our_own_lease_is_ours_even_when_expired() {
        assert_eq!(
            observe(Some(&spec(Some("a"), 100, 15)), "a", Timestamp::now()),
            Observed::Mine
        );
    }
}
