//! A TCP fault proxy: latency, bandwidth limits, resets and black holes
//! between Kafka clients and brokers, controlled at run time.
//!
//! `tc netem` needs root and a kernel with `sch_netem`; a user-space proxy
//! needs neither. A [`FaultProxy`] listens on a local address and forwards
//! every accepted connection to one upstream address. Its faults are changed
//! at any time through a cheap, cloneable [`ProxyHandle`]:
//!
//! - **latency** `delay ± jitter` per chunk, per direction, through a delay
//!   queue per direction (the two directions never wait on each other, and
//!   byte order is preserved);
//! - **bandwidth** in bytes per second, per direction (token bucket);
//! - **black hole**: nothing is forwarded; connections are accepted and kept,
//!   new ones never reach the upstream, and queued bytes flow once it is
//!   lifted (as TCP would retransmit them after a partition heals);
//! - **reset**: every connection is closed with an RST (`SO_LINGER 0`), and
//!   every new one too for as long as the fault is set.
//!
//! [`ProxyHandle::heal`] clears everything at once. A [`ProxySet`] runs one
//! proxy per broker and finds them by broker index; the cluster makes each
//! broker advertise its proxy's port, so every client byte goes through it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gregor_deploy::proxy::ProxyError> {
//! use std::time::Duration;
//! use gregor_deploy::proxy::{FaultProxy, LinkFault};
//!
//! let proxy = FaultProxy::start("127.0.0.1:0".parse().unwrap(), "127.0.0.1:9092".parse().unwrap()).await?;
//! let link = proxy.handle();
//! link.set(LinkFault::latency(Duration::from_millis(200), Duration::from_millis(20)));
//! // ... run the workload through proxy.local_addr() ...
//! link.heal();
//! proxy.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The proxy runs on the caller's tokio runtime. [`FaultProxy::shutdown`]
//! returns once the listening socket and every connection are closed;
//! dropping a proxy does the same in the background.

mod fault;
mod pump;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

pub use fault::{Direction, DirectionFault, Latency, LinkFault};
use pump::{Counters, SplitMix};

/// Errors starting or addressing proxies.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("fault proxy cannot listen on {addr} (upstream {upstream}): {source}")]
    Bind {
        addr: SocketAddr,
        upstream: SocketAddr,
        source: std::io::Error,
    },
    #[error("fault proxy must be started inside a tokio runtime")]
    NoRuntime,
    #[error("no proxy for broker {index}: the proxy set has {len} proxies")]
    NoSuchBroker { index: usize, len: usize },
}

/// Counters of one proxy, for tests and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyStats {
    /// Connections accepted since the proxy started.
    pub connections: u64,
    /// Connections open right now.
    pub active_connections: u64,
    /// Connections the proxy closed with an RST because of a reset fault.
    pub resets: u64,
    /// Connections dropped because the upstream refused or timed out.
    pub upstream_failures: u64,
    /// Bytes forwarded from clients to the upstream.
    pub bytes_to_upstream: u64,
    /// Bytes forwarded from the upstream to clients.
    pub bytes_to_client: u64,
}

struct Shared {
    local: SocketAddr,
    upstream: SocketAddr,
    faults: watch::Sender<LinkFault>,
    counters: Arc<Counters>,
}

/// Controls one running proxy; clone it freely (it is an `Arc`).
#[derive(Clone)]
pub struct ProxyHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ProxyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyHandle")
            .field("local", &self.shared.local)
            .field("upstream", &self.shared.upstream)
            .field("fault", &*self.shared.faults.borrow())
            .finish()
    }
}

impl ProxyHandle {
    /// Replaces the link's faults. Existing connections follow at once.
    pub fn set(&self, fault: LinkFault) {
        self.shared.faults.send_replace(fault);
    }

    /// Changes the current faults in place, e.g. to add a black hole on top
    /// of a latency.
    pub fn modify(&self, change: impl FnOnce(&mut LinkFault)) {
        self.shared.faults.send_modify(change);
    }

    /// Clears every fault: full speed, no resets, no black hole.
    pub fn heal(&self) {
        self.set(LinkFault::healthy());
    }

    /// The faults in force right now.
    pub fn fault(&self) -> LinkFault {
        self.shared.faults.borrow().clone()
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// The address connections are forwarded to.
    pub fn upstream_addr(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.shared.counters;
        ProxyStats {
            connections: c.accepted.load(Ordering::Relaxed),
            active_connections: c.active.load(Ordering::Relaxed),
            resets: c.reset.load(Ordering::Relaxed),
            upstream_failures: c.upstream_failures.load(Ordering::Relaxed),
            bytes_to_upstream: c.bytes_to_upstream.load(Ordering::Relaxed),
            bytes_to_client: c.bytes_to_client.load(Ordering::Relaxed),
        }
    }
}

/// A running proxy. Stops on [`FaultProxy::shutdown`] or drop.
pub struct FaultProxy {
    handle: ProxyHandle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FaultProxy").field(&self.handle).finish()
    }
}

