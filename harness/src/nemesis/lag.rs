//! Lag as a fault: client quotas and replication throttles set and removed
//! through the Kafka admin API ([`gregor_deploy::kadmin`]), and the ISR
//! watched while a follower falls behind.
//!
//! Kafka throttles replication only for replicas *out of* the ISR ("to
//! avoid ISR thrashing": `shouldFollowerThrottle` and the leader's
//! `shouldLeaderThrottle` both skip in-sync replicas), so a replication
//! throttle alone never shrinks the ISR. `replication-throttle` therefore
//! sets the throttle, then pauses one follower until the ISR drops it; once
//! resumed, its catch-up is throttled, so it stays out of the ISR (the
//! partition under-replicated) while the fault lasts; if it catches up all
//! the same (the throttle's burst covers a short pause on a quiet
//! partition), it is paused again.
//!
//! Every call runs on a thread of its own with a small runtime, so the
//! nemesis (a plain thread) and a heal from async code (after a panic)
//! can both use them.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use gregor_deploy::kadmin::{self, ClientEntity, Resource};
use gregor_deploy::kapi::Brokers;

/// The broker configs of a replication throttle (bytes/s, per broker).
pub const BROKER_THROTTLE_CONFIGS: [&str; 2] = [
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
];
/// The topic configs naming the throttled replicas.
pub const TOPIC_THROTTLE_CONFIGS: [&str; 2] = [
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
];
/// The client quotas the throttle faults set.
pub const FETCH_QUOTA: &str = "consumer_byte_rate";
pub const PRODUCE_QUOTA: &str = "producer_byte_rate";

const TIMEOUT: Duration = Duration::from_secs(5);

/// How long a follower stays paused after the ISR dropped it, before its
/// throttled catch-up starts: two samples of the run's monitor.
pub const HOLD_OUT: Duration = Duration::from_secs(2);

/// Runs `fut` to completion on a thread of its own.
fn block<F>(fut: F) -> Result<F::Output, String>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(fut))
            .map_err(|e| e.to_string())
    })
    .join()
    .map_err(|_| "the admin thread panicked".to_string())?
}

/// Sets (`Some`) or removes (`None`) the client quota `key` of `client_id`
/// (`None`: the default client entity).
pub fn set_client_quota(
    addrs: &[String],
    client_id: Option<String>,
    key: &'static str,
    rate: Option<u64>,
) -> Result<(), String> {
    let addrs = addrs.to_vec();
    block(async move {
        let mut b = Brokers::new(&addrs, TIMEOUT);
        kadmin::alter_client_quotas(
            &mut b,
            &ClientEntity(client_id),
            &[(key, rate.map(|r| r as f64))],
        )
        .await
        .map_err(|e| e.to_string())
    })?
}

/// The quotas set on `client_id` (or the default client entity).
pub fn client_quotas(
    addrs: &[String],
    client_id: Option<String>,
) -> Result<Vec<(String, f64)>, String> {
    let addrs = addrs.to_vec();
    block(async move {
        let mut b = Brokers::new(&addrs, TIMEOUT);
        kadmin::describe_client_quotas(&mut b, &ClientEntity(client_id))
            .await
            .map_err(|e| e.to_string())
    })?
}

