//! How a watch waits before trying again, by what went wrong.
//!
//! kube's default (client-go's: 800 ms doubling to 30 s, plus up to 100 % jitter) is kind to a
//! struggling API server, but it treats a server that is simply not there the same way: after an outage
//! of 40 s a watch could sleep up to 60 s more once the server was back, and nothing was reconciled
//! meanwhile. A refused or dropped connection costs the server nothing, so those are retried soon
//! ([`UNREACHABLE`]); an answer that says the server is overloaded or refuses the watch gets client-go's
//! patience ([`ANSWERED`]), or the delay it asks for (429 with `retryAfterSeconds`); `410 Gone` (history compacted) relists at once, as client-go does. Jitter
//! stays inside each ceiling, so the ceiling is the longest a watch ever waits.

use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::watcher;
use rand::Rng;

/// First delay and ceiling of one kind of failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The delay after the first failure; each further one doubles it.
    pub first: Duration,
    /// The longest delay.
    pub ceiling: Duration,
}

/// No answer: the connection was refused, reset or timed out.
pub const UNREACHABLE: Schedule = Schedule {
    first: Duration::from_millis(200),
    ceiling: Duration::from_secs(3),
};

/// The server answered with an error (429, 5xx, 403, 404, …).
pub const ANSWERED: Schedule = Schedule {
    first: Duration::from_millis(800),
    ceiling: Duration::from_secs(30),
};

/// The history the watch resumed from was compacted: relist now.
pub const GONE: Schedule = Schedule {
    first: Duration::from_millis(50),
    ceiling: Duration::from_millis(50),
};

/// Which schedule `err` calls for.
pub fn schedule(err: &watcher::Error) -> Schedule {
    let client = match err {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => e,
        watcher::Error::WatchError(status) if status.code == 410 => return GONE,
        watcher::Error::WatchError(_) | watcher::Error::NoResourceVersion => return ANSWERED,
    };
    match client {
        kube::Error::Api(status) if status.code == 410 => GONE,
        // the server may say when to come back (429 with `details.retryAfterSeconds`)
        kube::Error::Api(status) => retry_after(status).map_or(ANSWERED, |after| {
            let after = after.min(ANSWERED.ceiling);
            Schedule {
                first: after,
                ceiling: after,
            }
        }),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => UNREACHABLE,
        _ => ANSWERED,
    }
}

/// The delay a `Status` asks for, when it asks for one.
fn retry_after(status: &kube::core::Status) -> Option<Duration> {
    let seconds = status.details.as_ref()?.retry_after_seconds;
    (seconds > 0).then(|| Duration::from_secs(seconds.into()))
}

/// The consecutive failures of one watch.
#[derive(Debug, Default)]
pub struct WatchBackoff {
    failures: u32,
}

