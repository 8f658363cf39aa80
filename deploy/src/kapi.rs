//! An async Kafka API client over the `kafka-protocol` crate's generated
//! messages, for the requests librdkafka does not expose: group listings
//! and multi-group committed offsets for the monitor, client quotas and
//! dynamic broker configs for the nemesis.
//!
//! [`Conn`] is one connection to one broker: it negotiates versions with
//! ApiVersions on connect, and [`Conn::send`] sends any request at the
//! highest version both sides speak. [`Brokers`] keeps one connection per
//! broker id, found through Metadata from a bootstrap list, and reconnects
//! when one breaks. Requests go one at a time per connection; callers that
//! want throughput batch (one ListOffsets per leader, one OffsetFetch per
//! coordinator for many groups), which is how the monitor stays cheap.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Re-exported so callers name messages without depending on the crate.
pub use kafka_protocol::messages;
pub use kafka_protocol::protocol::StrBytes as KStr;
pub use kafka_protocol::ResponseError;

/// Not the workload's `gregor`: a fetch-throttle quota on the workload's
/// client id must not throttle the monitor's record-timestamp fetches.
const CLIENT_ID: &str = "gregor-kapi";
/// The largest response accepted (a Metadata of a big cluster fits).
const MAX_RESPONSE: usize = 256 * 1024 * 1024;

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum KapiError {
    #[error("{addr}: cannot connect: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr}: no answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("{addr}: not asked: it left a request unanswered {ago:?} ago (asked again after {backoff:?})")]
    Unresponsive {
        addr: String,
        ago: Duration,
        backoff: Duration,
    },
    #[error("{addr}: cannot encode {api:?}: {message}")]
    Encode {
        addr: String,
        api: ApiKey,
        message: String,
    },
    #[error("{addr}: malformed {api:?} response: {message}")]
    Decode {
        addr: String,
        api: ApiKey,
        message: String,
    },
    #[error("{addr}: the broker does not support {api:?} in a version gregor speaks")]
    Unsupported { addr: String, api: ApiKey },
    #[error("{addr}: {api:?} failed: {code:?}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kafka {
        addr: String,
        api: ApiKey,
        code: ResponseError,
        message: Option<String>,
    },
    #[error("no broker answered: {0}")]
    NoBroker(String),
    #[error("broker {0} is not in the cluster's metadata")]
    UnknownBroker(i32),
}

impl KapiError {
    /// The error a non-zero Kafka error code stands for, if any.
    pub fn check(
        addr: &str,
        api: ApiKey,
        code: i16,
        message: Option<&StrBytes>,
    ) -> Result<(), KapiError> {
        if code == 0 {
            return Ok(());
        }
        let code = ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError);
        Err(KapiError::Kafka {
            addr: addr.to_string(),
            api,
            code,
            message: message.map(|m| m.to_string()),
        })
    }
}

fn api_key<R: Request>() -> ApiKey {
    ApiKey::try_from(R::KEY).unwrap_or(ApiKey::ApiVersions)
}

/// One connection to one broker, with the versions it speaks.
pub struct Conn {
    addr: String,
    stream: TcpStream,
    timeout: Duration,
    correlation: i32,
    /// api key -> (min, max) the broker accepts.
    versions: HashMap<i16, (i16, i16)>,
}

