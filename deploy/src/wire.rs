//! A few raw Kafka protocol requests, enough to tell whether a broker
//! answers and what it says about topics, without a Kafka client library.
//!
//! Only non-flexible request versions are used, except DescribeQuorum v0:
//! ApiVersions v0 (which every Kafka-compatible broker answers, so
//! readiness checks rely on it), Metadata v8 and CreateTopics v4 (the
//! newest before the flexible encodings). All are accepted by Kafka 2.3 up
//! to 4.x and by tansu. Producing and fetching raw record batches is test
//! code only: it lives with the tests (`deploy/tests/support/records.rs`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

const API_CREATE_TOPICS: i16 = 19;
const API_METADATA: i16 = 3;
const API_VERSIONS: i16 = 18;
const API_DESCRIBE_QUORUM: i16 = 55;
const CLIENT_ID: &str = "gregor-deploy";
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// Why a probe got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("{addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("{addr}: malformed response: {what}")]
    Malformed { addr: String, what: String },
}

fn resolve(addr: &str) -> Result<SocketAddr, WireError> {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| WireError::Resolve(addr.to_string()))
}

/// Encode a request: size, header v1 (api key, version, correlation id, client id), body.
pub fn encode_request(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(body.len() + 32);
    msg.extend_from_slice(&api_key.to_be_bytes());
    msg.extend_from_slice(&version.to_be_bytes());
    msg.extend_from_slice(&correlation_id.to_be_bytes());
    put_string(&mut msg, CLIENT_ID);
    msg.extend_from_slice(body);
    let mut framed = (msg.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&msg);
    framed
}

/// A non-flexible string: i16 length, then the bytes.
pub fn put_string(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as i16).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// Send one request and read its response body (after the correlation id).
/// `timeout` bounds the connect and each read and write.
pub fn round_trip(
    addr: &str,
    api_key: i16,
    version: i16,
    body: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, WireError> {
    let sock = resolve(addr)?;
    let io_err = |source| WireError::Io {
        addr: addr.to_string(),
        source,
    };
    let mut stream = TcpStream::connect_timeout(&sock, timeout).map_err(io_err)?;
    stream.set_read_timeout(Some(timeout)).map_err(io_err)?;
    stream.set_write_timeout(Some(timeout)).map_err(io_err)?;
    let correlation_id = 0x6772_6567; // "greg"
    stream
        .write_all(&encode_request(api_key, version, correlation_id, body))
        .map_err(io_err)?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).map_err(io_err)?;
    let len = i32::from_be_bytes(len);
    if len < 4 || len as usize > MAX_RESPONSE {
        return Err(WireError::Malformed {
            addr: addr.to_string(),
            what: format!("response size {len}"),
        });
    }
    let mut buf = vec![0u8; len as usize];
    stream.read_exact(&mut buf).map_err(io_err)?;
    let got = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if got != correlation_id {
        return Err(WireError::Malformed {
            addr: addr.to_string(),
            what: format!("correlation id {got}, expected {correlation_id}"),
        });
    }
    buf.drain(..4);
    Ok(buf)
}

/// True if the broker at `addr` answers an ApiVersions v0 request within `timeout`.
pub fn answers_api_versions(addr: &str, timeout: Duration) -> bool {
    api_versions(addr, timeout).is_ok()
}

/// ApiVersions v0: the error code of the response.
pub fn api_versions(addr: &str, timeout: Duration) -> Result<i16, WireError> {
    let body = round_trip(addr, API_VERSIONS, 0, &[], timeout)?;
    let mut r = Reader::new(addr, &body);
    r.i16()
}

/// True if something accepts TCP connections at `addr` within `timeout`.
pub fn accepts_tcp(addr: &str, timeout: Duration) -> bool {
    resolve(addr)
        .ok()
        .and_then(|sock| TcpStream::connect_timeout(&sock, timeout).ok())
        .is_some()
}

