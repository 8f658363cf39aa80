//! One poll of the cluster over the Kafka protocol: what the brokers say,
//! nothing evaluated yet (see [`super::Monitor::evaluate`]).
//!
//! Requests per poll, for B brokers: 1 Metadata; 2 ListOffsets per leader
//! (latest, earliest; every partition of the leader in one request); 1
//! ListGroups per broker (in KRaft a broker lists the groups it
//! coordinates, so no FindCoordinator is needed); per coordinator, 1
//! DescribeGroups (classic groups), 1 ConsumerGroupDescribe (KIP-848
//! groups) and 1 OffsetFetch (v8+: every group in one request; older
//! brokers one per group); and a few Fetch requests for record timestamps
//! (one partition once per request, cached between polls). Brokers are
//! asked concurrently.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use gregor_deploy::kapi::messages::{
    self, BrokerId, ConsumerGroupDescribeRequest, DescribeGroupsRequest, FetchRequest, GroupId,
    ListGroupsRequest, ListOffsetsRequest, OffsetFetchRequest, TopicName,
};
use gregor_deploy::kapi::{Brokers, KStr, KapiError};
use kafka_protocol::protocol::Decodable;

use super::{BrokerState, Gtp, Member, MonitorConfig, PartitionState};

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
    /// (group, topic, partition) -> (committed offset, record timestamp ms)
    /// read this poll.
    pub record_timestamps: Vec<(Gtp, (i64, i64))>,
    /// The metadata answered (the partition list is complete).
    pub metadata_ok: bool,
    /// Every broker listed its groups and every coordinator answered (the
    /// group list is complete: groups not in it are gone).
    pub groups_complete: bool,
    pub errors: Vec<String>,
}

fn kstr(s: &str) -> KStr {
    KStr::from_string(s.to_string())
}

