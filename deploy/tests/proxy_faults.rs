//! The fault proxy, observed from outside: a client talks to a tiny echo
//! server on 127.0.0.1 through the proxy while faults come and go.
//!
//! Timing tolerances are chosen for a loaded 2-core CI machine: lower
//! bounds are guarantees of the fault (a delay is never shorter than
//! `delay - jitter`, a rate limit never faster than its rate), upper bounds
//! are several times the expected value so a busy machine does not fail them.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gregor_deploy::proxy::{
    Direction, FaultProxy, LinkFault, ProxyError, ProxyHandle, ProxySet, ProxyStats,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// An echo server on 127.0.0.1 that counts the connections it accepted.
struct Echo {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

async fn echo_server() -> Echo {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("echo addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    Echo { addr, accepted }
}

async fn proxy_to(echo: &Echo) -> FaultProxy {
    FaultProxy::start_seeded("127.0.0.1:0".parse().unwrap(), echo.addr, 42)
        .await
        .expect("start proxy")
}

async fn connect(proxy: &FaultProxy) -> TcpStream {
    let s = TcpStream::connect(proxy.local_addr())
        .await
        .expect("connect to proxy");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// Sends `msg` and reads the same number of bytes back.
async fn round_trip(stream: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.write_all(msg).await?;
    let mut back = vec![0u8; msg.len()];
    stream.read_exact(&mut back).await?;
    Ok(back)
}

/// Sends `len` bytes and reads them all back concurrently; returns the time taken.
async fn echo_bulk(stream: &mut TcpStream, len: usize) -> Duration {
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let start = Instant::now();
    let (mut r, mut w) = stream.split();
    let send = async {
        w.write_all(&data).await.expect("bulk write");
    };
    let receive = async {
        let mut back = vec![0u8; len];
        r.read_exact(&mut back).await.expect("bulk read");
        back
    };
    let (_, back) = tokio::join!(send, receive);
    assert!(back == data, "bytes came back altered or out of order");
    start.elapsed()
}

/// The proxy counts bytes right after writing them, so a client can see the
/// bytes a moment before the counter moves: wait (up to 3 s) until `done`.
async fn settled(handle: &ProxyHandle, done: impl Fn(&ProxyStats) -> bool) -> ProxyStats {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let stats = handle.stats();
        if done(&stats) || Instant::now() > deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// True when the connection is gone: a read fails or sees end of stream.
async fn is_dead(stream: &mut TcpStream) -> bool {
    let _ = stream.write_all(b"anyone?").await;
    let mut buf = [0u8; 16];
    match timeout(Duration::from_secs(3), stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_proxy_echoes_bytes_unchanged_and_counts_them() {
    let echo = echo_server().await;
    let proxy = proxy_to(&echo).await;
    let mut c = connect(&proxy).await;
    assert_eq!(
        round_trip(&mut c, b"hello kafka").await.unwrap(),
        b"hello kafka"
    );
    let elapsed = echo_bulk(&mut c, 1_000_000).await;
    eprintln!("1 MB echoed through a healthy proxy in {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "1 MB took {elapsed:?}");
    let stats = settled(&proxy.handle(), |s| s.bytes_to_client == 1_000_011).await;
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.active_connections, 1);
    assert_eq!(stats.bytes_to_upstream, 1_000_011);
    assert_eq!(stats.bytes_to_client, 1_000_011);
    assert_eq!(echo.accepted.load(Ordering::SeqCst), 1);
    drop(c);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_of_200ms_each_way_slows_every_round_trip() {
    let echo = echo_server().await;
    let proxy = proxy_to(&echo).await;
    let link = proxy.handle();
    let mut c = connect(&proxy).await;
    round_trip(&mut c, b"warm").await.unwrap();
    link.set(LinkFault::latency(
        Duration::from_millis(200),
        Duration::from_millis(20),
    ));
    // Each direction is delayed by 180..220 ms, so a round trip takes at
    // least 360 ms; up to 1.5 s is tolerated for a loaded machine.
    for i in 0..4u8 {
        let start = Instant::now();
        assert_eq!(round_trip(&mut c, &[i; 10]).await.unwrap(), [i; 10]);
        let rtt = start.elapsed();
        assert!(
            rtt >= Duration::from_millis(360) && rtt <= Duration::from_millis(1500),
            "round trip {i} took {rtt:?}, expected 360..1500 ms"
        );
    }
    // Only the replies delayed: a round trip takes 180 ms .. 1 s.
    link.set(
        LinkFault::latency(Duration::from_millis(200), Duration::from_millis(20))
            .only(Direction::ToClient),
    );
    let start = Instant::now();
    round_trip(&mut c, b"one way").await.unwrap();
    let rtt = start.elapsed();
    assert!(
        rtt >= Duration::from_millis(180) && rtt < Duration::from_millis(1000),
        "one-way delayed round trip took {rtt:?}, expected 180..1000 ms"
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_chunks_are_pipelined_not_serialized() {
    let echo = echo_server().await;
    let proxy = proxy_to(&echo).await;
    proxy.handle().set(LinkFault::latency(
        Duration::from_millis(200),
        Duration::from_millis(20),
    ));
    let mut c = connect(&proxy).await;
    let (mut r, mut w) = c.split();
    let start = Instant::now();
    // Ten messages 20 ms apart. A delay queue returns the last one about
    // 180 + 400 ms after the start; sleeping 200 ms per chunk instead would
    // take over 2 s. Byte order must survive the jitter.
    let send = async {
        for i in 0..10u8 {
            w.write_all(&[i; 100]).await.expect("write");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let receive = async {
        let mut back = vec![0u8; 1000];
        r.read_exact(&mut back).await.expect("read");
        back
    };
    let (_, back) = tokio::join!(send, receive);
    let elapsed = start.elapsed();
    let expected: Vec<u8> = (0..10u8).flat_map(|i| [i; 100]).collect();
    assert_eq!(back, expected, "chunks were reordered");
    assert!(
        elapsed >= Duration::from_millis(540) && elapsed < Duration::from_millis(1600),
        "ten pipelined messages took {elapsed:?}, expected 540..1600 ms"
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bandwidth_limit_slows_bulk_transfers_and_heal_restores_full_speed() {
    let echo = echo_server().await;
    let proxy = proxy_to(&echo).await;
    let link = proxy.handle();
    let mut c = connect(&proxy).await;
    link.set(LinkFault::bandwidth(50_000));
    // 100 KB at 50 KB/s needs about 2 s; never less than 1.5 s.
    let limited = echo_bulk(&mut c, 100_000).await;
    assert!(
        limited >= Duration::from_millis(1500),
        "100 KB at 50 KB/s took only {limited:?}"
    );
    link.heal();
    let healed = echo_bulk(&mut c, 100_000).await;
    assert!(
        healed < Duration::from_secs(1),
        "after heal 100 KB still took {healed:?}"
    );
    let stats = settled(&link, |s| s.bytes_to_client == 200_000).await;
    assert_eq!(stats.bytes_to_client, 200_000);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_kills_open_connections_and_refuses_new_ones_until_heal() {
    let echo = echo_server().await;
    let proxy = proxy_to(&echo).await;
    let link = proxy.handle();
    let mut open = connect(&proxy).await;
    round_trip(&mut open, b"before").await.unwrap();

    link.set(LinkFault::reset());
    let mut buf = [0u8; 8];
    let read = timeout(Duration::from_secs(3), open.read(&mut buf))
        .await
        .expect("the reset connection should not hang");
    match read {
        Ok(0) => {}
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
        Ok(n) => panic!("read {n} bytes from a reset connection"),
    }
    for _ in 0..3 {
        match TcpStream::connect(proxy.local_addr()).await {
            Ok(mut again) => assert!(is_dead(&mut again).await, "a new connection worked"),
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset
                ),
                "{e}"
            ),
        }
    }
    assert!(link.stats().resets >= 4, "stats: {:?}", link.stats());

    link.heal();
    let mut healed = connect(&proxy).await;
    assert_eq!(round_trip(&mut healed, b"after").await.unwrap(), b"after");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole_silences_old_and_new_connections_until_heal() {
    let echo = echo_server().await;
    let proxy = proxy_to(&echo).await;
    let link = proxy.handle();
    let mut old = connect(&proxy).await;
    round_trip(&mut old, b"before").await.unwrap();

    link.set(LinkFault::blackhole());
    let silent = timeout(Duration::from_millis(500), round_trip(&mut old, b"ping")).await;
    assert!(silent.is_err(), "got a reply through a black hole");
    let mut new = connect(&proxy).await;
    new.write_all(b"hello?").await.unwrap();
    let mut buf = [0u8; 6];
    let silent = timeout(Duration::from_millis(500), new.read_exact(&mut buf)).await;
    assert!(
        silent.is_err(),
        "a new connection got a reply through a black hole"
    );
    assert_eq!(
        echo.accepted.load(Ordering::SeqCst),
        1,
        "the upstream heard of a connection made during the black hole"
    );

    link.heal();
    // Bytes held back during the black hole arrive, like TCP retransmissions.
    let mut ping = [0u8; 4];
    timeout(Duration::from_secs(3), old.read_exact(&mut ping))
        .await
        .expect("no reply after heal")
        .unwrap();
    assert_eq!(&ping, b"ping");
    timeout(Duration::from_secs(3), new.read_exact(&mut buf))
        .await
        .expect("no reply on the new connection after heal")
        .unwrap();
    assert_eq!(&buf, b"hello?");
    assert_eq!(round_trip(&mut old, b"again").await.unwrap(), b"again");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_way_black_hole_lets_requests_through_but_not_replies() {
    let echo = echo_server().await;
    let proxy = proxy_to(&echo).await;
    let link = proxy.handle();
    let mut c = connect(&proxy).await;
    link.set(LinkFault::blackhole().only(Direction::ToClient));
    let silent = timeout(Duration::from_millis(500), round_trip(&mut c, b"request")).await;
    assert!(
        silent.is_err(),
        "got a reply through a to-client black hole"
    );
    let stats = link.stats();
    assert_eq!(
        stats.bytes_to_upstream, 7,
        "the request should reach upstream"
    );
    assert_eq!(stats.bytes_to_client, 0);
    link.heal();
    let mut back = [0u8; 7];
    timeout(Duration::from_secs(3), c.read_exact(&mut back))
        .await
        .expect("no reply after heal")
        .unwrap();
    assert_eq!(&back, b"request");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_shutdown_the_port_is_free_and_clients_are_disconnected() {
    let echo = echo_server().await;
    let proxy = proxy_to(&echo).await;
    let addr = proxy.local_addr();
    let mut c = connect(&proxy).await;
    round_trip(&mut c, b"x").await.unwrap();
    proxy.shutdown().await;

    assert!(
        is_dead(&mut c).await,
        "a client survived the proxy shutdown"
    );
    let refused = TcpStream::connect(addr).await;
    assert!(refused.is_err(), "something still listens on {addr}");
    let rebound = TcpListener::bind(addr).await;
    assert!(rebound.is_ok(), "port still busy: {:?}", rebound.err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_proxy_also_frees_its_port() {
    let echo = echo_server().await;
    let proxy = proxy_to(&echo).await;
    let addr = proxy.local_addr();
    drop(proxy);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if TcpListener::bind(addr).await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "port {addr} still busy after drop"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_set_faults_one_broker_and_leaves_the_others_alone() {
    let brokers = [echo_server().await, echo_server().await];
    let set = ProxySet::start_local(&[(0, brokers[0].addr.port()), (0, brokers[1].addr.port())])
        .await
        .expect("start proxy set");
    assert_eq!(set.len(), 2);
    assert!(matches!(
        set.get(2),
        Err(ProxyError::NoSuchBroker { index: 2, len: 2 })
    ));
    let addrs = set.listen_addrs();
    set.set(1, LinkFault::blackhole()).unwrap();

    let mut to0 = TcpStream::connect(addrs[0]).await.unwrap();
    let mut to1 = TcpStream::connect(addrs[1]).await.unwrap();
    assert_eq!(round_trip(&mut to0, b"zero").await.unwrap(), b"zero");
    let silent = timeout(Duration::from_millis(500), round_trip(&mut to1, b"one")).await;
    assert!(silent.is_err(), "broker 1 answered through its black hole");

    set.heal_all();
    let mut back = [0u8; 3];
    timeout(Duration::from_secs(3), to1.read_exact(&mut back))
        .await
        .expect("broker 1 silent after heal_all")
        .unwrap();
    let stats = set.stats();
    assert_eq!(stats[0].connections, 1);
    let broker1 = settled(&set.get(1).unwrap(), |s| s.bytes_to_client == 3).await;
    assert_eq!(broker1.bytes_to_client, 3);
    set.shutdown().await;
    for addr in addrs {
        assert!(TcpListener::bind(addr).await.is_ok(), "{addr} still busy");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_to_a_dead_upstream_resets_its_clients() {
    // Find a port nobody listens on.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let proxy = FaultProxy::start("127.0.0.1:0".parse().unwrap(), dead)
        .await
        .unwrap();
    // The proxy accepts, fails to reach the upstream and resets the client,
    // possibly before the client finished setting up its socket.
    if let Ok(mut c) = TcpStream::connect(proxy.local_addr()).await {
        assert!(is_dead(&mut c).await, "a client talked to a dead upstream");
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while proxy.handle().stats().upstream_failures == 0 {
        assert!(Instant::now() < deadline, "no upstream failure counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_on_a_busy_port_names_the_address() {
    let busy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = busy.local_addr().unwrap();
    let err = FaultProxy::start(addr, addr).await.unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
