//! Cycles explained in words: each step's operations and the relation
//! between them, as Elle writes them.

use super::*;

/// Edges a cycle witness spells out in its `explanation` text at most.
pub(super) const MAX_TEXT_EDGES: usize = 12;

pub(super) fn ms(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

pub(super) fn describe_op(h: &History, op: &Op) -> Json {
    let e = op.event(h);
    json!({
        "index": e.index,
        "process": e.process,
        "type": e.kind.as_str(),
        "f": e.f.as_str(),
        "value": serde_json::to_value(e).ok().and_then(|v| v.get("value").cloned()).unwrap_or(Json::Null),
    })
}

pub(super) fn explain_step(h: &History, ops: &[Op], ix: &Index, a: u32, b: u32, rel: u8) -> Json {
    let (oa, ob) = (&ops[a as usize], &ops[b as usize]);
    let (ia, ib) = (oa.index(h), ob.index(h));
    let mut m = serde_json::Map::new();
    m.insert("type".into(), json!(rel_name(rel)));
    m.insert("from".into(), json!(ia));
    m.insert("to".into(), json!(ib));
    let text = match rel {
        WR => ob
            .reads(h)
            .flat_map(|(k, pairs)| pairs.iter().map(move |&(off, v)| (k, off, v)))
            .find(|&(k, _, v)| ix.writer(k, v).is_some_and(|w| w.op == a))
            .map(|(k, off, v)| {
                m.insert("key".into(), json!(k));
                m.insert("value".into(), json!(v));
                m.insert("offset".into(), json!(off));
                format!("op {ia} sent {v} to key {k}, and op {ib} polled it at offset {off} (wr)")
            }),
        WW => ob
            .sends(h)
            .find_map(|(k, v2, _)| {
                let s2 = ix.writer(k, v2).filter(|s| s.op == b)?;
                let s1 = ix.slot(s2.prev).filter(|s| s.op == a)?;
                Some((k, *s1, *s2))
            })
            .map(|(k, s1, s2)| {
                let (v1, v2) = (s1.value, s2.value);
                m.insert("key".into(), json!(k));
                m.insert("value".into(), json!(v1));
                m.insert("value'".into(), json!(v2));
                m.insert("offset".into(), json!(s1.offset));
                m.insert("offset'".into(), json!(s2.offset));
                format!(
                    "op {ia} sent {v1} to key {k} at offset {}, the version just before {v2} at offset {} \
                     which op {ib} sent (ww)",
                    s1.offset, s2.offset
                )
            }),
        RW => oa
            .reads(h)
            .find_map(|(k, pairs)| {
                let &(off, v) = pairs.iter().max_by_key(|(off, _)| *off)?;
                let next = ix.next_after_read(k, pairs).filter(|s| s.op == b)?;
                Some((k, off, v, *next))
            })
            .map(|(k, off, v, next)| {
                m.insert("key".into(), json!(k));
                m.insert("value".into(), json!(v));
                m.insert("value'".into(), json!(next.value));
                m.insert("offset".into(), json!(off));
                m.insert("offset'".into(), json!(next.offset));
                format!(
                    "op {ia} polled key {k} up to {v} at offset {off} but not the next version {} at offset {}, \
                     which op {ib} sent (rw)",
                    next.value, next.offset
                )
            }),
        PROCESS => {
            let p = oa.event(h).process;
            m.insert("process".into(), json!(p));
            Some(format!("process {p} completed op {ia} before it invoked op {ib} (process)"))
        }
        REALTIME => {
            let t1 = oa.event(h).time;
            let t2 = h.events[ob.inv].time;
            m.insert("completed".into(), json!(t1));
            m.insert("invoked".into(), json!(t2));
            Some(format!("op {ia} completed at {} before op {ib} was invoked at {} (realtime)", ms(t1), ms(t2)))
        }
        _ => None,
    };
    m.insert(
        "explanation".into(),
        json!(text.unwrap_or_else(|| format!("op {ia} precedes op {ib} ({})", rel_name(rel)))),
    );
    Json::Object(m)
}

pub(super) fn meaning(data: Data, variant: Variant) -> String {
    let d = match data {
        Data::G0 => "Their writes were ordered one way on one key and the other way on another, so the writes \
                     of these operations were not applied atomically (write cycle)",
        Data::G1c => "Information flowed in a circle: each operation (transitively) observed the others' writes, \
                      which no order of committed transactions allows (circular information flow)",
        Data::GSingle => "One read missed a write that, through the other dependencies, happened before it \
                          (read skew); snapshot isolation forbids this",
        Data::GNonadjacent | Data::G2Item => "Reads missed each other's writes in a circle (anti-dependency \
                                              cycle); serializability forbids this",
    };
    let v = match variant {
        Variant::Plain => "",
        Variant::Process => "; the cycle closes only through the order in which one process ran its operations",
        Variant::Realtime => "; the cycle closes only through realtime order (an operation finished before another began)",
    };
    format!("{d}{v}")
}

#[allow(clippy::too_many_arguments)]
pub(super) fn explain_cycle(
    h: &History,
    ops: &[Op],
    ix: &Index,
    c: &search::Cycle,
    name: &str,
    data: Data,
    variant: Variant,
    scc_size: usize,
) -> Json {
    let n = c.ops.len();
    // Very long cycles keep their first edges only (a witness must stay
    // readable and small); `cycle-length` tells the whole size.
    let shown = n.min(MAX_WITNESS_EDGES);
    let steps: Vec<Json> = (0..shown)
        .map(|i| explain_step(h, ops, ix, c.ops[i], c.ops[(i + 1) % n], c.rels[i]))
        .collect();
    let indices: Vec<u64> = c.ops.iter().map(|&v| ops[v as usize].index(h)).collect();
    let chain: Vec<String> = if n <= MAX_TEXT_EDGES {
        indices
            .iter()
            .chain(indices.first())
            .map(|i| i.to_string())
            .collect()
    } else {
        let mut c: Vec<String> = indices[..MAX_TEXT_EDGES]
            .iter()
            .map(|i| i.to_string())
            .collect();
        c.push(format!("... ({n} ops in all)"));
        c.push(indices[0].to_string());
        c
    };
    let mut why: Vec<String> = steps
        .iter()
        .take(MAX_TEXT_EDGES)
        .filter_map(|s| {
            s.get("explanation")
                .and_then(|e| e.as_str())
                .map(str::to_string)
        })
        .collect();
    if n > MAX_TEXT_EDGES {
        why.push(format!(
            "and {} more steps (`steps` lists the first {shown})",
            n - MAX_TEXT_EDGES
        ));
    }
    let mut w = json!({
        "explanation": format!(
            "{name}: ops {} form a dependency cycle, so no order of them explains what they observed: {}. {}",
            chain.join(" -> "),
            why.join("; "),
            meaning(data, variant)
        ),
        "ops": indices[..shown],
        "cycle": c.ops[..shown].iter().map(|&v| describe_op(h, &ops[v as usize])).collect::<Vec<_>>(),
        "steps": steps,
        "cycle-length": n,
        "scc-size": scc_size,
    });
    if shown < n {
        w["truncated"] = json!(format!("only the first {shown} of {n} edges are listed"));
    }
    w
}

/// A cheap witness: the ops and relationship of each edge, no per-edge text.
pub(super) fn compact_cycle(
    h: &History,
    ops: &[Op],
    c: &search::Cycle,
    name: &str,
    scc_size: usize,
) -> Json {
    let n = c.ops.len();
    let shown = n.min(MAX_WITNESS_EDGES);
    let indices: Vec<u64> = c.ops[..shown]
        .iter()
        .map(|&v| ops[v as usize].index(h))
        .collect();
    let rels: Vec<&str> = c.rels[..shown].iter().map(|&r| rel_name(r)).collect();
    let text: Vec<String> = (0..shown.min(MAX_TEXT_EDGES))
        .map(|i| format!("{} -{}->", indices[i], rels[i]))
        .collect();
    json!({
        "explanation": format!(
            "{name}: ops {} {}{} form a dependency cycle; the first {MAX_DETAILED_WITNESSES} {name} witnesses \
             explain each edge",
            text.join(" "),
            if n > MAX_TEXT_EDGES { "... " } else { "" },
            indices[0]
        ),
        "ops": indices,
        "rels": rels,
        "cycle-length": n,
        "scc-size": scc_size,
    })
}
