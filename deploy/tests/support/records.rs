//! Raw Produce v3 and Fetch v4 requests with uncompressed v2 record
//! batches: what the deploy tests use to write to a broker and read back
//! without a Kafka client library. Test code only (the library keeps the
//! requests the product uses, in `gregor_deploy::wire`).

#![allow(dead_code)]

use std::time::Duration;

use gregor_deploy::wire::{put_string, round_trip, Reader, WireError};

const API_FETCH: i16 = 1;
const API_PRODUCE: i16 = 0;

/// The outcome of producing one batch to one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceResult {
    pub error_code: i16,
    /// Offset of the first record of the batch (-1 on error).
    pub base_offset: i64,
}

/// Produce v3: write `values` (null keys) as one uncompressed batch to
/// `topic`/`partition` with the given `acks` (-1 = all).
pub fn produce(
    addr: &str,
    topic: &str,
    partition: i32,
    values: &[&[u8]],
    acks: i16,
    timeout: Duration,
) -> Result<ProduceResult, WireError> {
    let batch = encode_record_batch(values, 0);
    let mut body = Vec::new();
    body.extend_from_slice(&(-1i16).to_be_bytes()); // no transactional id
    body.extend_from_slice(&acks.to_be_bytes());
    body.extend_from_slice(&(timeout.as_millis() as i32).to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    put_string(&mut body, topic);
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&partition.to_be_bytes());
    body.extend_from_slice(&(batch.len() as i32).to_be_bytes());
    body.extend_from_slice(&batch);
    let resp = round_trip(addr, API_PRODUCE, 3, &body, timeout)?;
    let mut r = Reader::new(addr, &resp);
    for _ in 0..r.i32()? {
        let name = r.string()?;
        for _ in 0..r.i32()? {
            let index = r.i32()?;
            let error_code = r.i16()?;
            let base_offset = r.i64()?;
            let _log_append_time = r.i64()?;
            if name.as_deref() == Some(topic) && index == partition {
                return Ok(ProduceResult {
                    error_code,
                    base_offset,
                });
            }
        }
    }
    Err(r.malformed(format!("no result for {topic}/{partition}")))
}

/// A record read back by [`fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedRecord {
    pub offset: i64,
    pub value: Option<Vec<u8>>,
}

/// The outcome of fetching one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResult {
    pub error_code: i16,
    pub high_watermark: i64,
    pub records: Vec<FetchedRecord>,
}

/// Fetch v4 (read committed) of `topic`/`partition` from `offset`, up to about 1 MiB.
pub fn fetch(
    addr: &str,
    topic: &str,
    partition: i32,
    offset: i64,
    timeout: Duration,
) -> Result<FetchResult, WireError> {
    let mut body = Vec::new();
    body.extend_from_slice(&(-1i32).to_be_bytes()); // replica id: a consumer
    body.extend_from_slice(&100i32.to_be_bytes()); // max wait ms
    body.extend_from_slice(&1i32.to_be_bytes()); // min bytes
    body.extend_from_slice(&(1i32 << 20).to_be_bytes()); // max bytes
    body.push(1); // read committed
    body.extend_from_slice(&1i32.to_be_bytes());
    put_string(&mut body, topic);
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&partition.to_be_bytes());
    body.extend_from_slice(&offset.to_be_bytes());
    body.extend_from_slice(&(1i32 << 20).to_be_bytes());
    let resp = round_trip(addr, API_FETCH, 4, &body, timeout)?;
    let mut r = Reader::new(addr, &resp);
    let _throttle = r.i32()?;
    for _ in 0..r.i32()? {
        let name = r.string()?;
        for _ in 0..r.i32()? {
            let index = r.i32()?;
            let error_code = r.i16()?;
            let high_watermark = r.i64()?;
            let _last_stable = r.i64()?;
            let aborted = r.i32()?;
            for _ in 0..aborted.max(0) {
                r.take(16)?;
            }
            let len = r.i32()?;
            let bytes = if len > 0 {
                r.take(len as usize)?
            } else {
                &[][..]
            };
            if name.as_deref() == Some(topic) && index == partition {
                let mut records = decode_record_batches(addr, bytes)?;
                records.retain(|rec| rec.offset >= offset);
                return Ok(FetchResult {
                    error_code,
                    high_watermark,
                    records,
                });
            }
        }
    }
    Err(r.malformed(format!("no result for {topic}/{partition}")))
}

/// CRC-32C (Castagnoli), the checksum of v2 record batches.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn put_varint(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

