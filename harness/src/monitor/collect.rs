//! One poll of the cluster over the Kafka protocol: what the brokers say,
//! nothing evaluated yet (see [`super::Monitor::evaluate`]).
//!
//! Requests per poll, for B brokers: 1 Metadata (and 1 DescribeCluster
//! while a broker known before is missing from it); 2 ListOffsets per
//! leader (latest, earliest; every partition of the leader in one
//! request); 1 ListGroups per broker (in KRaft a broker lists the groups
//! it coordinates, so no FindCoordinator is needed); per coordinator, 1
//! DescribeGroups (classic groups), 1 ConsumerGroupDescribe (KIP-848
//! groups) and 1 OffsetFetch (v8+: every group in one request; older
//! brokers one per group); and a few Fetch requests for record timestamps
//! (one partition once per request, cached between polls).
//!
//! After the metadata, the requests run as two branches side by side on
//! connections of their own ([`Pools`]): the offsets (latest beside
//! earliest) and the groups (ListGroups, then DescribeGroups beside
//! OffsetFetch); brokers are asked concurrently. A poll is thus about four
//! round trips deep (metadata, list groups, offset fetch, timestamps)
//! instead of seven in series.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use bytes::{Buf, Bytes};
use gregor_deploy::kapi::messages::{
    self, BrokerId, ConsumerGroupDescribeRequest, DescribeClusterRequest, DescribeGroupsRequest,
    FetchRequest, GroupId, ListGroupsRequest, ListOffsetsRequest, OffsetFetchRequest, TopicName,
};
use gregor_deploy::kapi::{Brokers, KStr, KapiError};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::records::RecordBatchDecoder;

use super::lag::{RecordTs, Source};
use super::{
    remember_brokers, BrokerState, Gtp, KnownBroker, ListedBrokers, Member, MonitorConfig,
    PartitionState, FORGET_BROKER_AFTER_POLLS,
};

/// (topic, partition, offset).
type Tpo = (String, i32, i64);

/// A group as listed and described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawGroup {
    pub group: String,
    pub state: String,
    pub coordinator: Option<i32>,
    pub members: Vec<Member>,
    pub error: Option<String>,
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
}