/// CreateTopics v4 for one topic; returns the error code the broker gave it.
pub fn create_topic(
    addr: &str,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    timeout: Duration,
) -> Result<i16, WireError> {
    let mut body = Vec::new();
    body.extend_from_slice(&1i32.to_be_bytes()); // topics
    put_string(&mut body, name);
    body.extend_from_slice(&partitions.to_be_bytes());
    body.extend_from_slice(&replication_factor.to_be_bytes());
    body.extend_from_slice(&0i32.to_be_bytes()); // assignments
    body.extend_from_slice(&0i32.to_be_bytes()); // configs
    body.extend_from_slice(&(timeout.as_millis() as i32).to_be_bytes());
    body.push(0); // validate_only = false
    let resp = round_trip(addr, API_CREATE_TOPICS, 4, &body, timeout)?;
    let mut r = Reader::new(addr, &resp);
    let _throttle = r.i32()?;
    let n = r.i32()?;
    for _ in 0..n {
        let topic = r.string()?;
        let code = r.i16()?;
        let _message = r.string()?;
        if topic.as_deref() == Some(name) {
            return Ok(code);
        }
    }
    Err(r.malformed(format!("no result for topic {name}")))
}

/// A broker as listed in a Metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerMeta {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

/// One partition as listed in a Metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMeta {
    pub error_code: i16,
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline: Vec<i32>,
}

/// One topic as listed in a Metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub error_code: i16,
    pub name: String,
    pub partitions: Vec<PartitionMeta>,
}

/// A Metadata v8 response (the fields gregor uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub brokers: Vec<BrokerMeta>,
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub topics: Vec<TopicMeta>,
}

/// Metadata v8 for the given topics (all topics when empty); never creates topics.
pub fn metadata(addr: &str, topics: &[&str], timeout: Duration) -> Result<Metadata, WireError> {
    let mut body = Vec::new();
    if topics.is_empty() {
        body.extend_from_slice(&(-1i32).to_be_bytes());
    } else {
        body.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for t in topics {
            put_string(&mut body, t);
        }
    }
    body.extend_from_slice(&[0, 0, 0]); // no auto-creation, no authorized operations
    let resp = round_trip(addr, API_METADATA, 8, &body, timeout)?;
    decode_metadata(addr, &resp)
}

/// Decode a Metadata v8 response body (after the correlation id).
pub fn decode_metadata(addr: &str, resp: &[u8]) -> Result<Metadata, WireError> {
    let mut r = Reader::new(addr, resp);
    let _throttle = r.i32()?;
    let mut brokers = Vec::new();
    for _ in 0..r.i32()? {
        let node_id = r.i32()?;
        let host = r.string()?.unwrap_or_default();
        let port = r.i32()?;
        let _rack = r.string()?;
        brokers.push(BrokerMeta {
            node_id,
            host,
            port,
        });
    }
    let cluster_id = r.string()?;
    let controller_id = r.i32()?;
    let mut out = Vec::new();
    for _ in 0..r.i32()? {
        let error_code = r.i16()?;
        let name = r.string()?.unwrap_or_default();
        let _internal = r.u8()?;
        let mut partitions = Vec::new();
        for _ in 0..r.i32()? {
            let error_code = r.i16()?;
            let partition = r.i32()?;
            let leader = r.i32()?;
            let leader_epoch = r.i32()?;
            let replicas = r.i32_array()?;
            let isr = r.i32_array()?;
            let offline = r.i32_array()?;
            partitions.push(PartitionMeta {
                error_code,
                partition,
                leader,
                leader_epoch,
                replicas,
                isr,
                offline,
            });
        }
        let _topic_operations = r.i32()?;
        out.push(TopicMeta {
            error_code,
            name,
            partitions,
        });
    }
    Ok(Metadata {
        brokers,
        cluster_id,
        controller_id,
        topics: out,
    })
}

