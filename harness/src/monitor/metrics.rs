//! A [`Snapshot`] as Prometheus metrics (OpenMetrics text, encoded by the
//! `prometheus-client` crate).
//!
//! Names and labels follow kafka-lag-exporter where the concept matches,
//! so its dashboards and alerts keep working:
//!
//! | metric | labels |
//! | --- | --- |
//! | `kafka_consumergroup_group_lag` | cluster_name, group, topic, partition, member_host, consumer_id, client_id |
//! | `kafka_consumergroup_group_lag_seconds` | same (absent while unknown) |
//! | `kafka_consumergroup_group_offset` | same |
//! | `kafka_consumergroup_group_max_lag`, `…_max_lag_seconds`, `…_sum_lag` | cluster_name, group |
//! | `kafka_consumergroup_group_topic_sum_lag` | cluster_name, group, topic |
//! | `kafka_partition_latest_offset`, `kafka_partition_earliest_offset` | cluster_name, topic, partition |
//!
//! and gregor's health and status metrics:
//!
//! | metric | labels | value |
//! | --- | --- | --- |
//! | `gregor_broker_up` | cluster_name, broker, addr | 1 up, 0 down |
//! | `gregor_partition_isr_size`, `gregor_partition_replicas` | cluster_name, topic, partition | count |
//! | `gregor_partition_under_replicated`, `gregor_partition_offline` | cluster_name, topic, partition | 0/1 |
//! | `gregor_partition_leader` | cluster_name, topic, partition | broker id, -1 none |
//! | `gregor_cluster_under_replicated_partitions`, `gregor_cluster_offline_partitions` | cluster_name | count |
//! | `gregor_consumergroup_partition_status` | cluster_name, group, topic, partition, status | 1 for the current status only |
//! | `gregor_consumergroup_partition_status_code` | cluster_name, group, topic, partition | 0 OK, 1 WARN, 2 STALL, 3 STOP, 4 REWIND |
//! | `gregor_consumergroup_status` | cluster_name, group, status | 1 current, 0 others (OK, WARN, ERR) |
//! | `gregor_consumergroup_members` | cluster_name, group | count |
//! | `gregor_monitor_poll_duration_seconds` | cluster_name | last poll |
//! | `gregor_monitor_poll_errors` | cluster_name | errors in the last poll |
//! | `gregor_monitor_last_poll_timestamp_seconds` | cluster_name | Unix time |

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{GroupStatus, PartitionStatus, Snapshot};

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GpLabels {
    cluster_name: String,
    group: String,
    topic: String,
    partition: String,
    member_host: String,
    consumer_id: String,
    client_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GpStatusLabels {
    cluster_name: String,
    group: String,
    topic: String,
    partition: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GpCodeLabels {
    cluster_name: String,
    group: String,
    topic: String,
    partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    cluster_name: String,
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupStatusLabels {
    cluster_name: String,
    group: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupTopicLabels {
    cluster_name: String,
    group: String,
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    cluster_name: String,
    topic: String,
    partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BrokerLabels {
    cluster_name: String,
    broker: String,
    addr: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    cluster_name: String,
}

type IntG = Gauge<i64, AtomicI64>;
type FloatG = Gauge<f64, AtomicU64>;

fn family<L, M>(reg: &mut Registry, name: &str, help: &str) -> Family<L, M>
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
    M: prometheus_client::metrics::TypedMetric
        + prometheus_client::encoding::EncodeMetric
        + Default
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let f = Family::<L, M>::default();
    reg.register(name, help, f.clone());
    f
}

/// The status as a number for graphs (0 OK … 4 REWIND).
pub fn status_code(s: PartitionStatus) -> i64 {
    match s {
        PartitionStatus::Ok => 0,
        PartitionStatus::Warn => 1,
        PartitionStatus::Stall => 2,
        PartitionStatus::Stop => 3,
        PartitionStatus::Rewind => 4,
    }
}

/// Renders `snap` as OpenMetrics text (see the module doc for the series).
pub fn render(snap: &Snapshot) -> String {
    let mut reg = Registry::default();
    let cn = snap.cluster_name.clone();

    let lag: Family<GpLabels, IntG> = family(
        &mut reg,
        "kafka_consumergroup_group_lag",
        "Group offset lag of a partition (records).",
    );
    let lag_s: Family<GpLabels, FloatG> = family(
        &mut reg,
        "kafka_consumergroup_group_lag_seconds",
        "Group time lag of a partition: age of the oldest unconsumed record (seconds).",
    );
    let offset: Family<GpLabels, IntG> = family(
        &mut reg,
        "kafka_consumergroup_group_offset",
        "Last group committed offset of a partition.",
    );
    let max_lag: Family<GroupLabels, IntG> = family(
        &mut reg,
        "kafka_consumergroup_group_max_lag",
        "Max group offset lag (records).",
    );
    let max_lag_s: Family<GroupLabels, FloatG> = family(
        &mut reg,
        "kafka_consumergroup_group_max_lag_seconds",
        "Max group time lag (seconds).",
    );
    let sum_lag: Family<GroupLabels, IntG> = family(
        &mut reg,
        "kafka_consumergroup_group_sum_lag",
        "Sum of group offset lag (records).",
    );
    let topic_sum: Family<GroupTopicLabels, IntG> = family(
        &mut reg,
        "kafka_consumergroup_group_topic_sum_lag",
        "Sum of group offset lag across topic partitions (records).",
    );
    let latest: Family<PartitionLabels, IntG> = family(
        &mut reg,
        "kafka_partition_latest_offset",
        "Latest offset (log end / high watermark) of a partition.",
    );
    let earliest: Family<PartitionLabels, IntG> = family(
        &mut reg,
        "kafka_partition_earliest_offset",
        "Earliest offset (log start) of a partition.",
    );
    let broker_up: Family<BrokerLabels, IntG> = family(
        &mut reg,
        "gregor_broker_up",
        "1 if the broker is listed in the metadata and answers, else 0.",
    );
    let isr: Family<PartitionLabels, IntG> = family(
        &mut reg,
        "gregor_partition_isr_size",
        "In-sync replicas of a partition.",
    );
    let replicas: Family<PartitionLabels, IntG> = family(
        &mut reg,
        "gregor_partition_replicas",
        "Replicas of a partition.",
    );
    let urp: Family<PartitionLabels, IntG> = family(
        &mut reg,
        "gregor_partition_under_replicated",
        "1 if the partition's ISR is smaller than its replica set.",
    );
    let offline: Family<PartitionLabels, IntG> = family(
        &mut reg,
        "gregor_partition_offline",
        "1 if the partition has no leader.",
    );
    let leader: Family<PartitionLabels, IntG> = family(
        &mut reg,
        "gregor_partition_leader",
        "Broker id of the partition's leader (-1: none).",
    );
    let urp_total: Family<ClusterLabels, IntG> = family(
        &mut reg,
        "gregor_cluster_under_replicated_partitions",
        "Under-replicated partitions in the cluster.",
    );
    let offline_total: Family<ClusterLabels, IntG> = family(
        &mut reg,
        "gregor_cluster_offline_partitions",
        "Partitions without a leader in the cluster.",
    );
    let gp_status: Family<GpStatusLabels, IntG> = family(
        &mut reg,
        "gregor_consumergroup_partition_status",
        "Status of a group-partition by Burrow's rules (1 for the current status: OK, WARN, STALL, STOP, REWIND).",
    );
    let gp_code: Family<GpCodeLabels, IntG> = family(
        &mut reg,
        "gregor_consumergroup_partition_status_code",
        "Status of a group-partition as a number: 0 OK, 1 WARN, 2 STALL, 3 STOP, 4 REWIND.",
    );
    let g_status: Family<GroupStatusLabels, IntG> = family(
        &mut reg,
        "gregor_consumergroup_status",
        "Status of a group (1 for the current one of OK, WARN, ERR; 0 for the others).",
    );
    let members: Family<GroupLabels, IntG> = family(
        &mut reg,
        "gregor_consumergroup_members",
        "Members of a group.",
    );
    let poll_s: Family<ClusterLabels, FloatG> = family(
        &mut reg,
        "gregor_monitor_poll_duration_seconds",
        "Wall time of the last poll of the cluster.",
    );
    let poll_errors: Family<ClusterLabels, IntG> = family(
        &mut reg,
        "gregor_monitor_poll_errors",
        "Errors in the last poll (unreachable brokers, failed requests).",
    );
    let poll_ts: Family<ClusterLabels, FloatG> = family(
        &mut reg,
        "gregor_monitor_last_poll_timestamp_seconds",
        "Unix time of the last poll.",
    );

    let cl = ClusterLabels {
        cluster_name: cn.clone(),
    };
    poll_s.get_or_create(&cl).set(snap.poll_seconds);
    poll_errors.get_or_create(&cl).set(snap.errors.len() as i64);
    poll_ts.get_or_create(&cl).set(snap.time_ms as f64 / 1000.0);

    for b in &snap.brokers {
        broker_up
            .get_or_create(&BrokerLabels {
                cluster_name: cn.clone(),
                broker: b.id.to_string(),
                addr: b.addr.clone(),
            })
            .set(b.up as i64);
    }

    let (mut n_urp, mut n_off) = (0, 0);
    for p in &snap.partitions {
        let l = PartitionLabels {
            cluster_name: cn.clone(),
            topic: p.topic.clone(),
            partition: p.partition.to_string(),
        };
        if let Some(v) = p.latest {
            latest.get_or_create(&l).set(v);
        }
        if let Some(v) = p.earliest {
            earliest.get_or_create(&l).set(v);
        }
        isr.get_or_create(&l).set(p.isr.len() as i64);
        replicas.get_or_create(&l).set(p.replicas.len() as i64);
        urp.get_or_create(&l).set(p.under_replicated as i64);
        offline.get_or_create(&l).set(p.offline as i64);
        leader
            .get_or_create(&l)
            .set(p.leader.map(i64::from).unwrap_or(-1));
        n_urp += p.under_replicated as i64;
        n_off += p.offline as i64;
    }
    urp_total.get_or_create(&cl).set(n_urp);
    offline_total.get_or_create(&cl).set(n_off);

    let mut topic_sums: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for gp in &snap.group_partitions {
        let l = GpLabels {
            cluster_name: cn.clone(),
            group: gp.group.clone(),
            topic: gp.topic.clone(),
            partition: gp.partition.to_string(),
            member_host: gp.host.clone(),
            consumer_id: gp.member_id.clone(),
            client_id: gp.client_id.clone(),
        };
        offset.get_or_create(&l).set(gp.committed);
        if let Some(v) = gp.lag {
            lag.get_or_create(&l).set(v);
            *topic_sums
                .entry((gp.group.as_str(), gp.topic.as_str()))
                .or_default() += v;
        }
        if let Some(v) = gp.lag_seconds {
            lag_s.get_or_create(&l).set(v);
        }
        gp_status
            .get_or_create(&GpStatusLabels {
                cluster_name: cn.clone(),
                group: gp.group.clone(),
                topic: gp.topic.clone(),
                partition: gp.partition.to_string(),
                status: gp.status.name().to_string(),
            })
            .set(1);
        gp_code
            .get_or_create(&GpCodeLabels {
                cluster_name: cn.clone(),
                group: gp.group.clone(),
                topic: gp.topic.clone(),
                partition: gp.partition.to_string(),
            })
            .set(status_code(gp.status));
    }
    for ((g, t), v) in topic_sums {
        topic_sum
            .get_or_create(&GroupTopicLabels {
                cluster_name: cn.clone(),
                group: g.to_string(),
                topic: t.to_string(),
            })
            .set(v);
    }
    for g in &snap.groups {
        let l = GroupLabels {
            cluster_name: cn.clone(),
            group: g.group.clone(),
        };
        max_lag.get_or_create(&l).set(g.max_lag);
        max_lag_s.get_or_create(&l).set(g.max_lag_seconds);
        sum_lag.get_or_create(&l).set(g.sum_lag);
        members.get_or_create(&l).set(g.members.len() as i64);
        for s in GroupStatus::ALL {
            g_status
                .get_or_create(&GroupStatusLabels {
                    cluster_name: cn.clone(),
                    group: g.group.clone(),
                    status: s.name().to_string(),
                })
                .set((g.status == s) as i64);
        }
    }

    let mut out = String::with_capacity(256 + snap.group_partitions.len() * 600);
    if prometheus_client::encoding::text::encode(&mut out, &reg).is_err() {
        out.clear();
        out.push_str("# EOF\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::bench::synthetic_poll;
    use crate::monitor::{Monitor, MonitorConfig};

    fn snapshot() -> Snapshot {
        let mut m = Monitor::new(MonitorConfig::new(&["127.0.0.1:9".to_string()]));
        let mut s = m.evaluate(synthetic_poll(300, 1), 1_000_000);
        for k in 2..6 {
            s = m.evaluate(synthetic_poll(300, k), 1_000_000 + k * 5000);
        }
        s
    }

    #[test]
    fn every_group_partition_gets_kafka_lag_exporter_series_with_its_labels() {
        let text = render(&snapshot());
        assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
        assert!(text.contains("# TYPE kafka_consumergroup_group_lag gauge"));
        // g1 (falls behind): committed 5 * 900 on t1/7, latest 5007.
        assert!(
            text.contains(
                "kafka_consumergroup_group_lag{cluster_name=\"default\",group=\"g1\",topic=\"t1\",\
                 partition=\"7\",member_host=\"\",consumer_id=\"\",client_id=\"\"} 507\n"
            ),
            "{}",
            &text[..3000.min(text.len())]
        );
        let series = text
            .lines()
            .filter(|l| l.starts_with("kafka_consumergroup_group_lag{"))
            .count();
        assert_eq!(series, 300);
        // g2 has been stuck at 500 for 5 polls: STOP.
        assert!(text.contains(
            "gregor_consumergroup_partition_status{cluster_name=\"default\",group=\"g2\",topic=\"t2\",partition=\"0\",status=\"STOP\"} 1"
        ));
        assert!(text.contains(
            "gregor_consumergroup_status{cluster_name=\"default\",group=\"g2\",status=\"ERR\"} 1"
        ));
    }

    /// Every metric the Grafana dashboard queries is one `render` emits.
    #[test]
    fn the_grafana_dashboard_queries_only_metrics_the_monitor_exports() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/grafana/gregor-monitor.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rendered = render(&snapshot());
        let exported: std::collections::BTreeSet<&str> = rendered
            .lines()
            .filter(|l| l.starts_with("# TYPE "))
            .filter_map(|l| l.split_whitespace().nth(2))
            .collect();
        let name = regex::Regex::new(r"\b(kafka_[a-z_]+|gregor_[a-z_]+)").unwrap();
        let mut exprs = Vec::new();
        for p in dash["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                exprs.push(t["expr"].as_str().unwrap().to_string());
            }
        }
        for v in dash["templating"]["list"].as_array().unwrap() {
            if let Some(q) = v["definition"].as_str() {
                exprs.push(q.to_string());
            }
        }
        assert!(exprs.len() >= 10);
        for e in &exprs {
            for m in name.find_iter(e) {
                assert!(
                    exported.contains(m.as_str()),
                    "the dashboard queries {} which the monitor does not export ({e})",
                    m.as_str()
                );
            }
        }
        let ann = &dash["annotations"]["list"][1];
        assert_eq!(
            ann["target"]["tags"][0], "gregor",
            "nemesis annotations by tag"
        );
    }
}
