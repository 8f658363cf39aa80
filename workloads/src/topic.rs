//! Topic setup through the admin API, as the run's clients see the
//! cluster: librdkafka with the run's client settings (so a secured
//! cluster's properties apply). [`ensure_topic`] is the one way a run
//! creates its topic, over the one metadata request of this module; the
//! raw-protocol counterparts for local clusters and tests are
//! `gregor_deploy::wire::{metadata, create_topic}`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::metadata::Metadata;

use crate::runid::RunId;
use crate::settings::ClientSettings;

/// What a topic should look like.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicSpec {
    pub partitions: u32,
    /// `None`: as many replicas as the cluster supports, up to 3.
    pub replication: Option<u32>,
    /// Topic configs, e.g. `min.insync.replicas`.
    pub configs: BTreeMap<String, String>,
}

impl Default for TopicSpec {
    fn default() -> Self {
        TopicSpec {
            partitions: 8,
            replication: None,
            configs: BTreeMap::new(),
        }
    }
}

/// What the cluster made of a topic.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: u32,
    pub replication: u32,
    pub created: bool,
    pub brokers: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("cannot reach the cluster at {bootstrap}: {message}")]
    Unreachable { bootstrap: String, message: String },
    #[error("the cluster cannot create topic {topic} with {partitions} partitions and replication factor {replication}: {message}")]
    Unsatisfiable {
        topic: String,
        partitions: u32,
        replication: u32,
        message: String,
    },
    #[error("topic {topic} exists with {found} partitions, but {wanted} were asked for")]
    WrongPartitions {
        topic: String,
        found: u32,
        wanted: u32,
    },
    #[error("topic {topic}: {message}")]
    Other { topic: String, message: String },
}

/// The cluster's metadata (of `topic`, or of every topic) as the run's
/// clients see it: asked through librdkafka with the run's client
/// settings, so that every client property (security included) applies.
/// The one metadata request of the workloads; returns the client too, for
/// a further request on the same connection.
fn fetch_metadata(
    settings: &ClientSettings,
    topic: Option<&str>,
    timeout: Duration,
) -> Result<(BaseConsumer, Metadata), TopicError> {
    let c: BaseConsumer = settings
        .consumer_config()
        .create()
        .map_err(|e| TopicError::Other {
            topic: topic.unwrap_or_default().into(),
            message: e.to_string(),
        })?;
    let md = c
        .fetch_metadata(topic, timeout)
        .map_err(|e| TopicError::Unreachable {
            bootstrap: settings.bootstrap.clone(),
            message: e.to_string(),
        })?;
    Ok((c, md))
}

fn brokers_and_partitions(
    settings: &ClientSettings,
    topic: &str,
    timeout: Duration,
) -> Result<(usize, Option<(u32, u32)>), TopicError> {
    let (_, md) = fetch_metadata(settings, Some(topic), timeout)?;
    let t = md.topics().iter().find(|t| t.name() == topic);
    let parts = t.and_then(|t| {
        if t.error().is_some() || t.partitions().is_empty() {
            None
        } else {
            let rf = t
                .partitions()
                .iter()
                .map(|p| p.replicas().len() as u32)
                .min()
                .unwrap_or(0);
            Some((t.partitions().len() as u32, rf))
        }
    });
    Ok((md.brokers().len(), parts))
}