/// Sets the replication throttle: `rate` bytes/s on every broker, every
/// replica of `topics` throttled ("*"). `None` removes all of it. Returns
/// the broker ids it went to.
pub fn set_replication_throttle(
    addrs: &[String],
    topics: &[String],
    rate: Option<u64>,
) -> Result<Vec<i32>, String> {
    let (addrs, topics) = (addrs.to_vec(), topics.to_vec());
    block(async move {
        let mut b = Brokers::new(&addrs, TIMEOUT);
        b.metadata(Some(&[])).await.map_err(|e| e.to_string())?;
        let ids: Vec<i32> = b.brokers().map(|x| x.id).collect();
        let mut errors = Vec::new();
        let rate = rate.map(|r| r.to_string());
        for &id in &ids {
            let configs: Vec<(&str, Option<String>)> = BROKER_THROTTLE_CONFIGS
                .iter()
                .map(|k| (*k, rate.clone()))
                .collect();
            if let Err(e) = kadmin::alter_configs(&mut b, &Resource::Broker(id), &configs).await {
                errors.push(format!("broker {id}: {e}"));
            }
        }
        let star = rate.as_ref().map(|_| "*".to_string());
        for t in &topics {
            let configs: Vec<(&str, Option<String>)> = TOPIC_THROTTLE_CONFIGS
                .iter()
                .map(|k| (*k, star.clone()))
                .collect();
            if let Err(e) =
                kadmin::alter_configs(&mut b, &Resource::Topic(t.clone()), &configs).await
            {
                errors.push(format!("topic {t}: {e}"));
            }
        }
        if errors.is_empty() {
            Ok(ids)
        } else {
            Err(errors.join("; "))
        }
    })?
}

/// The throttle configs set at run time on every broker and on `topics`:
/// (resource, config, value); empty once healed.
pub fn replication_throttle_in_force(
    addrs: &[String],
    topics: &[String],
) -> Result<Vec<(String, String, String)>, String> {
    let (addrs, topics) = (addrs.to_vec(), topics.to_vec());
    block(async move {
        let mut b = Brokers::new(&addrs, TIMEOUT);
        b.metadata(Some(&[])).await.map_err(|e| e.to_string())?;
        let ids: Vec<i32> = b.brokers().map(|x| x.id).collect();
        let mut found = Vec::new();
        let mut resources: Vec<(Resource, &[&str])> = ids
            .into_iter()
            .map(|id| (Resource::Broker(id), &BROKER_THROTTLE_CONFIGS[..]))
            .collect();
        resources.extend(
            topics
                .iter()
                .map(|t| (Resource::Topic(t.clone()), &TOPIC_THROTTLE_CONFIGS[..])),
        );
        for (r, keys) in resources {
            let values = kadmin::describe_configs(&mut b, &r, keys)
                .await
                .map_err(|e| e.to_string())?;
            for v in values {
                if v.source.is_dynamic() {
                    found.push((format!("{r:?}"), v.name, v.value.unwrap_or_default()));
                }
            }
        }
        Ok(found)
    })?
}

/// The ISR of every partition of `topics` (topic, partition, isr).
pub fn isrs(addrs: &[String], topics: &[String]) -> Result<Vec<(String, i32, Vec<i32>)>, String> {
    let (addrs, topics) = (addrs.to_vec(), topics.to_vec());
    block(async move {
        let mut b = Brokers::new(&addrs, TIMEOUT);
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let md = b.metadata(Some(&names)).await.map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for t in md.topics {
            let name = t.name.map(|n| n.to_string()).unwrap_or_default();
            for p in t.partitions {
                out.push((
                    name.clone(),
                    p.partition_index,
                    p.isr_nodes.iter().map(|n| n.0).collect(),
                ));
            }
        }
        Ok(out)
    })?
}

/// Whether broker `id` is out of the ISR of some partition it replicates
/// (of the partitions in `isrs`, all with `replicas` ids).
pub fn dropped_out(isrs: &[(String, i32, Vec<i32>)], id: i32, replicas: &BTreeSet<i32>) -> bool {
    replicas.contains(&id) && isrs.iter().any(|(_, _, isr)| !isr.contains(&id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_has_dropped_out_once_one_isr_lacks_it() {
        let replicas: BTreeSet<i32> = [0, 1, 2].into();
        let isrs = vec![
            ("t".to_string(), 0, vec![0, 1, 2]),
            ("t".into(), 1, vec![2, 0]),
        ];
        assert!(dropped_out(&isrs, 1, &replicas));
        assert!(!dropped_out(&isrs, 0, &replicas));
        assert!(!dropped_out(&isrs, 7, &replicas), "not a replica");
    }
}
