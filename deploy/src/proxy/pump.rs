//! Forwarding of one accepted connection: two directions, each a reader
//! feeding a delay queue and a writer draining it under the current faults.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, sleep_until, timeout, Instant};

use super::fault::{Direction, LinkFault};

/// Largest chunk read from a socket in one go.
const READ_CHUNK: usize = 16 * 1024;
/// Chunks queued per direction before the reader stops reading (which
/// pushes back on the sender through TCP flow control): at most 4 MiB.
const QUEUE_DEPTH: usize = 256;
/// How long the proxy waits for the upstream to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Counters shared by all connections of one proxy.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub accepted: AtomicU64,
    pub active: AtomicU64,
    pub reset: AtomicU64,
    pub upstream_failures: AtomicU64,
    pub bytes_to_upstream: AtomicU64,
    pub bytes_to_client: AtomicU64,
}

impl Counters {
    fn bytes(&self, direction: Direction) -> &AtomicU64 {
        match direction {
            Direction::ToUpstream => &self.bytes_to_upstream,
            Direction::ToClient => &self.bytes_to_client,
        }
    }
}

/// Decrements the active-connection gauge however the connection ends.
struct ActiveGuard<'a>(&'a AtomicU64);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// SplitMix64: a tiny, seedable generator for latency jitter.
pub(super) struct SplitMix(u64);