impl FaultProxy {
    /// Listens on `listen` (port 0 picks a free port; see
    /// [`FaultProxy::local_addr`]) and forwards to `upstream`, healthy at
    /// first. The upstream need not be up yet: connections made while it is
    /// down are reset.
    pub async fn start(listen: SocketAddr, upstream: SocketAddr) -> Result<Self, ProxyError> {
        Self::start_seeded(listen, upstream, seed_from_clock()).await
    }

    /// Like [`FaultProxy::start`], with a fixed seed for the latency jitter.
    pub async fn start_seeded(
        listen: SocketAddr,
        upstream: SocketAddr,
        seed: u64,
    ) -> Result<Self, ProxyError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ProxyError::NoRuntime)?;
        let bind_error = |source| ProxyError::Bind {
            addr: listen,
            upstream,
            source,
        };
        let listener = TcpListener::bind(listen).await.map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let (faults, _) = watch::channel(LinkFault::healthy());
        let shared = Arc::new(Shared {
            local,
            upstream,
            faults,
            counters: Arc::new(Counters::default()),
        });
        let (stop, stopped) = oneshot::channel();
        let task = runtime.spawn(accept_loop(listener, shared.clone(), stopped, seed));
        Ok(FaultProxy {
            handle: ProxyHandle { shared },
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// A handle to control this proxy; it stays valid (but inert) after shutdown.
    pub fn handle(&self) -> ProxyHandle {
        self.handle.clone()
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// Stops accepting, closes every connection, and returns once the
    /// listening socket is closed.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort(); // drops the listener and, with it, every connection
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
    seed: u64,
) {
    let mut connections = JoinSet::new();
    let mut seeds = SplitMix::new(seed);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, _peer)) => {
                    connections.spawn(pump::serve(
                        socket,
                        shared.upstream,
                        shared.faults.subscribe(),
                        shared.counters.clone(),
                        seeds.next_u64(),
                    ));
                }
                // Out of file descriptors or a connection aborted before
                // accept: back off briefly instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

fn seed_from_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x5EED)
}

/// One proxy per broker, addressed by broker index (0-based, in the order given).
#[derive(Debug, Default)]
pub struct ProxySet {
    proxies: Vec<FaultProxy>,
}

impl ProxySet {
    /// Starts one proxy per `(listen, upstream)` route. If any fails to
    /// start, the ones already started are shut down.
    pub async fn start(routes: &[(SocketAddr, SocketAddr)]) -> Result<Self, ProxyError> {
        Self::start_seeded(routes, seed_from_clock()).await
    }

    /// Like [`ProxySet::start`], with a fixed seed for the latency jitter
    /// (each proxy gets its own seed derived from it).
    pub async fn start_seeded(
        routes: &[(SocketAddr, SocketAddr)],
        seed: u64,
    ) -> Result<Self, ProxyError> {
        let mut seeds = SplitMix::new(seed);
        let mut set = ProxySet::default();
        for &(listen, upstream) in routes {
            match FaultProxy::start_seeded(listen, upstream, seeds.next_u64()).await {
                Ok(p) => set.proxies.push(p),
                Err(e) => {
                    set.shutdown().await;
                    return Err(e);
                }
            }
        }
        Ok(set)
    }

    /// Starts proxies on 127.0.0.1 for `(listen_port, upstream_port)` pairs.
    pub async fn start_local(ports: &[(u16, u16)]) -> Result<Self, ProxyError> {
        let local = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let routes: Vec<_> = ports.iter().map(|&(l, u)| (local(l), local(u))).collect();
        Self::start(&routes).await
    }

    pub fn len(&self) -> usize {
        self.proxies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.proxies.is_empty()
    }

    /// The handle of broker `index`'s proxy.
    pub fn get(&self, index: usize) -> Result<ProxyHandle, ProxyError> {
        self.proxies
            .get(index)
            .map(FaultProxy::handle)
            .ok_or(ProxyError::NoSuchBroker {
                index,
                len: self.proxies.len(),
            })
    }

    /// Handles of all proxies, by broker index.
    pub fn handles(&self) -> Vec<ProxyHandle> {
        self.proxies.iter().map(FaultProxy::handle).collect()
    }

    /// The addresses clients connect to, by broker index.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.proxies.iter().map(FaultProxy::local_addr).collect()
    }

    /// Sets the faults of broker `index`'s link.
    pub fn set(&self, index: usize, fault: LinkFault) -> Result<(), ProxyError> {
        self.get(index)?.set(fault);
        Ok(())
    }

    /// Clears the faults of every link.
    pub fn heal_all(&self) {
        for p in &self.proxies {
            p.handle.heal();
        }
    }

    /// Counters of every proxy, by broker index.
    pub fn stats(&self) -> Vec<ProxyStats> {
        self.proxies.iter().map(|p| p.handle.stats()).collect()
    }

    /// Shuts every proxy down; returns once all listening sockets are closed.
    pub async fn shutdown(self) {
        for p in self.proxies {
            p.shutdown().await;
        }
    }
}