/// Reads a Kafka response or record batch: big-endian integers,
/// strings, varints; a short or bad buffer is [`WireError::Malformed`]
/// naming the broker. (Public for the deploy tests' record-batch decoder.)
pub struct Reader<'a> {
    addr: &'a str,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(addr: &'a str, buf: &'a [u8]) -> Self {
        Reader { addr, buf, pos: 0 }
    }

    pub fn malformed(&self, what: String) -> WireError {
        WireError::Malformed {
            addr: self.addr.to_string(),
            what,
        }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.pos + n > self.buf.len() {
            return Err(self.malformed(format!(
                "truncated at byte {} (wanted {n} more of {})",
                self.pos,
                self.buf.len()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    pub fn i16(&mut self) -> Result<i16, WireError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i32(&mut self) -> Result<i32, WireError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn string(&mut self) -> Result<Option<String>, WireError> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let bytes = self.take(len as usize)?;
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }

    pub fn i64(&mut self) -> Result<i64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// A zigzag varint (varlong), as used inside record batches.
    pub fn varint(&mut self) -> Result<i64, WireError> {
        let z = self.uvarint()?;
        Ok((z >> 1) as i64 ^ -((z & 1) as i64))
    }

    fn i32_array(&mut self) -> Result<Vec<i32>, WireError> {
        let n = self.i32()?;
        (0..n.max(0)).map(|_| self.i32()).collect()
    }

    /// An unsigned varint (flexible versions' lengths and tag counts).
    fn uvarint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.malformed("varint longer than 10 bytes".into()))
    }

    /// Skips a flexible version's tagged fields.
    fn skip_tags(&mut self) -> Result<(), WireError> {
        for _ in 0..self.uvarint()? {
            let _tag = self.uvarint()?;
            let len = self.uvarint()? as usize;
            self.take(len)?;
        }
        Ok(())
    }

    /// A compact (flexible) string: varint length + 1, then the bytes.
    fn compact_string(&mut self) -> Result<Option<String>, WireError> {
        let len = self.uvarint()?;
        if len == 0 {
            return Ok(None);
        }
        let bytes = self.take(len as usize - 1)?;
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }
}

/// The KRaft metadata log's topic, whose leader is the active controller.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// DescribeQuorum v0 (the request behind `kafka-metadata-quorum describe
/// --status`, which a broker forwards to the active controller): the node
/// id of the quorum's leader, i.e. the active KRaft controller.
pub fn quorum_leader(addr: &str, timeout: Duration) -> Result<i32, WireError> {
    let mut body = vec![0u8]; // request header v2: no tagged fields
    body.push(2); // one topic (compact array: n + 1)
    body.push(METADATA_TOPIC.len() as u8 + 1);
    body.extend_from_slice(METADATA_TOPIC.as_bytes());
    body.push(2); // one partition
    body.extend_from_slice(&0i32.to_be_bytes());
    body.extend_from_slice(&[0, 0, 0]); // tags: partition, topic, request
    let resp = round_trip(addr, API_DESCRIBE_QUORUM, 0, &body, timeout)?;
    decode_quorum_leader(addr, &resp)
}

/// Decode a DescribeQuorum v0 response body (after the correlation id).
pub fn decode_quorum_leader(addr: &str, resp: &[u8]) -> Result<i32, WireError> {
    let mut r = Reader::new(addr, resp);
    r.skip_tags()?; // response header v1
    let error = r.i16()?;
    if error != 0 {
        return Err(r.malformed(format!("DescribeQuorum error code {error}")));
    }
    if r.uvarint()? < 2 {
        return Err(r.malformed("DescribeQuorum answered no topic".into()));
    }
    let _topic = r.compact_string()?;
    if r.uvarint()? < 2 {
        return Err(r.malformed("DescribeQuorum answered no partition".into()));
    }
    let _partition = r.i32()?;
    let error = r.i16()?;
    if error != 0 {
        return Err(r.malformed(format!("DescribeQuorum partition error code {error}")));
    }
    r.i32()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_describe_quorum_answer_yields_its_leader_id() {
        let mut resp = vec![0u8]; // header tags
        resp.extend_from_slice(&0i16.to_be_bytes());
        resp.push(2);
        resp.push(METADATA_TOPIC.len() as u8 + 1);
        resp.extend_from_slice(METADATA_TOPIC.as_bytes());
        resp.push(2);
        resp.extend_from_slice(&0i32.to_be_bytes());
        resp.extend_from_slice(&0i16.to_be_bytes());
        resp.extend_from_slice(&2i32.to_be_bytes()); // leader id
        resp.extend_from_slice(&7i32.to_be_bytes()); // epoch (ignored)
        assert_eq!(decode_quorum_leader("x:1", &resp).unwrap(), 2);
        let mut err = vec![0u8];
        err.extend_from_slice(&35i16.to_be_bytes());
        assert!(decode_quorum_leader("x:1", &err)
            .unwrap_err()
            .to_string()
            .contains("error code 35"));
    }

    #[test]
    fn an_api_versions_v0_request_is_framed_as_kafka_expects() {
        let bytes = encode_request(18, 0, 7, &[]);
        let client = CLIENT_ID.as_bytes();
        let size = 2 + 2 + 4 + 2 + client.len();
        assert_eq!(&bytes[..4], &(size as i32).to_be_bytes());
        assert_eq!(&bytes[4..6], &18i16.to_be_bytes());
        assert_eq!(&bytes[6..8], &0i16.to_be_bytes());
        assert_eq!(&bytes[8..12], &7i32.to_be_bytes());
        assert_eq!(&bytes[12..14], &(client.len() as i16).to_be_bytes());
        assert_eq!(&bytes[14..], client);
    }

    #[test]
    fn a_listener_that_never_answers_is_not_a_broker() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        assert!(accepts_tcp(&addr, Duration::from_secs(1)));
        assert!(!answers_api_versions(&addr, Duration::from_millis(300)));
    }

    #[test]
    fn a_fake_broker_reply_with_the_right_correlation_id_counts_as_an_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut len = [0u8; 4];
            s.read_exact(&mut len).unwrap();
            let mut req = vec![0u8; i32::from_be_bytes(len) as usize];
            s.read_exact(&mut req).unwrap();
            let correlation = &req[4..8];
            // correlation id, error code 0, empty api array
            let mut resp = correlation.to_vec();
            resp.extend_from_slice(&0i16.to_be_bytes());
            resp.extend_from_slice(&0i32.to_be_bytes());
            let mut framed = (resp.len() as i32).to_be_bytes().to_vec();
            framed.extend_from_slice(&resp);
            s.write_all(&framed).unwrap();
        });
        assert_eq!(api_versions(&addr, Duration::from_secs(5)).unwrap(), 0);
        server.join().unwrap();
    }

    #[test]
    fn a_metadata_v8_response_is_decoded_into_brokers_and_partitions() {
        let mut b = Vec::new();
        let i32s = |b: &mut Vec<u8>, xs: &[i32]| {
            xs.iter()
                .for_each(|x| b.extend_from_slice(&x.to_be_bytes()))
        };
        i32s(&mut b, &[0, 1, 7]); // throttle, 1 broker, node 7
        put_string(&mut b, "127.0.0.1");
        i32s(&mut b, &[19092]);
        b.extend_from_slice(&(-1i16).to_be_bytes()); // rack null
        put_string(&mut b, "cid");
        i32s(&mut b, &[7, 1]); // controller, 1 topic
        b.extend_from_slice(&0i16.to_be_bytes());
        put_string(&mut b, "t");
        b.push(0);
        i32s(&mut b, &[1]); // 1 partition
        b.extend_from_slice(&0i16.to_be_bytes());
        i32s(&mut b, &[0, 7, 3, 2, 7, 8, 1, 7, 0, -2147483648]);
        i32s(&mut b, &[-2147483648]); // cluster authorized operations
        let meta = decode_metadata("x:1", &b).unwrap();
        assert_eq!(
            meta.brokers,
            vec![BrokerMeta {
                node_id: 7,
                host: "127.0.0.1".into(),
                port: 19092
            }]
        );
        assert_eq!(meta.cluster_id.as_deref(), Some("cid"));
        assert_eq!(meta.controller_id, 7);
        assert_eq!(
            meta.topics[0].partitions[0],
            PartitionMeta {
                error_code: 0,
                partition: 0,
                leader: 7,
                leader_epoch: 3,
                replicas: vec![7, 8],
                isr: vec![7],
                offline: vec![],
            }
        );
        assert!(decode_metadata("x:1", &b[..b.len() - 12]).is_err());
    }

    #[test]
    fn a_truncated_response_is_reported_as_malformed_not_a_panic() {
        let mut r = Reader::new("x:1", &[0, 5, b'a']);
        let err = r.string().unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }
}