/// What one poll read.
#[derive(Debug, Clone, Default)]
pub struct RawPoll {
    pub brokers: Vec<BrokerState>,
    pub partitions: Vec<PartitionState>,
    pub groups: Vec<RawGroup>,
    pub committed: Vec<Committed>,
    /// (group, topic, partition) -> (committed offset, record timestamp)
    /// read this poll.
    pub record_timestamps: Vec<(Gtp, (i64, RecordTs))>,
    /// The metadata answered (the partition list is complete).
    pub metadata_ok: bool,
    /// Every broker listed its groups and every coordinator answered (the
    /// group list is complete: groups not in it are gone).
    pub groups_complete: bool,
    pub errors: Vec<String>,
    /// Seconds each phase of the poll took, in order.
    pub phases: Vec<(&'static str, f64)>,
}

fn kstr(s: &str) -> KStr {
    KStr::from_string(s.to_string())
}

/// Polls the cluster once. `cached(group, topic, partition)`: the committed
/// offset whose record timestamp is already known (not fetched again while
/// the committed offset stays).
pub async fn collect(
    pools: &mut Pools,
    config: &MonitorConfig,
    known: &mut BTreeMap<i32, KnownBroker>,
    cached: &(dyn Fn(&str, &str, i32) -> Option<i64> + Sync),
) -> RawPoll {
    let mut raw = RawPoll::default();
    let started = Instant::now();

    // 1. Metadata: brokers and partitions.
    let meta = match pools.main.metadata(None).await {
        Ok(m) => m,
        Err(e) => {
            raw.errors.push(format!("metadata: {e}"));
            raw.brokers = if known.is_empty() {
                config
                    .bootstrap
                    .iter()
                    .map(|a| BrokerState {
                        id: -1,
                        addr: a.clone(),
                        up: false,
                        error: Some(e.to_string()),
                    })
                    .collect()
            } else {
                known
                    .iter()
                    .map(|(id, b)| BrokerState {
                        id: *id,
                        addr: b.addr.clone(),
                        up: false,
                        error: Some("no broker answered".into()),
                    })
                    .collect()
            };
            return raw;
        }
    };
    raw.metadata_ok = true;
    let listed: BTreeMap<i32, String> = pools.main.brokers().map(|b| (b.id, b.addr())).collect();
    let fenced = if known.keys().all(|id| listed.contains_key(id)) {
        Some(BTreeMap::new())
    } else {
        // A broker left the metadata: still registered (fenced: stopped,
        // crashed, paused) or gone for good?
        fenced_brokers(&mut pools.main)
            .await
            .map_err(|e| {
                raw.errors
                    .push(format!("DescribeCluster (fenced brokers): {e}"))
            })
            .ok()
    };
    remember_brokers(
        known,
        &ListedBrokers {
            complete: fenced.is_some(),
            fenced: fenced.clone().unwrap_or_default(),
            live: listed.clone(),
        },
    );
    let fenced = fenced.unwrap_or_default();
    let mut topic_ids: HashMap<String, uuid::Uuid> = HashMap::new();
    for t in &meta.topics {
        let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
            continue;
        };
        if !config.topic_selected(&name, t.is_internal) {
            continue;
        }
        if t.error_code != 0 {
            let _ = gregor_deploy::kapi::KapiError::check(
                "metadata",
                messages::ApiKey::Metadata,
                t.error_code,
                None,
            )
            .map_err(|e| raw.errors.push(format!("topic {name}: {e}")));
            continue;
        }
        topic_ids.insert(name.clone(), t.topic_id);
        for p in &t.partitions {
            let leader = (p.leader_id.0 >= 0).then_some(p.leader_id.0);
            let replicas: Vec<i32> = p.replica_nodes.iter().map(|b| b.0).collect();
            let isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
            raw.partitions.push(PartitionState {
                topic: name.clone(),
                partition: p.partition_index,
                leader,
                under_replicated: isr.len() < replicas.len(),
                offline: leader.is_none(),
                replicas,
                isr,
                earliest: None,
                latest: None,
            });
        }
    }
    raw.partitions
        .sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));

    raw.phases
        .push(("metadata", started.elapsed().as_secs_f64()));

    // 2-5. Two branches side by side, each request kind on connections of
    // its own (a broker answers one request per connection at a time):
    // offsets (ListOffsets latest and earliest, together) beside groups
    // (ListGroups, then DescribeGroups beside OffsetFetch).
    let Pools {
        main,
        latest: latest_pool,
        earliest: earliest_pool,
        describe: describe_pool,
    } = pools;
    for pool in [&mut *latest_pool, &mut *earliest_pool, &mut *describe_pool] {
        pool.adopt(main);
    }
    let mut by_leader: BTreeMap<i32, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
    for p in &raw.partitions {
        if let Some(l) = p.leader {
            by_leader
                .entry(l)
                .or_default()
                .entry(p.topic.as_str())
                .or_default()
                .push(p.partition);
        }
    }
    let ids: Vec<i32> = listed.keys().copied().collect();
    let selected_topics: BTreeSet<&str> = raw.partitions.iter().map(|p| p.topic.as_str()).collect();
    let offsets_branch = async {
        let t = Instant::now();
        let (latest, earliest) = tokio::join!(
            list_offsets(latest_pool, &by_leader, LATEST, config),
            list_offsets(earliest_pool, &by_leader, EARLIEST, config),
        );
        (latest, earliest, t.elapsed().as_secs_f64())
    };
    let groups_branch = async {
        let t = Instant::now();
        let listed = list_groups(main, &ids, config).await;
        let listing = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (described, fetched) = tokio::join!(
            describe_groups(describe_pool, &listed),
            offset_fetch(main, &listed, &selected_topics),
        );
        (
            listed,
            described,
            fetched,
            listing,
            t.elapsed().as_secs_f64(),
        )
    };
    let ((latest, earliest, t_offsets), (listed_groups, described, fetched, t_list, t_groups)) =
        tokio::join!(offsets_branch, groups_branch);
    raw.phases.push(("list-offsets", t_offsets));
    raw.phases.push(("list-groups", t_list));
    raw.phases.push(("describe-groups+offset-fetch", t_groups));
    drop(selected_topics);
    for p in &mut raw.partitions {
        let tp = (p.topic.clone(), p.partition);
        p.latest = latest.by_tp.get(&tp).copied();
        p.earliest = earliest.by_tp.get(&tp).copied();
    }

    // Broker health: every broker listed got a ListGroups (and leaders
    // ListOffsets); their answers say whether it is up.
    let mut broker_err: BTreeMap<i32, Option<String>> =
        listed.keys().map(|id| (*id, None)).collect();
    for (id, e) in latest
        .broker_err
        .iter()
        .chain(&earliest.broker_err)
        .chain(&listed_groups.broker_err)
    {
        if let Some(slot) = broker_err.get_mut(id) {
            slot.get_or_insert(e.clone());
        }
    }
    raw.errors.extend(latest.errors);
    raw.errors.extend(earliest.errors);
    raw.errors.extend(listed_groups.errors.iter().cloned());
    raw.brokers = known
        .iter()
        .map(|(id, b)| {
            let error = match broker_err.get(id) {
                Some(e) => e.clone(),
                None if fenced.contains_key(id) => Some(
                    "fenced: registered but not heartbeating to the controller \
                     (stopped, crashed or paused)"
                        .into(),
                ),
                None => Some(format!(
                    "not in the cluster's metadata for {} poll(s) (forgotten after {})",
                    b.missing, FORGET_BROKER_AFTER_POLLS
                )),
            };
            BrokerState {
                id: *id,
                addr: b.addr.clone(),
                up: error.is_none(),
                error,
            }
        })
        .collect();

    let mut groups: BTreeMap<String, RawGroup> = listed_groups
        .states
        .iter()
        .map(|(g, (state, coord))| {
            (
                g.clone(),
                RawGroup {
                    group: g.clone(),
                    state: state.clone(),
                    coordinator: Some(*coord),
                    members: Vec::new(),
                    error: None,
                },
            )
        })
        .collect();
    raw.errors.extend(described.errors);
    for (id, d) in described.groups {
        let Some(g) = groups.get_mut(&id) else {
            continue;
        };
        match d {
            Ok((state, members)) => {
                if !state.is_empty() {
                    g.state = state;
                }
                g.members = members;
            }
            Err(e) => g.error = Some(e),
        }
    }
    raw.errors.extend(fetched.errors);
    raw.committed = fetched.committed;
    for (g, e) in fetched.per_group_err {
        if let Some(rg) = groups.get_mut(&g) {
            rg.error.get_or_insert(e);
        }
    }
    raw.groups_complete = listed_groups.complete && fetched.complete;
    raw.groups = groups.into_values().collect();

    let t_fetch = Instant::now();
    let mut dead = latest.dead;
    let brokers = latest_pool;
    // 6. Record timestamps at lagging committed offsets.
    if config.exact_lag_seconds && config.timestamp_fetch_budget > 0 {
        let latest: HashMap<(&str, i32), (i64, Option<i32>)> = raw
            .partitions
            .iter()
            .filter_map(|p| {
                p.latest
                    .map(|l| ((p.topic.as_str(), p.partition), (l, p.leader)))
            })
            .collect();
        // (topic, partition, offset) -> group-partitions that want it.
        let mut wanted: BTreeMap<(String, i32, i64), Vec<String>> = BTreeMap::new();
        for c in &raw.committed {
            let Some(&(l, Some(_))) = latest.get(&(c.topic.as_str(), c.partition)) else {
                continue;
            };
            if c.committed >= l {
                continue;
            }
            if cached(&c.group, &c.topic, c.partition) == Some(c.committed) {
                continue;
            }
            wanted
                .entry((c.topic.clone(), c.partition, c.committed))
                .or_default()
                .push(c.group.clone());
        }
        // Per round, per leader: (topic, partition, offset) to fetch.
        let mut rounds: Vec<BTreeMap<i32, Vec<Tpo>>> = Vec::new();
        let mut taken = 0usize;
        let mut round_of: HashMap<(String, i32), usize> = HashMap::new();
        for (t, p, o) in wanted.keys() {
            if taken >= config.timestamp_fetch_budget {
                break;
            }
            let Some(&(_, Some(leader))) = latest.get(&(t.as_str(), *p)) else {
                continue;
            };
            let r = round_of.entry((t.clone(), *p)).or_insert(0);
            if rounds.len() <= *r {
                rounds.push(BTreeMap::new());
            }
            rounds[*r]
                .entry(leader)
                .or_default()
                .push((t.clone(), *p, *o));
            *r += 1;
            taken += 1;
        }
        for round in rounds {
            let asked: HashMap<(String, i32), i64> = round
                .values()
                .flatten()
                .map(|(t, p, o)| ((t.clone(), *p), *o))
                .collect();
            let reqs: Vec<(i32, FetchRequest)> = round
                .into_iter()
                .map(|(leader, tps)| (leader, fetch_request(&tps, &topic_ids)))
                .collect();
            for (broker, answer) in send_many(brokers, &mut dead, reqs).await {
                match answer {
                    Ok(resp) => {
                        for t in resp.responses {
                            let name = if t.topic.0.is_empty() {
                                topic_ids
                                    .iter()
                                    .find(|(_, id)| **id == t.topic_id)
                                    .map(|(n, _)| n.clone())
                                    .unwrap_or_default()
                            } else {
                                t.topic.0.to_string()
                            };
                            for p in t.partitions {
                                if p.error_code != 0 {
                                    continue;
                                }
                                let Some(records) = p.records else { continue };
                                let Some(&wo) = asked.get(&(name.clone(), p.partition_index))
                                else {
                                    continue;
                                };
                                let Some(ts) = record_timestamp(&records, wo) else {
                                    continue;
                                };
                                for g in wanted
                                    .get(&(name.clone(), p.partition_index, wo))
                                    .into_iter()
                                    .flatten()
                                {
                                    raw.record_timestamps.push((
                                        (g.clone(), name.clone(), p.partition_index),
                                        (wo, ts),
                                    ));
                                }
                            }
                        }
                    }
                    Err(e) => raw.errors.push(format!("Fetch on broker {broker}: {e}")),
                }
            }
        }
    }
    raw.phases
        .push(("record-timestamps", t_fetch.elapsed().as_secs_f64()));
    raw
}

