//! Final reads: after the workload, every key read to its highest offset.

use super::*;

/// Final reads: a fresh process assigns every key from the beginning and
/// polls (each poll recorded) until it has read, for every key, at least up
/// to `targets[key]`, or `deadline` passes. Returns the keys not reached.
pub async fn final_reads(
    process: u64,
    settings: &ClientSettings,
    keymap: &KeyMap,
    rec: Arc<Recorder>,
    targets: &BTreeMap<Key, Offset>,
    also: &[Key],
    deadline: Instant,
) -> Result<BTreeMap<Key, Offset>, ClientError> {
    let mut s = settings.clone();
    s.commit = CommitMode::None;
    s.from_beginning = true;
    s.txn = false;
    s.group_id = format!("{}-final", settings.group_id);
    let mut c = Client::new(process, u64::MAX, &s, keymap, rec).await?;
    c.final_reads = true;
    let mut keys: Vec<Key> = targets.keys().copied().collect();
    keys.extend(also.iter().copied().filter(|k| !targets.contains_key(k)));
    keys.sort_unstable();
    let mut missing: BTreeMap<Key, Offset> = targets.clone();
    if keys.is_empty() {
        return Ok(missing);
    }
    // Sends whose offsets the workers never learned (acks=0, sends after
    // the last poll of a key) are below the high watermark: read up to it.
    // Not with transactions: the last offset may be a commit or abort
    // marker, which no consumer ever returns.
    let tps: Vec<(Key, String, i32)> = keys
        .iter()
        .filter(|_| !settings.txn)
        .map(|&k| (k, keymap.topic(k), keymap.partition(k)))
        .collect();
    let consumer = c.consumer.clone();
    let marks = tokio::task::spawn_blocking(move || {
        tps.into_iter()
            .filter_map(|(k, t, p)| {
                consumer
                    .fetch_watermarks(&t, p, Duration::from_secs(5))
                    .ok()
                    .map(|(low, high)| (k, low, high))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    for (k, low, high) in marks {
        if high > low && high > 0 {
            let last = (high - 1) as Offset;
            // Keys with no known offset (acks=0) are read to the watermark.
            let t = missing.entry(k).or_insert(last);
            *t = (*t).max(last);
        }
    }
    if c.assign(&keys) != Outcome::Ok {
        return Ok(missing);
    }
    let mut read_high: BTreeMap<Key, Offset> = BTreeMap::new();
    while !missing.is_empty() && Instant::now() < deadline {
        let (_, learned) = c.poll_op().await;
        for (k, o) in learned.read {
            let e = read_high.entry(k).or_insert(o);
            *e = (*e).max(o);
        }
        missing.retain(|k, target| read_high.get(k).is_none_or(|r| r < target));
    }
    Ok(missing)
}