impl Conn {
    /// Connects to `addr` and asks which versions it speaks (ApiVersions
    /// v0, which every Kafka-compatible broker answers). `timeout` bounds
    /// the connect and every later request.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Conn, KapiError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => {
                return Err(KapiError::Connect {
                    addr: addr.to_string(),
                    source,
                })
            }
            Err(_) => {
                return Err(KapiError::Timeout {
                    addr: addr.to_string(),
                    timeout,
                })
            }
        };
        let _ = stream.set_nodelay(true);
        let mut conn = Conn {
            addr: addr.to_string(),
            stream,
            timeout,
            correlation: 0,
            versions: HashMap::new(),
        };
        let resp: ApiVersionsResponse =
            conn.send_version(&ApiVersionsRequest::default(), 0).await?;
        KapiError::check(addr, ApiKey::ApiVersions, resp.error_code, None)?;
        conn.versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(conn)
    }

    /// The address this connection goes to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The highest version of `R` that both gregor and the broker speak.
    pub fn version<R: Request>(&self) -> Option<i16> {
        let (bmin, bmax) = *self.versions.get(&R::KEY)?;
        let max = bmax.min(R::VERSIONS.max);
        (max >= bmin.max(R::VERSIONS.min)).then_some(max)
    }

    /// Whether the broker speaks `R` at `version` or newer.
    pub fn supports<R: Request>(&self, version: i16) -> bool {
        self.version::<R>().is_some_and(|v| v >= version)
    }

    /// Sends `req` at the highest common version.
    pub async fn send<R: Request>(&mut self, req: &R) -> Result<R::Response, KapiError> {
        let version = self.version::<R>().ok_or_else(|| KapiError::Unsupported {
            addr: self.addr.clone(),
            api: api_key::<R>(),
        })?;
        self.send_version(req, version).await
    }

    /// Sends `req` at `version` and returns its decoded response.
    pub async fn send_version<R: Request>(
        &mut self,
        req: &R,
        version: i16,
    ) -> Result<R::Response, KapiError> {
        let api = api_key::<R>();
        self.correlation = self.correlation.wrapping_add(1);
        let correlation = self.correlation;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let encode_err = |e: anyhow::Error| KapiError::Encode {
            addr: self.addr.clone(),
            api,
            message: e.to_string(),
        };
        let mut buf = BytesMut::with_capacity(256);
        buf.put_i32(0);
        header
            .encode(&mut buf, R::header_version(version))
            .map_err(encode_err)?;
        req.encode(&mut buf, version).map_err(encode_err)?;
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());

        let addr = self.addr.clone();
        let timeout = self.timeout;
        let io = |source| KapiError::Io {
            addr: addr.clone(),
            source,
        };
        let round = async {
            self.stream.write_all(&buf).await.map_err(io)?;
            let mut len = [0u8; 4];
            self.stream.read_exact(&mut len).await.map_err(io)?;
            let len = i32::from_be_bytes(len);
            if len < 4 || len as usize > MAX_RESPONSE {
                return Err(KapiError::Decode {
                    addr: addr.clone(),
                    api,
                    message: format!("response of {len} bytes"),
                });
            }
            let mut body = vec![0u8; len as usize];
            self.stream.read_exact(&mut body).await.map_err(io)?;
            Ok(body)
        };
        let body = match tokio::time::timeout(timeout, round).await {
            Ok(r) => r?,
            Err(_) => return Err(KapiError::Timeout { addr, timeout }),
        };
        let decode_err = |message: String| KapiError::Decode {
            addr: self.addr.clone(),
            api,
            message,
        };
        let mut bytes = Bytes::from(body);
        let rh = ResponseHeader::decode(&mut bytes, R::Response::header_version(version))
            .map_err(|e| decode_err(e.to_string()))?;
        if rh.correlation_id != correlation {
            return Err(decode_err(format!(
                "correlation id {} for request {correlation}",
                rh.correlation_id
            )));
        }
        let resp =
            R::Response::decode(&mut bytes, version).map_err(|e| decode_err(e.to_string()))?;
        if bytes.has_remaining() && version <= <R::Response as Message>::VERSIONS.max {
            // Trailing bytes mean the layout was misread; tagged fields of
            // newer brokers are consumed by the decoder itself.
            return Err(decode_err(format!("{} trailing bytes", bytes.remaining())));
        }
        Ok(resp)
    }
}

/// One feature flag (`metadata.version`, `kraft.version`…) as a broker
/// reports it in ApiVersions (v3+).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeatureLevel {
    /// The cluster's finalized level; `None` when not finalized.
    pub finalized: Option<i16>,
    /// The highest level this broker's software supports.
    pub supported_max: Option<i16>,
}