/// ListOffsets timestamps: the log end and the log start.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
/// Groups per DescribeGroups, ConsumerGroupDescribe or OffsetFetch request.
const CHUNK: usize = 500;

/// The connections of a poll. `main` asks for the metadata, lists the
/// groups and fetches committed offsets; the others carry the requests
/// that run beside those, so that no request waits behind another on one
/// connection: `latest` (ListOffsets of log ends, then the record
/// timestamps), `earliest` (ListOffsets of log starts) and `describe`
/// (group descriptions). Four connections per broker at most.
pub struct Pools {
    pub main: Brokers,
    latest: Brokers,
    earliest: Brokers,
    describe: Brokers,
}

impl Pools {
    /// Pools over `bootstrap`; nothing connects yet.
    pub fn new(bootstrap: &[String], timeout: std::time::Duration) -> Pools {
        let pool = || Brokers::new(bootstrap, timeout);
        Pools {
            main: pool(),
            latest: pool(),
            earliest: pool(),
            describe: pool(),
        }
    }
}

/// One ListOffsets round over every leader.
#[derive(Default)]
struct Offsets {
    by_tp: HashMap<(String, i32), i64>,
    errors: Vec<String>,
    /// Brokers that did not answer, and why.
    broker_err: BTreeMap<i32, String>,
    /// Brokers unreachable this poll (not asked again by this pool).
    dead: BTreeMap<i32, String>,
}