/// Polls the cluster once. `cached(group, topic, partition)`: the committed
/// offset whose record timestamp is already known (not fetched again while
/// the committed offset stays).
pub async fn collect(
    brokers: &mut Brokers,
    config: &MonitorConfig,
    known: &mut BTreeMap<i32, String>,
    cached: &(dyn Fn(&str, &str, i32) -> Option<i64> + Sync),
) -> RawPoll {
    let mut raw = RawPoll::default();
    // Brokers that could not be reached this poll: not asked again until
    // the next poll, so a paused broker costs one timeout, not one per
    // request.
    let mut dead: BTreeMap<i32, String> = BTreeMap::new();

    // 1. Metadata: brokers and partitions.
    let meta = match brokers.metadata(None).await {
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
                    .map(|(id, addr)| BrokerState {
                        id: *id,
                        addr: addr.clone(),
                        up: false,
                        error: Some("no broker answered".into()),
                    })
                    .collect()
            };
            return raw;
        }
    };
    raw.metadata_ok = true;
    let listed: BTreeMap<i32, String> = brokers.brokers().map(|b| (b.id, b.addr())).collect();
    known.extend(listed.clone());
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

    // Broker health: every broker listed gets a ListGroups below; its
    // answer says whether it is up.
    let mut broker_err: BTreeMap<i32, Option<String>> =
        listed.keys().map(|id| (*id, None)).collect();

    // 2. ListOffsets per leader: latest (-1) and earliest (-2).
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
    let mut reqs = Vec::new();
    for (leader, topics) in &by_leader {
        for ts in [-1i64, -2] {
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(0)
                .with_timeout_ms(config.request_timeout.as_millis().min(i32::MAX as u128) as i32)
                .with_topics(
                    topics
                        .iter()
                        .map(|(t, ps)| {
                            messages::list_offsets_request::ListOffsetsTopic::default()
                                .with_name(TopicName(kstr(t)))
                                .with_partitions(
                                    ps.iter()
                                        .map(|p| {
                                            messages::list_offsets_request::ListOffsetsPartition::default()
                                                .with_partition_index(*p)
                                                .with_timestamp(ts)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            reqs.push((*leader, (ts, req)));
        }
    }
    let kinds: Vec<i64> = reqs.iter().map(|(_, (ts, _))| *ts).collect();
    let answers = send_many(
        brokers,
        &mut dead,
        reqs.into_iter().map(|(b, (_, r))| (b, r)).collect(),
    )
    .await;
    let mut offsets: HashMap<(String, i32), (Option<i64>, Option<i64>)> = HashMap::new();
    for ((broker, answer), ts) in answers.into_iter().zip(kinds) {
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
                        let e = offsets
                            .entry((t.name.0.to_string(), p.partition_index))
                            .or_default();
                        if ts == -1 {
                            e.1 = Some(p.offset);
                        } else {
                            e.0 = Some(p.offset);
                        }
                    }
                }
                if let Some(code) = first_err {
                    raw.errors.push(format!(
                        "ListOffsets on broker {broker}: {failed} partition(s) failed ({})",
                        error_name(code)
                    ));
                }
            }
            Err(e) => {
                raw.errors
                    .push(format!("ListOffsets on broker {broker}: {e}"));
                if let Some(slot) = broker_err.get_mut(&broker) {
                    slot.get_or_insert(e.to_string());
                }
            }
        }
    }
    for p in &mut raw.partitions {
        if let Some((e, l)) = offsets.get(&(p.topic.clone(), p.partition)) {
            p.earliest = *e;
            p.latest = *l;
        }
    }

    // 3. ListGroups on every broker: the broker that lists a group is its
    // coordinator.
    let ids: Vec<i32> = listed.keys().copied().collect();
    let answers = send_many(
        brokers,
        &mut dead,
        ids.iter()
            .map(|id| (*id, ListGroupsRequest::default()))
            .collect(),
    )
    .await;
    let mut groups_complete = true;
    let mut classic: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut modern: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut states: BTreeMap<String, (String, i32)> = BTreeMap::new();
    for (broker, answer) in answers {
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
                    states.insert(id.clone(), (g.group_state.to_string(), broker));
                    if gtype == "consumer" {
                        modern.entry(broker).or_default().push(id);
                    } else {
                        classic.entry(broker).or_default().push(id);
                    }
                }
            }
            Ok(resp) => {
                groups_complete = false;
                raw.errors.push(format!(
                    "ListGroups on broker {broker}: {}",
                    error_name(resp.error_code)
                ));
            }
            Err(e) => {
                groups_complete = false;
                raw.errors
                    .push(format!("ListGroups on broker {broker}: {e}"));
                if let Some(slot) = broker_err.get_mut(&broker) {
                    slot.get_or_insert(e.to_string());
                }
            }
        }
    }
    raw.brokers = known
        .iter()
        .map(|(id, addr)| match broker_err.get(id) {
            Some(None) => BrokerState {
                id: *id,
                addr: addr.clone(),
                up: true,
                error: None,
            },
            Some(Some(e)) => BrokerState {
                id: *id,
                addr: addr.clone(),
                up: false,
                error: Some(e.clone()),
            },
            None => BrokerState {
                id: *id,
                addr: addr.clone(),
                up: false,
                error: Some("not in the cluster's metadata (stopped or fenced)".into()),
            },
        })
        .collect();

    // 4. Describe the groups, per coordinator.
    let mut groups: BTreeMap<String, RawGroup> = states
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
    const CHUNK: usize = 500;
    let mut reqs = Vec::new();
    for (coord, gs) in &classic {
        for chunk in gs.chunks(CHUNK) {
            reqs.push((
                *coord,
                DescribeGroupsRequest::default()
                    .with_groups(chunk.iter().map(|g| GroupId(kstr(g))).collect()),
            ));
        }
    }
    for (broker, answer) in send_many(brokers, &mut dead, reqs).await {
        match answer {
            Ok(resp) => {
                for d in resp.groups {
                    let id = d.group_id.0.to_string();
                    let Some(g) = groups.get_mut(&id) else {
                        continue;
                    };
                    if d.error_code != 0 {
                        g.error = Some(format!("DescribeGroups: {}", error_name(d.error_code)));
                        continue;
                    }
                    if !d.group_state.is_empty() {
                        g.state = d.group_state.to_string();
                    }
                    let consumer = d.protocol_type.is_empty() || &*d.protocol_type == "consumer";
                    g.members = d
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
                }
            }
            Err(e) => raw
                .errors
                .push(format!("DescribeGroups on broker {broker}: {e}")),
        }
    }
    let mut reqs = Vec::new();
    for (coord, gs) in &modern {
        for chunk in gs.chunks(CHUNK) {
            reqs.push((
                *coord,
                ConsumerGroupDescribeRequest::default()
                    .with_group_ids(chunk.iter().map(|g| GroupId(kstr(g))).collect()),
            ));
        }
    }
    for (broker, answer) in send_many(brokers, &mut dead, reqs).await {
        match answer {
            Ok(resp) => {
                for d in resp.groups {
                    let id = d.group_id.0.to_string();
                    let Some(g) = groups.get_mut(&id) else {
                        continue;
                    };
                    if d.error_code != 0 {
                        g.error = Some(format!(
                            "ConsumerGroupDescribe: {}",
                            error_name(d.error_code)
                        ));
                        continue;
                    }
                    if !d.group_state.is_empty() {
                        g.state = d.group_state.to_string();
                    }
                    g.members = d
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
                }
            }
            Err(e) => raw
                .errors
                .push(format!("ConsumerGroupDescribe on broker {broker}: {e}")),
        }
    }

    // 5. Committed offsets, per coordinator.
    let mut by_coord: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for (g, (_, coord)) in &states {
        by_coord.entry(*coord).or_default().push(g.clone());
    }
    let mut reqs = Vec::new();
    // Which group a one-group (pre-v8) request is for.
    let mut single: Vec<Option<String>> = Vec::new();
    for (coord, gs) in &by_coord {
        let batched = match dead.contains_key(coord) {
            true => true, // answered below with the error
            false => match brokers.broker(*coord).await {
                Ok(c) => c.supports::<OffsetFetchRequest>(8),
                Err(_) => true, // the send below reports the error
            },
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
                single.push(Some(g.clone()));
                reqs.push((
                    *coord,
                    OffsetFetchRequest::default()
                        .with_group_id(GroupId(kstr(g)))
                        .with_topics(None),
                ));
            }
        }
    }
    let selected_topics: BTreeSet<String> =
        raw.partitions.iter().map(|p| p.topic.clone()).collect();
    let mut per_group_err: Vec<(String, String)> = Vec::new();
    let mut committed = Vec::new();
    let mut push = |group: &str, topic: &str, partition: i32, offset: i64, code: i16| {
        if code != 0 || offset < 0 || !selected_topics.contains(topic) {
            return;
        }
        committed.push(Committed {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
            committed: offset,
        });
    };
    let answers = send_many(brokers, &mut dead, reqs).await;
    for ((broker, answer), one) in answers.into_iter().zip(single) {
        match (answer, one) {
            (Ok(resp), Some(gid)) => {
                if resp.error_code != 0 {
                    groups_complete = false;
                    per_group_err
                        .push((gid, format!("OffsetFetch: {}", error_name(resp.error_code))));
                    continue;
                }
                for t in resp.topics {
                    let tn = t.name.0.to_string();
                    for p in t.partitions {
                        push(
                            &gid,
                            &tn,
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
                        groups_complete = false;
                        per_group_err
                            .push((gid, format!("OffsetFetch: {}", error_name(g.error_code))));
                        continue;
                    }
                    for t in g.topics {
                        let tn = t.name.0.to_string();
                        for p in t.partitions {
                            push(
                                &gid,
                                &tn,
                                p.partition_index,
                                p.committed_offset,
                                p.error_code,
                            );
                        }
                    }
                }
            }
            (Err(e), _) => {
                groups_complete = false;
                raw.errors
                    .push(format!("OffsetFetch on broker {broker}: {e}"));
            }
        }
    }
    raw.committed = committed;
    for (g, e) in per_group_err {
        if let Some(rg) = groups.get_mut(&g) {
            rg.error.get_or_insert(e);
        }
    }
    raw.groups_complete = groups_complete;
    raw.groups = groups.into_values().collect();

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
    raw
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

/// The timestamp (ms) of the first data record at or after `offset` in a
/// fetched record set (magic v2 batches). Uncompressed batches are read
/// record by record; for a compressed or truncated batch the batch's first
/// timestamp is used (a producer batch spans at most its `linger.ms`). A
/// LogAppendTime batch gives the broker's append time.
pub fn record_timestamp(records: &[u8], offset: i64) -> Option<i64> {
    let mut pos = 0usize;
    while pos + 61 <= records.len() {
        let h = &records[pos..];
        let base = i64::from_be_bytes(h[0..8].try_into().ok()?);
        let len = i32::from_be_bytes(h[8..12].try_into().ok()?);
        if len < 49 {
            return None;
        }
        let total = 12 + len as usize;
        let magic = h[16] as i8;
        if magic != 2 {
            return None;
        }
        let attributes = i16::from_be_bytes(h[21..23].try_into().ok()?);
        let last_delta = i32::from_be_bytes(h[23..27].try_into().ok()?);
        let base_ts = i64::from_be_bytes(h[27..35].try_into().ok()?);
        let max_ts = i64::from_be_bytes(h[35..43].try_into().ok()?);
        let control = attributes & 0x20 != 0;
        let last = base + last_delta as i64;
        if last < offset || control {
            pos += total;
            continue;
        }
        if attributes & 0x08 != 0 {
            return Some(max_ts); // LogAppendTime
        }
        let compressed = attributes & 0x07 != 0;
        let complete = pos + total <= records.len();
        if compressed || !complete {
            return Some(base_ts);
        }
        // Walk the records.
        let mut r = &records[pos + 61..pos + total];
        while !r.is_empty() {
            let rec_len = varint(&mut r)?;
            if rec_len < 0 || rec_len as usize > r.len() {
                return Some(base_ts);
            }
            let mut rec = &r[..rec_len as usize];
            r = &r[rec_len as usize..];
            if rec.is_empty() {
                return Some(base_ts);
            }
            rec = &rec[1..]; // attributes
            let ts_delta = varint(&mut rec)?;
            let off_delta = varint(&mut rec)?;
            if base + off_delta >= offset {
                return Some(base_ts + ts_delta);
            }
        }
        pos += total;
    }
    None
}

/// A zigzag varint/varlong.
fn varint(b: &mut &[u8]) -> Option<i64> {
    let mut v: u64 = 0;
    let mut shift = 0;
    loop {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    Some(((v >> 1) as i64) ^ -((v & 1) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zigzag(v: i64, out: &mut Vec<u8>) {
        let mut u = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            let b = (u & 0x7f) as u8;
            u >>= 7;
            if u == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    }

    /// A magic-2 batch at `base` with records at (offset delta, ts delta).
    fn batch(base: i64, base_ts: i64, attributes: i16, recs: &[(i64, i64)]) -> Vec<u8> {
        let mut body = Vec::new();
        for &(od, td) in recs {
            let mut rec = vec![0u8];
            zigzag(td, &mut rec);
            zigzag(od, &mut rec);
            zigzag(-1, &mut rec); // key
            zigzag(1, &mut rec); // value length
            rec.push(b'x');
            zigzag(0, &mut rec); // headers
            zigzag(rec.len() as i64, &mut body);
            body.extend(rec);
        }
        let last = recs.last().map(|r| r.0).unwrap_or(0) as i32;
        let max_ts = base_ts + recs.iter().map(|r| r.1).max().unwrap_or(0);
        let mut h = Vec::new();
        h.extend(base.to_be_bytes());
        h.extend(((49 + body.len()) as i32).to_be_bytes());
        h.extend(0i32.to_be_bytes()); // leader epoch
        h.push(2); // magic
        h.extend(0u32.to_be_bytes()); // crc (not checked)
        h.extend(attributes.to_be_bytes());
        h.extend(last.to_be_bytes());
        h.extend(base_ts.to_be_bytes());
        h.extend(max_ts.to_be_bytes());
        h.extend((-1i64).to_be_bytes());
        h.extend((-1i16).to_be_bytes());
        h.extend((-1i32).to_be_bytes());
        h.extend((recs.len() as i32).to_be_bytes());
        h.extend(body);
        h
    }

    #[test]
    fn the_timestamp_of_the_record_at_an_offset_inside_a_batch_is_exact() {
        let mut set = batch(100, 1_000_000, 0, &[(0, 0), (1, 250), (2, 900)]);
        set.extend(batch(103, 2_000_000, 0, &[(0, 0), (1, 5)]));
        assert_eq!(record_timestamp(&set, 100), Some(1_000_000));
        assert_eq!(record_timestamp(&set, 101), Some(1_000_250));
        assert_eq!(record_timestamp(&set, 102), Some(1_000_900));
        assert_eq!(record_timestamp(&set, 104), Some(2_000_005));
        assert_eq!(record_timestamp(&set, 105), None, "past the end");
    }

    #[test]
    fn compacted_gaps_give_the_next_record_and_control_batches_are_skipped() {
        let mut set = batch(10, 5_000, 0x20, &[(0, 0)]); // a transaction marker
        set.extend(batch(11, 7_000, 0, &[(0, 0), (3, 30)]));
        assert_eq!(record_timestamp(&set, 10), Some(7_000));
        assert_eq!(record_timestamp(&set, 12), Some(7_030));
    }

    #[test]
    fn compressed_or_truncated_batches_give_the_batch_timestamp() {
        let set = batch(0, 9_000, 0x04, &[(0, 0), (1, 10)]);
        assert_eq!(record_timestamp(&set, 1), Some(9_000));
        let full = batch(0, 9_000, 0, &[(0, 0), (1, 10)]);
        assert_eq!(record_timestamp(&full[..70], 1), Some(9_000));
        assert_eq!(record_timestamp(&full[..20], 1), None);
    }

    #[test]
    fn log_append_time_batches_give_the_append_time() {
        let set = batch(0, 9_000, 0x08, &[(0, 0), (1, 10)]);
        assert_eq!(record_timestamp(&set, 0), Some(9_010));
    }

    #[test]
    fn an_unreadable_assignment_is_empty_not_a_panic() {
        assert!(decode_assignment(&Bytes::from_static(b"")).is_empty());
        assert!(decode_assignment(&Bytes::from_static(b"\x00\x00\xff")).is_empty());
    }
}