impl Conn {
    /// The cluster's feature flags as this broker knows them (ApiVersions
    /// at the highest version, v3+ for features): name -> levels.
    pub async fn features(&mut self) -> Result<BTreeMap<String, FeatureLevel>, KapiError> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        if !self.supports::<ApiVersionsRequest>(3) {
            return Err(KapiError::Unsupported {
                addr: self.addr.clone(),
                api: ApiKey::ApiVersions,
            });
        }
        let resp: ApiVersionsResponse = self.send(&req).await?;
        KapiError::check(&self.addr, ApiKey::ApiVersions, resp.error_code, None)?;
        let mut out: BTreeMap<String, FeatureLevel> = BTreeMap::new();
        for f in &resp.supported_features {
            out.entry(f.name.to_string()).or_default().supported_max = Some(f.max_version);
        }
        for f in &resp.finalized_features {
            out.entry(f.name.to_string()).or_default().finalized = Some(f.max_version_level);
        }
        Ok(out)
    }
}

/// A broker as Metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    pub id: i32,
    pub host: String,
    pub port: i32,
}

impl BrokerAddr {
    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The answer of one broker (its id) to one of [`Brokers::send_many`]'s requests.
pub type Answer<T> = (i32, Result<T, KapiError>);

/// Connections to every broker of one cluster, by broker id.
pub struct Brokers {
    bootstrap: Vec<String>,
    timeout: Duration,
    brokers: BTreeMap<i32, BrokerAddr>,
    conns: HashMap<i32, Conn>,
    /// A connection to whichever bootstrap server answered last.
    any: Option<Conn>,
    controller: Option<i32>,
    /// Address -> when it last left a request unanswered. A paused broker
    /// (SIGSTOP, a GC pause, a hung disk) still accepts connections but
    /// answers nothing: without this, every request of every poll would
    /// wait out the timeout on it, and a poll of several rounds would
    /// outlast its caller's patience. Such an address is tried last for
    /// metadata and not asked at all for [`Brokers::unresponsive_backoff`].
    unresponsive: HashMap<String, std::time::Instant>,
}

impl Brokers {
    /// A pool over `bootstrap` (`host:port` entries); nothing connects yet.
    pub fn new(bootstrap: &[String], timeout: Duration) -> Brokers {
        Brokers {
            bootstrap: bootstrap.to_vec(),
            timeout,
            brokers: BTreeMap::new(),
            conns: HashMap::new(),
            any: None,
            controller: None,
            unresponsive: HashMap::new(),
        }
    }

    /// How long an address that left a request unanswered is not asked:
    /// three timeouts.
    pub fn unresponsive_backoff(&self) -> Duration {
        self.timeout * 3
    }

    /// Whether `addr` is being avoided; `Some(error)` saying why.
    fn avoided(&mut self, addr: &str) -> Option<KapiError> {
        let since = *self.unresponsive.get(addr)?;
        let backoff = self.unresponsive_backoff();
        if since.elapsed() >= backoff {
            self.unresponsive.remove(addr);
            return None;
        }
        Some(KapiError::Unresponsive {
            addr: addr.to_string(),
            ago: since.elapsed(),
            backoff,
        })
    }

    /// Notes an error from `addr`: a timeout makes it unresponsive.
    fn note(&mut self, addr: &str, e: &KapiError) {
        if matches!(e, KapiError::Timeout { .. }) {
            self.mark_unresponsive(addr);
        }
    }

    fn mark_unresponsive(&mut self, addr: &str) {
        self.unresponsive
            .insert(addr.to_string(), std::time::Instant::now());
    }

    /// The brokers the last metadata listed.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerAddr> {
        self.brokers.values()
    }

    /// The controller id the last metadata named (the broker admin
    /// requests go to; in KRaft, a broker that forwards them).
    pub fn controller(&self) -> Option<i32> {
        self.controller
    }

    /// A connection to some live broker: the last that answered, else the
    /// first bootstrap server or known broker that does.
    pub async fn any(&mut self) -> Result<&mut Conn, KapiError> {
        if self.any.is_none() {
            let mut errors = Vec::new();
            let mut candidates = self.bootstrap.clone();
            candidates.extend(self.brokers.values().map(BrokerAddr::addr));
            // Unresponsive addresses last (still tried: they may be all).
            candidates.sort_by_key(|a| self.unresponsive.contains_key(a));
            for addr in candidates {
                match Conn::connect(&addr, self.timeout).await {
                    Ok(c) => {
                        self.any = Some(c);
                        break;
                    }
                    Err(e) => {
                        self.note(&addr, &e);
                        errors.push(e.to_string())
                    }
                }
            }
            if self.any.is_none() {
                return Err(KapiError::NoBroker(errors.join("; ")));
            }
        }
        Ok(self.any.as_mut().expect("set above"))
    }