/// ListOffsets at `ts` (one request per leader for all its partitions).
async fn list_offsets(
    pool: &mut Brokers,
    by_leader: &BTreeMap<i32, BTreeMap<&str, Vec<i32>>>,
    ts: i64,
    config: &MonitorConfig,
) -> Offsets {
    use messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let mut out = Offsets::default();
    let timeout_ms = config.request_timeout.as_millis().min(i32::MAX as u128) as i32;
    let reqs = by_leader
        .iter()
        .map(|(leader, topics)| {
            let topics = topics
                .iter()
                .map(|(t, ps)| {
                    ListOffsetsTopic::default()
                        .with_name(TopicName(kstr(t)))
                        .with_partitions(
                            ps.iter()
                                .map(|p| {
                                    ListOffsetsPartition::default()
                                        .with_partition_index(*p)
                                        .with_timestamp(ts)
                                })
                                .collect(),
                        )
                })
                .collect();
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(0)
                .with_timeout_ms(timeout_ms)
                .with_topics(topics);
            (*leader, req)
        })
        .collect();
    for (broker, answer) in send_many(pool, &mut out.dead, reqs).await {
        match answer {
            Ok(resp) => {
                let mut failed = 0;
                let mut first_err = None;
                for t in resp.topics {
                    for p in t.partitions {
                        if p.error_code != 0 {
                            failed += 1;
                            first_err.get_or_insert(p.error_code);
                            continue;
                        }
                        out.by_tp
                            .insert((t.name.0.to_string(), p.partition_index), p.offset);
                    }
                }
                if let Some(code) = first_err {
                    out.errors.push(format!(
                        "ListOffsets on broker {broker}: {failed} partition(s) failed ({})",
                        error_name(code)
                    ));
                }
            }
            Err(e) => {
                out.errors
                    .push(format!("ListOffsets on broker {broker}: {e}"));
                out.broker_err.entry(broker).or_insert(e.to_string());
            }
        }
    }
    out
}

/// The groups the brokers list, by coordinator.
#[derive(Default)]
struct ListedGroups {
    /// Every broker answered.
    complete: bool,
    /// Coordinator -> classic groups.
    classic: BTreeMap<i32, Vec<String>>,
    /// Coordinator -> KIP-848 consumer groups.
    modern: BTreeMap<i32, Vec<String>>,
    /// Group -> (state, coordinator).
    states: BTreeMap<String, (String, i32)>,
    errors: Vec<String>,
    broker_err: BTreeMap<i32, String>,
}

