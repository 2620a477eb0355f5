//! The TCP transport's security: a node offers TLS 1.3 first and Noise second, so a peer that speaks only Noise
//! (js-libp2p's defaults, older nodes) still connects, and so does one that speaks only TLS; TLS offers AES-GCM
//! first on a CPU with AES instructions (vendor/libp2p-tls).

use std::time::Duration;

use bitdust_core::keys::NodeKeys;
use bitdust_net::{NetConfig, Network};
use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, ping, tcp, tls, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder};

async fn node(bootstrap: Vec<Multiaddr>) -> Network {
    let config = NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse::<Multiaddr>().unwrap()],
        bootstrap,
        ..NetConfig::default()
    };
    let (net, _inbounds) = Network::start(NodeKeys::generate().keypair(), config).await.unwrap();
    net
}

/// A plain libp2p peer whose TCP transport offers only `security` ("noise" or "tls").
fn peer(security: &str) -> Swarm<ping::Behaviour> {
    let builder = SwarmBuilder::with_existing_identity(Keypair::generate_ed25519()).with_tokio();
    let timeout = |c: libp2p::swarm::Config| c.with_idle_connection_timeout(Duration::from_secs(30));
    match security {
        "noise" => builder
            .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
            .unwrap()
            .with_behaviour(|_| ping::Behaviour::default())
            .unwrap()
            .with_swarm_config(timeout)
            .build(),
        _ => builder
            .with_tcp(tcp::Config::default(), tls::Config::new, yamux::Config::default)
            .unwrap()
            .with_behaviour(|_| ping::Behaviour::default())
            .unwrap()
            .with_swarm_config(timeout)
            .build(),
    }
}

/// Dials `target` from `swarm`; `Ok` once the connection is up.
async fn dial(mut swarm: Swarm<ping::Behaviour>, target: Multiaddr, peer: PeerId) -> Result<(), String> {
    swarm.dial(target).map_err(|e| e.to_string())?;
    let wait = async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == peer => return Ok(()),
                SwarmEvent::OutgoingConnectionError { error, .. } => return Err(error.to_string()),
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait).await.map_err(|_| "timed out".to_string())?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_takes_noise_only_and_tls_only_peers() {
    let net = node(Vec::new()).await;
    let addr = net.addresses().borrow()[0].clone().with(libp2p::multiaddr::Protocol::P2p(net.local_peer_id()));
    for security in ["noise", "tls"] {
        let r = dial(peer(security), addr.clone(), net.local_peer_id()).await;
        assert_eq!(r, Ok(()), "a {security}-only peer");
    }
    // and a node dialing a Noise-only peer falls back to Noise (it proposes TLS first)
    let mut plain = peer("noise");
    plain.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
    let listening = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = plain.select_next_some().await {
            break address.with(libp2p::multiaddr::Protocol::P2p(*plain.local_peer_id()));
        }
    };
    let dialer = node(vec![listening]).await;
    let accepted = async {
        loop {
            if let SwarmEvent::ConnectionEstablished { peer_id, .. } = plain.select_next_some().await {
                if peer_id == dialer.local_peer_id() {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), accepted).await.expect("the node reaches a Noise-only peer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_connect_and_tls_offers_aes_gcm_first_on_cpus_with_aes() {
    let a = node(Vec::new()).await;
    let addr = a.addresses().borrow()[0].clone().with(libp2p::multiaddr::Protocol::P2p(a.local_peer_id()));
    let b = node(vec![addr]).await;
    let joined = async {
        while !b.routing_table().await.unwrap_or_default().contains(&a.local_peer_id()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), joined).await.expect("two nodes connect");
    // the client's order decides (a rustls server follows it)
    let config = tls::make_client_config(&Keypair::generate_ed25519(), None).unwrap();
    let first = format!("{:?}", config.crypto_provider().cipher_suites[0].suite());
    #[cfg(target_arch = "x86_64")]
    let hardware = std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq");
    #[cfg(not(target_arch = "x86_64"))]
    let hardware = first.contains("AES");
    assert_eq!(first.contains("AES_256_GCM"), hardware, "first suite {first}");
}