impl SplitMix {
    pub(super) fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn proxy_gone() -> io::Error {
    io::Error::other("fault proxy shut down")
}

/// Closes a socket with an RST instead of a FIN.
fn abort(stream: TcpStream) {
    // If SO_LINGER cannot be set the socket is still closed, with a FIN.
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Resolves once the link is told to reset connections.
async fn reset_requested(faults: &mut watch::Receiver<LinkFault>) {
    loop {
        if faults.borrow_and_update().reset {
            return;
        }
        if faults.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Resolves once bytes may flow in `direction` (no black hole, nonzero bandwidth).
async fn flowing(faults: &mut watch::Receiver<LinkFault>, direction: Direction) -> io::Result<()> {
    loop {
        if !faults.borrow_and_update().get(direction).is_stalled() {
            return Ok(());
        }
        faults.changed().await.map_err(|_| proxy_gone())?;
    }
}

/// Serves one accepted client connection until either side closes, an
/// error occurs, or the link is reset.
pub(super) async fn serve(
    client: TcpStream,
    upstream_addr: SocketAddr,
    mut faults: watch::Receiver<LinkFault>,
    counters: Arc<Counters>,
    seed: u64,
) {
    counters.accepted.fetch_add(1, Ordering::Relaxed);
    counters.active.fetch_add(1, Ordering::Relaxed);
    let _active = ActiveGuard(&counters.active);
    let _ = client.set_nodelay(true);

    // A black hole towards the upstream means the connection attempt itself
    // is lost: the client's connect succeeds (the proxy accepted it) but the
    // upstream does not hear of it until the black hole is lifted.
    loop {
        let now = faults.borrow_and_update().clone();
        if now.reset {
            counters.reset.fetch_add(1, Ordering::Relaxed);
            abort(client);
            return;
        }
        if !now.to_upstream.is_stalled() {
            break;
        }
        if faults.changed().await.is_err() {
            return;
        }
    }

    let mut reset_watch = faults.clone();
    let upstream = tokio::select! {
        r = timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream_addr)) => r,
        _ = reset_requested(&mut reset_watch) => {
            counters.reset.fetch_add(1, Ordering::Relaxed);
            abort(client);
            return;
        }
    };
    let mut upstream = match upstream {
        Ok(Ok(s)) => s,
        // The upstream refused or did not answer: the client sees its
        // connection reset, like a refused connect seen end to end.
        Ok(Err(_)) | Err(_) => {
            counters.upstream_failures.fetch_add(1, Ordering::Relaxed);
            abort(client);
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    let mut client = client;

    enum PumpEnd {
        Finished,
        Failed,
        Reset,
    }
    let end = {
        let (client_read, client_write) = client.split();
        let (upstream_read, upstream_write) = upstream.split();
        let mut rng = SplitMix::new(seed);
        let forward = async {
            tokio::try_join!(
                pump(
                    client_read,
                    upstream_write,
                    Direction::ToUpstream,
                    faults.clone(),
                    &counters,
                    rng.next_u64(),
                ),
                pump(
                    upstream_read,
                    client_write,
                    Direction::ToClient,
                    faults.clone(),
                    &counters,
                    rng.next_u64(),
                ),
            )
        };
        tokio::select! {
            r = forward => if r.is_ok() { PumpEnd::Finished } else { PumpEnd::Failed },
            _ = reset_requested(&mut reset_watch) => PumpEnd::Reset,
        }
    };
    match end {
        PumpEnd::Finished => {}
        // One side broke the connection: pass the abort on to the other side.
        PumpEnd::Failed => {
            abort(client);
            abort(upstream);
        }
        PumpEnd::Reset => {
            counters.reset.fetch_add(1, Ordering::Relaxed);
            abort(client);
            abort(upstream);
        }
    }
}

/// One queued chunk; `data == None` is the end of the stream (a FIN).
struct Chunk {
    data: Option<Vec<u8>>,
    deliver_at: Instant,
}

/// Forwards one direction until end of stream (then half-closes `dst`).
async fn pump<R, W>(
    mut src: R,
    mut dst: W,
    direction: Direction,
    faults: watch::Receiver<LinkFault>,
    counters: &Counters,
    seed: u64,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (queue, mut queued) = mpsc::channel::<Chunk>(QUEUE_DEPTH);
    let mut read_faults = faults.clone();
    let mut write_faults = faults;

    let reader = async move {
        let mut rng = SplitMix::new(seed);
        let mut last_delivery = Instant::now();
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            flowing(&mut read_faults, direction).await?;
            let n = src.read(&mut buf).await?;
            let delay = read_faults
                .borrow()
                .get(direction)
                .latency
                .map(|l| l.sample(rng.next_u64()))
                .unwrap_or(Duration::ZERO);
            // Never deliver before the previous chunk: order is preserved.
            let deliver_at = (Instant::now() + delay).max(last_delivery);
            last_delivery = deliver_at;
            // Copied out so a queued chunk holds only its own bytes.
            let data = (n > 0).then(|| buf[..n].to_vec());
            let eof = data.is_none();
            if queue.send(Chunk { data, deliver_at }).await.is_err() || eof {
                return Ok::<(), io::Error>(());
            }
        }
    };

    let writer = async move {
        let mut bucket = TokenBucket::new();
        while let Some(chunk) = queued.recv().await {
            // The delay queue: wait for the chunk's delivery time, unless the
            // latency is lifted meanwhile (then deliver at once).
            loop {
                let delayed = write_faults
                    .borrow_and_update()
                    .get(direction)
                    .latency
                    .is_some();
                if !delayed || Instant::now() >= chunk.deliver_at {
                    break;
                }
                tokio::select! {
                    _ = sleep_until(chunk.deliver_at) => break,
                    r = write_faults.changed() => r.map_err(|_| proxy_gone())?,
                }
            }
            let Some(data) = chunk.data else {
                flowing(&mut write_faults, direction).await?;
                dst.shutdown().await?;
                return Ok(());
            };
            let mut rest = &data[..];
            while !rest.is_empty() {
                flowing(&mut write_faults, direction).await?;
                let limit = write_faults.borrow().get(direction).bandwidth;
                let n = match limit {
                    None => rest.len(),
                    Some(rate) => {
                        let piece = TokenBucket::piece(rate).min(rest.len());
                        if !bucket.take(rate, piece, &mut write_faults).await? {
                            continue; // faults changed while waiting: re-evaluate
                        }
                        piece
                    }
                };
                dst.write_all(&rest[..n]).await?;
                counters
                    .bytes(direction)
                    .fetch_add(n as u64, Ordering::Relaxed);
                rest = &rest[n..];
            }
        }
        Ok::<(), io::Error>(())
    };

    tokio::try_join!(reader, writer).map(|_| ())
}

/// A token bucket holding at most 1/20 s worth of bytes.
struct TokenBucket {
    tokens: f64,
    refilled: Instant,
    rate: u64,
}

impl TokenBucket {
    fn new() -> Self {
        TokenBucket {
            tokens: 0.0,
            refilled: Instant::now(),
            rate: 0,
        }
    }

    /// Bytes written at once under `rate`: 50 ms worth, at least one byte.
    fn piece(rate: u64) -> usize {
        usize::try_from(rate / 20)
            .unwrap_or(READ_CHUNK)
            .clamp(1, READ_CHUNK)
    }

    /// Takes `n` tokens, sleeping until they have accrued. Returns
    /// `Ok(false)` without taking anything when the faults change meanwhile.
    async fn take(
        &mut self,
        rate: u64,
        n: usize,
        faults: &mut watch::Receiver<LinkFault>,
    ) -> io::Result<bool> {
        let capacity = Self::piece(rate) as f64;
        if rate != self.rate {
            // A new limit starts with a full bucket.
            self.rate = rate;
            self.tokens = capacity;
            self.refilled = Instant::now();
        }
        loop {
            let now = Instant::now();
            let elapsed = now.duration_since(self.refilled).as_secs_f64();
            self.tokens = (self.tokens + elapsed * rate as f64).min(capacity);
            self.refilled = now;
            let need = n as f64;
            if self.tokens >= need {
                self.tokens -= need;
                return Ok(true);
            }
            let wait = Duration::from_secs_f64((need - self.tokens) / rate.max(1) as f64);
            tokio::select! {
                _ = sleep(wait) => {}
                r = faults.changed() => {
                    r.map_err(|_| proxy_gone())?;
                    return Ok(false);
                }
            }
        }
    }
}