/// ListGroups on every broker: in KRaft the broker that lists a group is
/// its coordinator.
async fn list_groups(pool: &mut Brokers, ids: &[i32], config: &MonitorConfig) -> ListedGroups {
    let mut out = ListedGroups {
        complete: true,
        ..ListedGroups::default()
    };
    let mut dead = BTreeMap::new();
    let reqs = ids
        .iter()
        .map(|id| (*id, ListGroupsRequest::default()))
        .collect();
    for (broker, answer) in send_many(pool, &mut dead, reqs).await {
        match answer {
            Ok(resp) if resp.error_code == 0 => {
                for g in resp.groups {
                    let id = g.group_id.0.to_string();
                    let gtype = g.group_type.to_string();
                    let ptype = g.protocol_type.to_string();
                    if !config.group_selected(&id) || gtype == "share" {
                        continue;
                    }
                    if !(ptype.is_empty() || ptype == "consumer") {
                        continue; // Connect workers and the like commit no offsets.
                    }
                    out.states
                        .insert(id.clone(), (g.group_state.to_string(), broker));
                    if gtype == "consumer" {
                        out.modern.entry(broker).or_default().push(id);
                    } else {
                        out.classic.entry(broker).or_default().push(id);
                    }
                }
            }
            Ok(resp) => {
                out.complete = false;
                out.errors.push(format!(
                    "ListGroups on broker {broker}: {}",
                    error_name(resp.error_code)
                ));
            }
            Err(e) => {
                out.complete = false;
                out.errors
                    .push(format!("ListGroups on broker {broker}: {e}"));
                out.broker_err.entry(broker).or_insert(e.to_string());
            }
        }
    }
    out
}

/// A group's state and members as described, or why not.
type Description = Result<(String, Vec<Member>), String>;

/// The groups described.
#[derive(Default)]
struct Described {
    groups: Vec<(String, Description)>,
    errors: Vec<String>,
}

/// DescribeGroups (classic groups) and ConsumerGroupDescribe (KIP-848
/// groups), per coordinator.
async fn describe_groups(pool: &mut Brokers, listed: &ListedGroups) -> Described {
    let mut out = Described::default();
    let mut dead = BTreeMap::new();
    let mut reqs = Vec::new();
    for (coord, gs) in &listed.classic {
        for chunk in gs.chunks(CHUNK) {
            reqs.push((
                *coord,
                DescribeGroupsRequest::default()
                    .with_groups(chunk.iter().map(|g| GroupId(kstr(g))).collect()),
            ));
        }
    }
    for (broker, answer) in send_many(pool, &mut dead, reqs).await {
        match answer {
            Ok(resp) => {
                for d in resp.groups {
                    let id = d.group_id.0.to_string();
                    if d.error_code != 0 {
                        let e = format!("DescribeGroups: {}", error_name(d.error_code));
                        out.groups.push((id, Err(e)));
                        continue;
                    }
                    let consumer = d.protocol_type.is_empty() || &*d.protocol_type == "consumer";
                    let members = d
                        .members
                        .iter()
                        .map(|m| Member {
                            member_id: m.member_id.to_string(),
                            client_id: m.client_id.to_string(),
                            host: m.client_host.to_string(),
                            assignment: if consumer {
                                decode_assignment(&m.member_assignment)
                            } else {
                                Vec::new()
                            },
                        })
                        .collect();
                    out.groups
                        .push((id, Ok((d.group_state.to_string(), members))));
                }
            }
            Err(e) => out
                .errors
                .push(format!("DescribeGroups on broker {broker}: {e}")),
        }
    }
    let mut reqs = Vec::new();
    for (coord, gs) in &listed.modern {
        for chunk in gs.chunks(CHUNK) {
            reqs.push((
                *coord,
                ConsumerGroupDescribeRequest::default()
                    .with_group_ids(chunk.iter().map(|g| GroupId(kstr(g))).collect()),
            ));
        }
    }
    for (broker, answer) in send_many(pool, &mut dead, reqs).await {
        match answer {
            Ok(resp) => {
                for d in resp.groups {
                    let id = d.group_id.0.to_string();
                    if d.error_code != 0 {
                        let e = format!("ConsumerGroupDescribe: {}", error_name(d.error_code));
                        out.groups.push((id, Err(e)));
                        continue;
                    }
                    let members = d
                        .members
                        .iter()
                        .map(|m| Member {
                            member_id: m.member_id.to_string(),
                            client_id: m.client_id.to_string(),
                            host: m.client_host.to_string(),
                            assignment: m
                                .assignment
                                .topic_partitions
                                .iter()
                                .flat_map(|tp| {
                                    let t = tp.topic_name.0.to_string();
                                    tp.partitions.iter().map(move |p| (t.clone(), *p))
                                })
                                .collect(),
                        })
                        .collect();
                    out.groups
                        .push((id, Ok((d.group_state.to_string(), members))));
                }
            }
            Err(e) => out
                .errors
                .push(format!("ConsumerGroupDescribe on broker {broker}: {e}")),
        }
    }
    out
}

