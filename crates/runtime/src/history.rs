//! `status.history`: the last reconciliations of a group of resources, newest first, one snapshot per
//! (digest, status) pair, as Flux's `meta.History.Upsert` keeps them.

use std::{collections::BTreeMap, time::Duration};

use driftless_api::meta::{Snapshot, format_duration};
use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};

/// The number of snapshots kept.
pub const MAX_SIZE: usize = 5;

/// Records a reconciliation of `digest` that ended with `status` (a Ready reason) at `now` after `took`:
/// the snapshot with the same digest and status is updated and moved to the front, or a new one is put
/// there; the oldest beyond [`MAX_SIZE`] are dropped.
pub fn upsert(
    history: &mut Vec<Snapshot>,
    digest: &str,
    now: Timestamp,
    took: Duration,
    status: &str,
    metadata: BTreeMap<String, String>,
) {
    let metadata = (!metadata.is_empty()).then_some(metadata);
    let found = history
        .iter()
        .position(|s| s.digest == digest && s.last_reconciled_status == status);
    let snapshot = match found {
        Some(i) => {
            let mut s = history.remove(i);
            s.last_reconciled = Time(now);
            s.last_reconciled_duration = format_duration(took);
            s.total_reconciliations += 1;
            s.metadata = metadata;
            s
        }
        None => Snapshot {
            digest: digest.to_string(),
            first_reconciled: Time(now),
            last_reconciled: Time(now),
            last_reconciled_duration: format_duration(took),
            last_reconciled_status: status.to_string(),
            total_reconciliations: 1,
            metadata,
        },
    };
    history.insert(0, snapshot);
    history.truncate(MAX_SIZE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn repeats_count_and_move_to_the_front_and_new_pairs_push_the_oldest_out() {
        let mut h = Vec::new();
        let meta = |r: &str| BTreeMap::from([("revision".to_string(), r.to_string())]);
        upsert(
            &mut h,
            "sha256:a",
            at(1),
            Duration::from_millis(1500),
            "ReconciliationSucceeded",
            meta("r1"),
        );
        upsert(
            &mut h,
            "sha256:b",
            at(2),
            Duration::from_secs(2),
            "ReconciliationFailed",
            meta("r2"),
        );
        upsert(
            &mut h,
            "sha256:a",
            at(3),
            Duration::from_millis(250),
            "ReconciliationSucceeded",
            meta("r1"),
        );
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].digest, "sha256:a");
        assert_eq!(h[0].total_reconciliations, 2);
        assert_eq!(h[0].first_reconciled, Time(at(1)));
        assert_eq!(h[0].last_reconciled, Time(at(3)));
        assert_eq!(h[0].last_reconciled_duration, "250ms");
        assert_eq!(h[1].last_reconciled_status, "ReconciliationFailed");

        // the same digest with another status is another snapshot
        upsert(
            &mut h,
            "sha256:a",
            at(4),
            Duration::ZERO,
            "PruneFailed",
            BTreeMap::new(),
        );
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].metadata, None);

        for (i, d) in ["c", "d", "e"].iter().enumerate() {
            upsert(
                &mut h,
                d,
                at(10 + i as i64),
                Duration::ZERO,
                "ReconciliationSucceeded",
                BTreeMap::new(),
            );
        }
        let digests: Vec<_> = h.iter().map(|s| s.digest.as_str()).collect();
        assert_eq!(digests, ["e", "d", "c", "sha256:a", "sha256:a"]);
        assert_eq!(h[4].last_reconciled_status, "ReconciliationSucceeded");
        assert_eq!(h[3].last_reconciled_status, "PruneFailed");
    }
}