    /// Sends `req` to some live broker, reconnecting once if the connection
    /// it had broke.
    pub async fn send_any<R: Request>(&mut self, req: &R) -> Result<R::Response, KapiError> {
        let conn = self.any().await?;
        let addr = conn.addr().to_string();
        match conn.send(req).await {
            Ok(r) => Ok(r),
            Err(e @ (KapiError::Io { .. } | KapiError::Timeout { .. })) => {
                self.note(&addr, &e);
                self.any = None;
                let conn = self.any().await?;
                let addr = conn.addr().to_string();
                let r = conn.send(req).await;
                if let Err(e @ (KapiError::Io { .. } | KapiError::Timeout { .. })) = &r {
                    self.note(&addr, e);
                    self.any = None;
                }
                r
            }
            Err(e) => Err(e),
        }
    }

    /// Asks for metadata (`topics` = None: every topic) and remembers the
    /// brokers and controller it lists.
    pub async fn metadata(
        &mut self,
        topics: Option<&[&str]>,
    ) -> Result<MetadataResponse, KapiError> {
        let req = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| {
                        messages::metadata_request::MetadataRequestTopic::default().with_name(Some(
                            messages::TopicName(StrBytes::from_string(t.to_string())),
                        ))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let resp = self.send_any(&req).await?;
        let brokers: BTreeMap<i32, BrokerAddr> = resp
            .brokers
            .iter()
            .map(|b| {
                let id = b.node_id.0;
                (
                    id,
                    BrokerAddr {
                        id,
                        host: b.host.to_string(),
                        port: b.port,
                    },
                )
            })
            .collect();
        // Connections to brokers that moved or left are dropped.
        self.conns
            .retain(|id, c| brokers.get(id).is_some_and(|b| b.addr() == c.addr()));
        self.brokers = brokers;
        self.controller = (resp.controller_id.0 >= 0).then_some(resp.controller_id.0);
        Ok(resp)
    }

    /// The connection to broker `id` (connecting if needed).
    pub async fn broker(&mut self, id: i32) -> Result<&mut Conn, KapiError> {
        if !self.conns.contains_key(&id) {
            if self.brokers.is_empty() {
                self.metadata(Some(&[])).await?;
            }
            let addr = self
                .brokers
                .get(&id)
                .ok_or(KapiError::UnknownBroker(id))?
                .addr();
            if let Some(e) = self.avoided(&addr) {
                return Err(e);
            }
            let conn = match Conn::connect(&addr, self.timeout).await {
                Ok(c) => c,
                Err(e) => {
                    self.note(&addr, &e);
                    return Err(e);
                }
            };
            self.conns.insert(id, conn);
        }
        Ok(self.conns.get_mut(&id).expect("inserted above"))
    }

    /// Sends `req` to broker `id`; a broken connection is dropped (the next
    /// call reconnects) and its error returned.
    pub async fn send_to<R: Request>(
        &mut self,
        id: i32,
        req: &R,
    ) -> Result<R::Response, KapiError> {
        let conn = self.broker(id).await?;
        let addr = conn.addr().to_string();
        let result = conn.send(req).await;
        if let Err(e @ (KapiError::Io { .. } | KapiError::Timeout { .. })) = &result {
            self.note(&addr, e);
            self.conns.remove(&id);
        }
        result
    }

    /// Sends each `(broker id, request)` pair: the requests of one broker go
    /// one after another on its connection, different brokers concurrently.
    /// Answers come back in the order of `reqs`. A broker that cannot be
    /// reached answers each of its requests with the connect error; broken
    /// connections are dropped (the next call reconnects).
    pub async fn send_many<R: Request>(&mut self, reqs: Vec<(i32, R)>) -> Vec<Answer<R::Response>> {
        let n = reqs.len();
        let mut out: Vec<Option<Answer<R::Response>>> = (0..n).map(|_| None).collect();
        let mut by_broker: BTreeMap<i32, Vec<(usize, R)>> = BTreeMap::new();
        for (i, (id, r)) in reqs.into_iter().enumerate() {
            by_broker.entry(id).or_default().push((i, r));
        }
        // Connect first (sequentially: connects are rare and cheap).
        let ids: Vec<i32> = by_broker.keys().copied().collect();
        for id in ids {
            if let Err(e) = self.broker(id).await {
                let msg = e.to_string();
                let mut first = Some(e);
                for (i, _) in by_broker.remove(&id).unwrap_or_default() {
                    let err = first
                        .take()
                        .unwrap_or_else(|| KapiError::NoBroker(msg.clone()));
                    out[i] = Some((id, Err(err)));
                }
            }
        }
        let futs = self.conns.iter_mut().filter_map(|(id, conn)| {
            let rs = by_broker.remove(id)?;
            let id = *id;
            Some(async move {
                let mut answers = Vec::with_capacity(rs.len());
                let (mut broken, mut timed_out) = (false, false);
                for (i, r) in rs {
                    if timed_out {
                        // One unanswered request is enough to know.
                        answers.push((
                            i,
                            Err(KapiError::Unresponsive {
                                addr: conn.addr().to_string(),
                                ago: Duration::ZERO,
                                backoff: Duration::ZERO,
                            }),
                        ));
                        continue;
                    }
                    let a = conn.send(&r).await;
                    broken |= matches!(a, Err(KapiError::Io { .. } | KapiError::Timeout { .. }));
                    timed_out |= matches!(a, Err(KapiError::Timeout { .. }));
                    answers.push((i, a));
                }
                (id, conn.addr().to_string(), broken, timed_out, answers)
            })
        });
        for (id, addr, broken, timed_out, answers) in futures::future::join_all(futs).await {
            if timed_out {
                self.mark_unresponsive(&addr);
            }
            if broken {
                self.conns.remove(&id);
            }
            for (i, a) in answers {
                out[i] = Some((id, a));
            }
        }
        out.into_iter()
            .map(|o| o.unwrap_or((-1, Err(KapiError::NoBroker("no answer".into())))))
            .collect()
    }

    /// Takes the brokers, controller and unresponsive addresses `from`
    /// knows (a second pool of connections to the same cluster, kept up
    /// to date without asking for metadata itself); connections to
    /// brokers that moved or left are dropped.
    pub fn adopt(&mut self, from: &Brokers) {
        self.conns
            .retain(|id, c| from.brokers.get(id).is_some_and(|b| b.addr() == c.addr()));
        self.brokers = from.brokers.clone();
        self.controller = from.controller;
        for (addr, since) in &from.unresponsive {
            let e = self.unresponsive.entry(addr.clone()).or_insert(*since);
            *e = (*e).max(*since);
        }
    }

    /// The ids of the brokers the last metadata listed.
    pub fn broker_ids(&self) -> Vec<i32> {
        self.brokers.keys().copied().collect()
    }

    /// The address of broker `id`, as the last metadata listed it.
    pub fn addr_of(&self, id: i32) -> Option<String> {
        self.brokers.get(&id).map(BrokerAddr::addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiVersionsResponse;
    use tokio::net::TcpListener;

    /// A stand-in broker that answers one ApiVersions v0 request.
    async fn fake_broker(api_keys: Vec<(i16, i16, i16)>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut len = [0u8; 4];
            s.read_exact(&mut len).await.unwrap();
            let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
            s.read_exact(&mut body).await.unwrap();
            let mut b = Bytes::from(body);
            let header = RequestHeader::decode(&mut b, 1).unwrap();
            assert_eq!(header.request_api_key, ApiKey::ApiVersions as i16);
            let resp = ApiVersionsResponse::default().with_api_keys(
                api_keys
                    .into_iter()
                    .map(|(k, min, max)| {
                        messages::api_versions_response::ApiVersion::default()
                            .with_api_key(k)
                            .with_min_version(min)
                            .with_max_version(max)
                    })
                    .collect(),
            );
            let mut out = BytesMut::new();
            out.put_i32(0);
            ResponseHeader::default()
                .with_correlation_id(header.correlation_id)
                .encode(&mut out, 0)
                .unwrap();
            resp.encode(&mut out, 0).unwrap();
            let n = (out.len() - 4) as i32;
            out[..4].copy_from_slice(&n.to_be_bytes());
            s.write_all(&out).await.unwrap();
            // Keep the socket open until the client is done.
            let _ = s.read(&mut [0u8; 1]).await;
        });
        addr
    }

    #[tokio::test]
    async fn negotiates_the_highest_common_version() {
        // Metadata 0..9 on the broker; gregor speaks up to 13: 9 wins.
        // ListGroups absent: unsupported.
        let addr = fake_broker(vec![(18, 0, 3), (3, 0, 9)]).await;
        let conn = Conn::connect(&addr, Duration::from_secs(5)).await.unwrap();
        assert_eq!(conn.version::<MetadataRequest>(), Some(9));
        assert_eq!(
            conn.version::<messages::ListGroupsRequest>(),
            None,
            "an API the broker does not list is unsupported"
        );
        assert!(conn.supports::<MetadataRequest>(8));
        assert!(!conn.supports::<MetadataRequest>(10));
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error_naming_the_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let err = Conn::connect(&addr, Duration::from_secs(2))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, KapiError::Connect { .. }), "{err}");
        assert!(err.to_string().contains(&addr), "{err}");
    }

    #[tokio::test]
    async fn send_many_answers_every_request_in_order_even_when_no_broker_answers() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let mut b = Brokers::new(std::slice::from_ref(&addr), Duration::from_secs(2));
        let answers = b
            .send_many(vec![
                (1, messages::ListGroupsRequest::default()),
                (2, messages::ListGroupsRequest::default()),
                (1, messages::ListGroupsRequest::default()),
            ])
            .await;
        assert_eq!(answers.len(), 3);
        assert_eq!(
            answers.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            vec![1, 2, 1]
        );
        for (_, a) in answers {
            let e = a.err().unwrap();
            assert!(e.to_string().contains(&addr), "{e}");
        }
    }

    /// A broker that accepts connections and never answers (SIGSTOPped).
    fn hung_broker() -> (String, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let t = std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in listener.incoming().take(4) {
                held.push(s);
            }
            std::thread::sleep(Duration::from_secs(3));
        });
        (addr, t)
    }

    #[tokio::test]
    async fn a_broker_that_leaves_a_request_unanswered_is_tried_last_then_not_asked() {
        let (hung, _t) = hung_broker();
        let timeout = Duration::from_millis(300);
        let good = fake_broker(vec![(18, 0, 3)]).await;
        let mut b = Brokers::new(&[hung.clone(), good.clone()], timeout);
        let t = std::time::Instant::now();
        assert_eq!(b.any().await.unwrap().addr(), good);
        assert!(t.elapsed() >= timeout, "the hung broker was tried first");
        // Next time the hung one comes last: no timeout to wait out.
        b.any = None;
        let good2 = fake_broker(vec![(18, 0, 3)]).await;
        b.bootstrap = vec![hung.clone(), good2.clone()];
        let t = std::time::Instant::now();
        assert_eq!(b.any().await.unwrap().addr(), good2);
        assert!(t.elapsed() < timeout, "{:?}", t.elapsed());
        // Asked by id, it is not asked at all until the backoff passes.
        let (host, port) = hung.rsplit_once(':').unwrap();
        b.brokers.insert(
            7,
            BrokerAddr {
                id: 7,
                host: host.into(),
                port: port.parse().unwrap(),
            },
        );
        let t = std::time::Instant::now();
        let e = b.broker(7).await.err().unwrap();
        assert!(matches!(e, KapiError::Unresponsive { .. }), "{e}");
        assert!(e.to_string().contains(&hung), "{e}");
        assert!(t.elapsed() < timeout);
    }

    #[test]
    fn kafka_error_codes_become_named_errors() {
        assert!(KapiError::check("a:1", ApiKey::Metadata, 0, None).is_ok());
        let err = KapiError::check("a:1", ApiKey::ListGroups, 15, None).unwrap_err();
        assert!(err.to_string().contains("CoordinatorNotAvailable"), "{err}");
    }
}