/// Committed offsets as fetched.
#[derive(Default)]
struct Fetched {
    committed: Vec<Committed>,
    /// (group, error) for groups whose offsets could not be read.
    per_group_err: Vec<(String, String)>,
    /// Every coordinator answered for every group.
    complete: bool,
    errors: Vec<String>,
}

/// OffsetFetch per coordinator: v8+ many groups in one request, older
/// brokers one request per group.
async fn offset_fetch(
    pool: &mut Brokers,
    listed: &ListedGroups,
    selected_topics: &BTreeSet<&str>,
) -> Fetched {
    let mut out = Fetched {
        complete: true,
        ..Fetched::default()
    };
    let mut dead = BTreeMap::new();
    let mut by_coord: BTreeMap<i32, Vec<&str>> = BTreeMap::new();
    for (g, (_, coord)) in &listed.states {
        by_coord.entry(*coord).or_default().push(g.as_str());
    }
    let mut reqs = Vec::new();
    // Which group a one-group (pre-v8) request is for.
    let mut single: Vec<Option<&str>> = Vec::new();
    for (coord, gs) in &by_coord {
        let batched = match pool.broker(*coord).await {
            Ok(c) => c.supports::<OffsetFetchRequest>(8),
            Err(_) => true, // the send below reports the error
        };
        if batched {
            for chunk in gs.chunks(CHUNK) {
                single.push(None);
                reqs.push((
                    *coord,
                    OffsetFetchRequest::default().with_groups(
                        chunk
                            .iter()
                            .map(|g| {
                                messages::offset_fetch_request::OffsetFetchRequestGroup::default()
                                    .with_group_id(GroupId(kstr(g)))
                                    .with_topics(None)
                            })
                            .collect(),
                    ),
                ));
            }
        } else {
            for g in gs {
                single.push(Some(g));
                reqs.push((
                    *coord,
                    OffsetFetchRequest::default()
                        .with_group_id(GroupId(kstr(g)))
                        .with_topics(None),
                ));
            }
        }
    }
    let mut push = |group: &str, topic: &str, partition: i32, offset: i64, code: i16| {
        if code != 0 || offset < 0 || !selected_topics.contains(topic) {
            return;
        }
        out.committed.push(Committed {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
            committed: offset,
        });
    };
    let mut per_group_err = Vec::new();
    let mut complete = true;
    let mut errors = Vec::new();
    let answers = send_many(pool, &mut dead, reqs).await;
    for ((broker, answer), one) in answers.into_iter().zip(single) {
        match (answer, one) {
            (Ok(resp), Some(gid)) => {
                if resp.error_code != 0 {
                    complete = false;
                    per_group_err.push((
                        gid.to_string(),
                        format!("OffsetFetch: {}", error_name(resp.error_code)),
                    ));
                    continue;
                }
                for t in resp.topics {
                    for p in t.partitions {
                        push(
                            gid,
                            &t.name.0,
                            p.partition_index,
                            p.committed_offset,
                            p.error_code,
                        );
                    }
                }
            }
            (Ok(resp), None) => {
                for g in resp.groups {
                    let gid = g.group_id.0.to_string();
                    if g.error_code != 0 {
                        complete = false;
                        per_group_err
                            .push((gid, format!("OffsetFetch: {}", error_name(g.error_code))));
                        continue;
                    }
                    for t in g.topics {
                        for p in t.partitions {
                            push(
                                &gid,
                                &t.name.0,
                                p.partition_index,
                                p.committed_offset,
                                p.error_code,
                            );
                        }
                    }
                }
            }
            (Err(e), _) => {
                complete = false;
                errors.push(format!("OffsetFetch on broker {broker}: {e}"));
            }
        }
    }
    out.per_group_err = per_group_err;
    out.complete = complete;
    out.errors = errors;
    out
}

/// The brokers registered but fenced (DescribeCluster v2, Kafka 4.0+):
/// id -> address. An error when the cluster cannot tell.
async fn fenced_brokers(brokers: &mut Brokers) -> Result<BTreeMap<i32, String>, KapiError> {
    let conn = brokers.any().await?;
    if !conn.supports::<DescribeClusterRequest>(2) {
        return Err(KapiError::Unsupported {
            addr: conn.addr().to_string(),
            api: messages::ApiKey::DescribeCluster,
        });
    }
    let resp = brokers
        .send_any(&DescribeClusterRequest::default().with_include_fenced_brokers(true))
        .await?;
    KapiError::check(
        "DescribeCluster",
        messages::ApiKey::DescribeCluster,
        resp.error_code,
        resp.error_message.as_ref(),
    )?;
    Ok(resp
        .brokers
        .iter()
        .filter(|b| b.is_fenced)
        .map(|b| (b.broker_id.0, format!("{}:{}", b.host, b.port)))
        .collect())
}