/// Creates `topic` as `spec` says (or accepts an existing one with the same
/// partition count), then waits until its metadata shows every partition.
pub async fn ensure_topic(
    settings: &ClientSettings,
    topic: &str,
    spec: &TopicSpec,
    timeout: Duration,
) -> Result<TopicInfo, TopicError> {
    let deadline = Instant::now() + timeout;
    // A broker that just joined may not be in every broker's metadata yet:
    // when the replication factor needs more brokers than listed, ask again
    // (up to the timeout) before calling the factor unsatisfiable.
    let (brokers, existing) = loop {
        let (s, t) = (settings.clone(), topic.to_string());
        let got = tokio::task::spawn_blocking(move || {
            brokers_and_partitions(&s, &t, timeout.min(Duration::from_secs(10)))
        })
        .await
        .map_err(|e| TopicError::Other {
            topic: topic.into(),
            message: e.to_string(),
        })??;
        let short = got.1.is_none() && spec.replication.is_some_and(|r| r as usize > got.0);
        if !short || Instant::now() + Duration::from_millis(500) >= deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if let Some((found, rf)) = existing {
        if found != spec.partitions {
            return Err(TopicError::WrongPartitions {
                topic: topic.into(),
                found,
                wanted: spec.partitions,
            });
        }
        return Ok(TopicInfo {
            name: topic.into(),
            partitions: found,
            replication: rf,
            created: false,
            brokers,
        });
    }
    // Some brokers (tansu 0.6) accept any replication factor and report
    // that many replicas; a factor above the brokers in the metadata
    // cannot be real, so refuse it here, as Kafka itself would.
    if let Some(r) = spec.replication {
        if r as usize > brokers {
            return Err(TopicError::Unsatisfiable {
                topic: topic.into(),
                partitions: spec.partitions,
                replication: r,
                message: format!("the cluster's metadata names only {brokers} broker(s)"),
            });
        }
    }
    let admin: AdminClient<DefaultClientContext> =
        settings
            .consumer_config()
            .create()
            .map_err(|e| TopicError::Other {
                topic: topic.into(),
                message: e.to_string(),
            })?;
    let mut candidates: Vec<u32> = match spec.replication {
        Some(r) => vec![r],
        None => {
            let most = (brokers as u32).clamp(1, 3);
            if most > 1 {
                vec![most, 1]
            } else {
                vec![1]
            }
        }
    };
    let opts = AdminOptions::new().operation_timeout(Some(timeout));
    let mut last_err = String::new();
    let mut used = 0;
    while let Some(rf) = (!candidates.is_empty()).then(|| candidates.remove(0)) {
        let mut nt = NewTopic::new(
            topic,
            spec.partitions as i32,
            TopicReplication::Fixed(rf as i32),
        );
        for (k, v) in &spec.configs {
            nt = nt.set(k, v);
        }
        match admin.create_topics(&[nt], &opts).await {
            Err(e) => {
                return Err(TopicError::Unreachable {
                    bootstrap: settings.bootstrap.clone(),
                    message: e.to_string(),
                })
            }
            Ok(rs) => match rs.into_iter().next() {
                Some(Ok(_)) | None => {
                    used = rf;
                    break;
                }
                Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => {
                    used = rf;
                    break;
                }
                Some(Err((_, code))) => {
                    last_err = format!("{code:?} ({code})");
                    if candidates.is_empty() {
                        return Err(TopicError::Unsatisfiable {
                            topic: topic.into(),
                            partitions: spec.partitions,
                            replication: rf,
                            message: last_err,
                        });
                    }
                }
            },
        }
    }
    let _ = last_err;
    loop {
        let (s, t) = (settings.clone(), topic.to_string());
        let r = tokio::task::spawn_blocking(move || {
            brokers_and_partitions(&s, &t, Duration::from_secs(5))
        })
        .await
        .map_err(|e| TopicError::Other {
            topic: topic.into(),
            message: e.to_string(),
        })?;
        if let Ok((brokers, Some((found, rf)))) = r {
            if found == spec.partitions {
                return Ok(TopicInfo {
                    name: topic.into(),
                    partitions: found,
                    replication: rf.max(used.min(rf.max(1))),
                    created: true,
                    brokers,
                });
            }
        }
        if Instant::now() > deadline {
            return Err(TopicError::Other {
                topic: topic.into(),
                message: format!("created, but its {} partitions did not all appear in metadata within {timeout:?}", spec.partitions),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What a run left on a cluster: its topics and consumer groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunLeftovers {
    pub run: RunId,
    pub topics: Vec<String>,
    pub groups: Vec<String>,
}

/// The runs whose topics or groups carry `prefix` (see [`crate::runid`]),
/// oldest first. Other topics and groups are never listed.
pub fn list_runs(
    settings: &ClientSettings,
    prefix: &str,
    timeout: Duration,
) -> Result<Vec<RunLeftovers>, TopicError> {
    let unreachable = |e: rdkafka::error::KafkaError| TopicError::Unreachable {
        bootstrap: settings.bootstrap.clone(),
        message: e.to_string(),
    };
    let (c, md) = fetch_metadata(settings, None, timeout)?;
    let mut runs: BTreeMap<RunId, RunLeftovers> = BTreeMap::new();
    fn entry(runs: &mut BTreeMap<RunId, RunLeftovers>, run: RunId) -> &mut RunLeftovers {
        runs.entry(run.clone()).or_insert_with(|| RunLeftovers {
            run,
            topics: vec![],
            groups: vec![],
        })
    }
    for t in md.topics() {
        if let Some(run) = RunId::of(prefix, t.name()) {
            entry(&mut runs, run).topics.push(t.name().to_string());
        }
    }
    let groups = c.fetch_group_list(None, timeout).map_err(unreachable)?;
    for g in groups.groups() {
        if let Some(run) = RunId::of(prefix, g.name()) {
            entry(&mut runs, run).groups.push(g.name().to_string());
        }
    }
    let mut out: Vec<RunLeftovers> = runs.into_values().collect();
    for r in &mut out {
        r.topics.sort();
        r.groups.sort();
    }
    Ok(out)
}

/// Deletes these topics and consumer groups; returns one line per name that
/// could not be deleted (empty: all gone).
pub async fn delete_topics_and_groups(
    settings: &ClientSettings,
    topics: &[String],
    groups: &[String],
    timeout: Duration,
) -> Result<Vec<String>, TopicError> {
    let admin: AdminClient<DefaultClientContext> =
        settings
            .consumer_config()
            .create()
            .map_err(|e| TopicError::Other {
                topic: topics.first().cloned().unwrap_or_default(),
                message: e.to_string(),
            })?;
    let unreachable = |e: rdkafka::error::KafkaError| TopicError::Unreachable {
        bootstrap: settings.bootstrap.clone(),
        message: e.to_string(),
    };
    let opts = AdminOptions::new().operation_timeout(Some(timeout));
    let mut failed = Vec::new();
    if !topics.is_empty() {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        for r in admin
            .delete_topics(&names, &opts)
            .await
            .map_err(unreachable)?
        {
            if let Err((name, code)) = r {
                if code != RDKafkaErrorCode::UnknownTopicOrPartition {
                    failed.push(format!("topic {name}: {code}"));
                }
            }
        }
    }
    if !groups.is_empty() {
        let names: Vec<&str> = groups.iter().map(String::as_str).collect();
        for r in admin
            .delete_groups(&names, &opts)
            .await
            .map_err(unreachable)?
        {
            if let Err((name, code)) = r {
                if code != RDKafkaErrorCode::GroupIdNotFound {
                    failed.push(format!("group {name}: {code}"));
                }
            }
        }
    }
    Ok(failed)
}