impl WatchBackoff {
    /// The un-jittered delay after another failure on `schedule`.
    fn step(&mut self, schedule: Schedule) -> Duration {
        let delay = schedule
            .first
            .saturating_mul(2u32.saturating_pow(self.failures))
            .min(schedule.ceiling);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// How long to wait after `err`: the schedule's delay for this many failures in a row, jittered
    /// down by up to half (watches that failed together do not all come back at once).
    pub fn next(&mut self, err: &watcher::Error) -> Duration {
        self.step(schedule(err))
            .mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    /// The watch delivered again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// `stream` paused after each error for as long as [`WatchBackoff`] says (the error itself is passed
/// on), and reset by each item it delivers.
pub fn backed_off<T, S>(stream: S) -> impl Stream<Item = Result<T, watcher::Error>> + Send + 'static
where
    T: Send + 'static,
    S: Stream<Item = Result<T, watcher::Error>> + Send + 'static,
{
    let state = (Box::pin(stream), WatchBackoff::default(), None::<Duration>);
    futures::stream::unfold(state, |(mut stream, mut backoff, pause)| async move {
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
        let item = stream.next().await?;
        let pause = match &item {
            Ok(_) => {
                backoff.reset();
                None
            }
            Err(e) => Some(backoff.next(e)),
        };
        Some((item, (stream, backoff, pause)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn refused() -> watcher::Error {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        watcher::Error::WatchStartFailed(kube::Error::Service(Box::new(io)))
    }

    fn answered(code: u16) -> watcher::Error {
        watcher::Error::InitialListFailed(kube::Error::Api(Box::new(
            Status::failure("no", "x").with_code(code),
        )))
    }

    #[test]
    fn each_failure_gets_its_schedule() {
        assert_eq!(schedule(&refused()), UNREACHABLE);
        assert_eq!(schedule(&answered(503)), ANSWERED);
        assert_eq!(schedule(&answered(429)), ANSWERED);
        assert_eq!(schedule(&answered(403)), ANSWERED);
        assert_eq!(schedule(&answered(410)), GONE);
        let overloaded: Status = serde_json::from_value(serde_json::json!({"status": "Failure",
            "reason": "TooManyRequests", "code": 429, "details": {"retryAfterSeconds": 2}}))
        .unwrap();
        let overloaded = watcher::Error::WatchStartFailed(kube::Error::Api(Box::new(overloaded)));
        let two = Duration::from_secs(2);
        assert_eq!(
            schedule(&overloaded),
            Schedule {
                first: two,
                ceiling: two
            },
            "as the server asks"
        );
        let gone = watcher::Error::WatchError(Box::new(Status::failure("too old", "Expired").with_code(410)));
        assert_eq!(schedule(&gone), GONE);
    }

    #[test]
    fn an_unreachable_server_is_tried_again_within_seconds_however_long_it_was_away() {
        let mut b = WatchBackoff::default();
        // a minute of refused connections: the delays grow, and never past the ceiling
        let delays: Vec<_> = (0..30).map(|_| b.next(&refused())).collect();
        assert!(delays[0] <= UNREACHABLE.first, "{delays:?}");
        assert!(delays.iter().all(|d| *d <= UNREACHABLE.ceiling), "{delays:?}");
        assert!(delays[29] >= UNREACHABLE.ceiling / 2, "{delays:?}");
    }

    #[test]
    fn an_answering_server_gets_client_gos_patience_capped_at_the_ceiling() {
        let mut b = WatchBackoff::default();
        let steps: Vec<_> = (0..8).map(|_| b.step(schedule(&answered(500)))).collect();
        assert_eq!(steps[0], Duration::from_millis(800));
        assert_eq!(steps[1], Duration::from_millis(1600));
        assert_eq!(steps[7], ANSWERED.ceiling);
        let jittered: Vec<_> = (0..100).map(|_| b.next(&answered(500))).collect();
        assert!(
            jittered
                .iter()
                .all(|d| *d <= ANSWERED.ceiling && *d >= ANSWERED.ceiling / 2)
        );
        b.reset();
        assert!(b.next(&answered(500)) <= ANSWERED.first, "reset by a delivery");
    }

    #[tokio::test(start_paused = true)]
    async fn the_stream_pauses_after_an_error_and_passes_it_on() {
        let items = futures::stream::iter(vec![Err(refused()), Ok(1), Err(answered(500)), Ok(2)]);
        let start = tokio::time::Instant::now();
        let got: Vec<_> = backed_off(items)
            .map(|r| (r.is_ok(), start.elapsed()))
            .collect()
            .await;
        assert_eq!(
            got.iter().map(|(ok, _)| *ok).collect::<Vec<_>>(),
            [false, true, false, true]
        );
        assert_eq!(got[0].1, Duration::ZERO);
        assert!(got[1].1 >= UNREACHABLE.first / 2 && got[1].1 <= UNREACHABLE.first);
        // reset by the Ok: the next error starts its own schedule from the first delay
        let after = got[3].1 - got[2].1;
        assert!(
            after >= ANSWERED.first / 2 && after <= ANSWERED.first,
            "{after:?}"
        );
    }
}