/// [`Brokers::send_many`], except that brokers found unreachable earlier in
/// this poll are not asked again (their requests fail at once), and
/// brokers that fail now with a connection error or timeout join them.
async fn send_many<R: kafka_protocol::protocol::Request>(
    brokers: &mut Brokers,
    dead: &mut BTreeMap<i32, String>,
    reqs: Vec<(i32, R)>,
) -> Vec<gregor_deploy::kapi::Answer<R::Response>> {
    let mut out: Vec<Option<gregor_deploy::kapi::Answer<R::Response>>> = Vec::new();
    let mut live = Vec::new();
    let mut slots = Vec::new();
    for (i, (id, r)) in reqs.into_iter().enumerate() {
        out.push(None);
        match dead.get(&id) {
            Some(e) => {
                out[i] = Some((
                    id,
                    Err(KapiError::NoBroker(format!(
                        "broker {id} unreachable earlier in this poll: {e}"
                    ))),
                ))
            }
            None => {
                live.push((id, r));
                slots.push(i);
            }
        }
    }
    for ((id, answer), i) in brokers.send_many(live).await.into_iter().zip(slots) {
        if let Err(
            e @ (KapiError::Connect { .. } | KapiError::Io { .. } | KapiError::Timeout { .. }),
        ) = &answer
        {
            dead.entry(id).or_insert_with(|| e.to_string());
        }
        out[i] = Some((id, answer));
    }
    out.into_iter()
        .map(|o| o.unwrap_or((-1, Err(KapiError::NoBroker("no answer".into())))))
        .collect()
}

fn fetch_request(tps: &[Tpo], topic_ids: &HashMap<String, uuid::Uuid>) -> FetchRequest {
    let mut topics: BTreeMap<&str, Vec<messages::fetch_request::FetchPartition>> = BTreeMap::new();
    for (t, p, o) in tps {
        topics.entry(t.as_str()).or_default().push(
            messages::fetch_request::FetchPartition::default()
                .with_partition(*p)
                .with_fetch_offset(*o)
                .with_partition_max_bytes(16 * 1024),
        );
    }
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(8 * 1024 * 1024)
        .with_topics(
            topics
                .into_iter()
                .map(|(t, ps)| {
                    messages::fetch_request::FetchTopic::default()
                        .with_topic(TopicName(kstr(t)))
                        .with_topic_id(topic_ids.get(t).copied().unwrap_or_default())
                        .with_partitions(ps)
                })
                .collect(),
        )
}

/// The name of a Kafka error code.
fn error_name(code: i16) -> String {
    match kafka_protocol::ResponseError::try_from_code(code) {
        Some(e) => format!("{e:?}"),
        None => format!("error code {code}"),
    }
}