/// An uncompressed v2 record batch of `values` with null keys, no headers.
pub fn encode_record_batch(values: &[&[u8]], timestamp_ms: i64) -> Vec<u8> {
    let mut records = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let mut rec = vec![0u8]; // attributes
        put_varint(&mut rec, 0); // timestamp delta
        put_varint(&mut rec, i as i64); // offset delta
        put_varint(&mut rec, -1); // null key
        put_varint(&mut rec, value.len() as i64);
        rec.extend_from_slice(value);
        put_varint(&mut rec, 0); // headers
        put_varint(&mut records, rec.len() as i64);
        records.extend_from_slice(&rec);
    }
    // from attributes to the end: what the CRC covers
    let mut tail = Vec::new();
    tail.extend_from_slice(&0i16.to_be_bytes()); // attributes
    tail.extend_from_slice(&(values.len() as i32 - 1).to_be_bytes()); // last offset delta
    tail.extend_from_slice(&timestamp_ms.to_be_bytes());
    tail.extend_from_slice(&timestamp_ms.to_be_bytes());
    tail.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    tail.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    tail.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    tail.extend_from_slice(&(values.len() as i32).to_be_bytes());
    tail.extend_from_slice(&records);
    let mut batch = Vec::new();
    batch.extend_from_slice(&0i64.to_be_bytes()); // base offset
    let length = 4 + 1 + 4 + tail.len(); // leader epoch, magic, crc, tail
    batch.extend_from_slice(&(length as i32).to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&crc32c(&tail).to_be_bytes());
    batch.extend_from_slice(&tail);
    batch
}

/// Decode the records of consecutive uncompressed v2 batches; a partial
/// batch at the end (brokers may cut one off) is ignored.
pub fn decode_record_batches(addr: &str, bytes: &[u8]) -> Result<Vec<FetchedRecord>, WireError> {
    let mut out = Vec::new();
    let mut r = Reader::new(addr, bytes);
    while r.remaining() >= 12 {
        let base_offset = r.i64()?;
        let length = r.i32()?;
        if length < 0 || r.remaining() < length as usize {
            break;
        }
        let mut b = Reader::new(addr, r.take(length as usize)?);
        let _leader_epoch = b.i32()?;
        let magic = b.u8()?;
        if magic != 2 {
            return Err(b.malformed(format!("record batch magic {magic}, only 2 is supported")));
        }
        let _crc = b.i32()?;
        let attributes = b.i16()?;
        if attributes & 0x7 != 0 {
            return Err(b.malformed("compressed record batch".into()));
        }
        b.take(4 + 8 + 8 + 8 + 2 + 4)?;
        let count = b.i32()?;
        for _ in 0..count.max(0) {
            let _len = b.varint()?;
            let _attributes = b.u8()?;
            let _ts = b.varint()?;
            let offset_delta = b.varint()?;
            let key_len = b.varint()?;
            if key_len > 0 {
                b.take(key_len as usize)?;
            }
            let value_len = b.varint()?;
            let value = if value_len >= 0 {
                Some(b.take(value_len as usize)?.to_vec())
            } else {
                None
            };
            for _ in 0..b.varint()?.max(0) {
                let k = b.varint()?;
                b.take(k.max(0) as usize)?;
                let v = b.varint()?;
                b.take(v.max(0) as usize)?;
            }
            out.push(FetchedRecord {
                offset: base_offset + offset_delta,
                value,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn varints_round_trip_including_negative_and_large_values() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -301,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!(Reader::new("x", &buf).varint().unwrap(), v, "{v}");
        }
    }

    #[test]
    fn a_record_batch_decodes_back_to_its_values_and_offsets() {
        let values: [&[u8]; 3] = [b"a", b"", b"hello"];
        let mut bytes = encode_record_batch(&values, 1_700_000_000_000);
        // rewrite the base offset as a broker would
        bytes[..8].copy_from_slice(&40i64.to_be_bytes());
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes[..20]); // a partial second batch is ignored
        let recs = decode_record_batches("x", &two).unwrap();
        let got: Vec<(i64, Vec<u8>)> = recs
            .into_iter()
            .map(|r| (r.offset, r.value.unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![
                (40, b"a".to_vec()),
                (41, b"".to_vec()),
                (42, b"hello".to_vec())
            ]
        );
        // the CRC covers attributes..end
        let crc = u32::from_be_bytes([bytes[17], bytes[18], bytes[19], bytes[20]]);
        assert_eq!(crc, crc32c(&bytes[21..]));
    }
}
