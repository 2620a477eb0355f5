//! Hostile peers against the real binary: strangers speaking the storage protocol with their own libp2p code.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::{AsyncRead, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::{Multiaddr, StreamProtocol};

/// A stranger's codec: each request announces a message of `len` bytes of kind `variant` (the storage protocol's
/// postcard variant index), sends the first `sent` bytes, and then stalls for good.
#[derive(Clone)]
struct Stall {
    /// Requests whose bytes went out.
    written: Arc<AtomicUsize>,
}

/// (announced length, variant index, bytes sent after the length).
type Announce = (u32, u8, usize);

#[async_trait::async_trait]
impl request_response::Codec for Stall {
    type Protocol = StreamProtocol;
    type Request = Announce;
    type Response = ();

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> std::io::Result<Announce> {
        Err(std::io::Error::other("a stranger serves nothing"))
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> std::io::Result<()> {
        futures::future::pending().await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        (len, variant, sent): Announce,
    ) -> std::io::Result<()> {
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.push(variant);
        bytes.resize(4 + sent, 0x5a);
        io.write_all(&bytes).await?;
        io.flush().await?;
        self.written.fetch_add(1, Ordering::SeqCst);
        futures::future::pending().await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: (),
    ) -> std::io::Result<()> {
        Ok(())
    }
}

/// One stranger (a fresh key pair) that connects to `target` and opens `streams` requests on the storage
/// protocol, each announcing a 64 MiB catalog and stalling after 60 KiB, plus a few announcing 64 MiB fragments.
async fn stranger(target: Multiaddr, streams: usize, written: Arc<AtomicUsize>) {
    let protocol = StreamProtocol::new("/bitdust/storage/1");
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(libp2p::tcp::Config::default(), libp2p::noise::Config::new, libp2p::yamux::Config::default)
        .unwrap()
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                Stall { written },
                [(protocol, ProtocolSupport::Outbound)],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(600))
                    .with_max_concurrent_streams(streams + 16),
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
        .build();
    let peer = match target.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(p)) => p,
        _ => panic!("target address without /p2p"),
    };
    swarm.dial(target).unwrap();
    for i in 0..streams {
        // 1 in 16 announces a fragment (variant 1) far over a fragment's size: refused on its first bytes
        let announce = if i % 16 == 0 { (64 << 20, 1, 60 * 1024) } else { (64 << 20, 4, 60 * 1024) };
        swarm.behaviour_mut().send_request(&peer, announce);
    }
    loop {
        swarm.select_next_some().await;
    }
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 =
        status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// Issue 14, item 5: four strangers, each holding 128 streams that announce 64 MiB messages and stall, used to grow
/// a supplier by over 500 MiB (every stream reserved 4 MiB and zero-filled 1 MiB before a byte arrived). Now a
/// buffer grows only with the bytes received and each kind has its own limit, so the supplier's resident memory
/// stays within a stated bound, and the customer's backup and restore through that supplier still work.
#[test]
fn strangers_announcing_huge_messages_and_stalling_leave_a_supplier_small_and_honest_traffic_flowing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let _devnet = devnet(&["--dir", s(&dir), "--suppliers", "4"]);
    let alice = dir.join("alice");
    let src = tmp.path().join("src");
    make_tree(&src);
    ok(&["--home", s(&alice), "backup", s(&src)]);

    // the victim: one of alice's suppliers (the devnet starts spares too)
    let hired = supplier_peers(&alice);
    let homes: Vec<(std::path::PathBuf, serde_json::Value)> = (1..=6)
        .map(|i| dir.join(format!("supplier-{i}")))
        .map(|home| {
            let status = json(&["--home", s(&home), "status"]);
            (home, status)
        })
        .filter(|(_, status)| hired.iter().any(|p| status["peer_id"] == p.as_str()))
        .collect();
    assert!(homes.len() >= 3, "alice hired {hired:?}");
    let (victim, status) = &homes[0];
    let pid: u32 = std::fs::read_to_string(victim.join("daemon.pid")).unwrap().trim().parse().unwrap();
    let target: Multiaddr = status["listen_addrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .find(|a| a.starts_with("/ip4/127.0.0.1/tcp/"))
        .expect("a loopback TCP address")
        .parse()
        .unwrap();
    let before = rss_bytes(pid);

    const STRANGERS: usize = 4;
    const STREAMS: usize = 128;
    let written = Arc::new(AtomicUsize::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    for _ in 0..STRANGERS {
        runtime.spawn(stranger(target.clone(), STREAMS, written.clone()));
    }
    wait_until("every stranger's stream is open and has sent its bytes", || {
        written.load(Ordering::SeqCst) >= STRANGERS * STREAMS * 15 / 16
    });
    let mut peak = rss_bytes(pid);

    // honest traffic through the attacked supplier: a new version, and a restore with two other suppliers stopped
    std::fs::write(src.join("new file"), b"written during the attack").unwrap();
    let text = ok(&["--home", s(&alice), "backup", s(&src)]);
    assert!(text.contains("src@2"), "{text}");
    peak = peak.max(rss_bytes(pid));
    for (home, _) in &homes[1..3] {
        stop_daemon(home);
    }
    let out = tmp.path().join("out");
    ok(&["--home", s(&alice), "restore", "src", "--to", s(&out)]);
    assert_same(&src, &out);
    peak = peak.max(rss_bytes(pid));
    assert!(written.load(Ordering::SeqCst) >= STRANGERS * STREAMS * 15 / 16, "the strangers were still there");

    let grown = peak.saturating_sub(before);
    eprintln!(
        "supplier RSS {} MiB before, peak {} MiB under {STRANGERS} x {STREAMS} stalled 64 MiB announcements: +{} MiB",
        before >> 20,
        peak >> 20,
        grown >> 20
    );
    // 480 stalled streams hold at most a 64 KiB step each (30 MiB), plus the honest backup's own buffers
    assert!(grown < 96 << 20, "supplier grew by {} MiB", grown >> 20);
    runtime.shutdown_background();
}