/// Decodes a classic consumer group member's assignment (the consumer
/// protocol's `ConsumerProtocolAssignment`, version-prefixed); empty when
/// it cannot be read.
pub fn decode_assignment(bytes: &Bytes) -> Vec<(String, i32)> {
    if bytes.len() < 2 {
        return Vec::new();
    }
    let mut b = bytes.clone();
    let version = i16::from_be_bytes([b[0], b[1]]);
    b = b.slice(2..);
    let v = version.clamp(0, 3);
    match messages::ConsumerProtocolAssignment::decode(&mut b, v) {
        Ok(a) => a
            .assigned_partitions
            .iter()
            .flat_map(|tp| {
                let t = tp.topic.0.to_string();
                tp.partitions.iter().map(move |p| (t.clone(), *p))
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The timestamp of the first data record at or after `offset` in a
/// fetched record set (magic v2 batches), read record by record with
/// `kafka-protocol`'s batch decoder, compressed batches included
/// ([`Source::Exact`]). A batch that cannot be decoded (cut short by the
/// fetch size, a corrupt or unknown codec) gives its first timestamp
/// ([`Source::Batch`]). A LogAppendTime batch gives the broker's append time,
/// which is every record's timestamp (exact).
pub fn record_timestamp(records: &Bytes, offset: i64) -> Option<RecordTs> {
    let mut rest = records.clone();
    while rest.len() >= 61 {
        let h = &rest[..61];
        let base = i64::from_be_bytes(h[0..8].try_into().ok()?);
        let len = i32::from_be_bytes(h[8..12].try_into().ok()?);
        if len < 49 || h[16] as i8 != 2 {
            return None; // not a magic-2 batch
        }
        let total = 12 + len as usize;
        let attributes = i16::from_be_bytes(h[21..23].try_into().ok()?);
        let last_delta = i32::from_be_bytes(h[23..27].try_into().ok()?);
        let base_ts = i64::from_be_bytes(h[27..35].try_into().ok()?);
        let max_ts = i64::from_be_bytes(h[35..43].try_into().ok()?);
        let control = attributes & 0x20 != 0;
        if base + (last_delta as i64) < offset || control {
            if total >= rest.len() {
                return None;
            }
            rest.advance(total);
            continue;
        }
        if attributes & 0x08 != 0 {
            return Some(RecordTs {
                ms: max_ts,
                source: Source::Exact,
            });
        }
        let batch = RecordTs {
            ms: base_ts,
            source: Source::Batch,
        };
        if total > rest.len() {
            return Some(batch); // cut short by the fetch size
        }
        let mut one = rest.split_to(total);
        match RecordBatchDecoder::decode(&mut one) {
            Ok(set) => {
                if let Some(r) = set.records.iter().find(|r| r.offset >= offset) {
                    return Some(RecordTs {
                        ms: r.timestamp,
                        source: Source::Exact,
                    });
                }
            }
            Err(_) => return Some(batch),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// A magic-2 batch at `base` with records at (offset delta, timestamp
    /// delta) from `base_ts`, encoded by `kafka-protocol` (CRC and all).
    fn batch(
        base: i64,
        base_ts: i64,
        compression: Compression,
        control: bool,
        recs: &[(i64, i64)],
    ) -> Vec<u8> {
        let records: Vec<Record> = recs
            .iter()
            .map(|&(od, td)| Record {
                transactional: control,
                control,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: base + od,
                // One batch: offset - sequence is the same for every record.
                sequence: od as i32,
                timestamp: base_ts + td,
                key: None,
                value: Some(Bytes::from(vec![b'x'; 64])),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        buf.to_vec()
    }

    const DATA: bool = false;

    fn at(set: &[u8], offset: i64) -> Option<(i64, Source)> {
        record_timestamp(&Bytes::copy_from_slice(set), offset).map(|t| (t.ms, t.source))
    }

    #[test]
    fn the_timestamp_of_the_record_at_an_offset_inside_a_batch_is_exact() {
        let mut set = batch(
            100,
            1_000_000,
            Compression::None,
            DATA,
            &[(0, 0), (1, 250), (2, 900)],
        );
        set.extend(batch(
            103,
            2_000_000,
            Compression::None,
            DATA,
            &[(0, 0), (1, 5)],
        ));
        let exact = |ms| Some((ms, Source::Exact));
        assert_eq!(at(&set, 100), exact(1_000_000));
        assert_eq!(at(&set, 101), exact(1_000_250));
        assert_eq!(at(&set, 102), exact(1_000_900));
        assert_eq!(at(&set, 104), exact(2_000_005));
        assert_eq!(at(&set, 105), None, "past the end");
    }

    #[test]
    fn compacted_gaps_give_the_next_record_and_control_batches_are_skipped() {
        let marker = true;
        let mut set = batch(10, 5_000, Compression::None, marker, &[(0, 0)]);
        set.extend(batch(
            11,
            7_000,
            Compression::None,
            DATA,
            &[(0, 0), (3, 30)],
        ));
        assert_eq!(at(&set, 10), Some((7_000, Source::Exact)));
        assert_eq!(at(&set, 12), Some((7_030, Source::Exact)));
    }

    #[test]
    fn compressed_batches_are_decompressed_and_exact_in_every_codec() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let set = batch(0, 9_000, codec, DATA, &[(0, 0), (1, 10), (2, 35)]);
            assert_eq!(at(&set, 2), Some((9_035, Source::Exact)), "{codec:?}");
            assert_eq!(at(&set, 1), Some((9_010, Source::Exact)), "{codec:?}");
        }
    }

    #[test]
    fn a_batch_cut_short_or_unreadable_gives_its_first_timestamp_labelled_batch() {
        let full = batch(0, 9_000, Compression::Zstd, DATA, &[(0, 0), (1, 10)]);
        assert_eq!(
            at(&full[..70], 1),
            Some((9_000, Source::Batch)),
            "cut short"
        );
        assert_eq!(at(&full[..20], 1), None, "not even a header");
        let mut corrupt = full.clone();
        let n = corrupt.len();
        corrupt[n - 3] ^= 0xff; // fails the CRC
        assert_eq!(at(&corrupt, 1), Some((9_000, Source::Batch)));
    }

    #[test]
    fn log_append_time_batches_give_the_append_time() {
        let mut set = batch(0, 9_000, Compression::Gzip, DATA, &[(0, 0), (1, 10)]);
        set[22] |= 0x08; // the attributes' timestamp type: LogAppendTime
        assert_eq!(at(&set, 0), Some((9_010, Source::Exact)));
    }

    #[test]
    fn an_unreadable_assignment_is_empty_not_a_panic() {
        assert!(decode_assignment(&Bytes::from_static(b"")).is_empty());
        assert!(decode_assignment(&Bytes::from_static(b"\x00\x00\xff")).is_empty());
    }
}
