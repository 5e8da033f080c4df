//! The tokio driver on loopback against a hand-written peer: the test plays the router with
//! raw bytes on a socket, in both directions (speaker connects, speaker accepts).
mod bgp_common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bgp_common::{caps_all, keepalive, msg, open, route, PEER_AS};
use tenbin_ha::bgp::driver::{Neighbor, Speaker, SpeakerConfig};
use tenbin_ha::bgp::{Event, PeerConfig, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(10);

fn peer_config(passive: bool) -> PeerConfig {
    PeerConfig {
        passive,
        next_hop_v4: Some(Ipv4Addr::new(127, 0, 0, 1)),
        ..bgp_common::config()
    }
}

/// Reads one whole message.
async fn read_msg(s: &mut TcpStream) -> Vec<u8> {
    let mut head = [0u8; 19];
    tokio::time::timeout(LIMIT, s.read_exact(&mut head))
        .await
        .expect("a message in time")
        .expect("read");
    let len = usize::from(u16::from_be_bytes([head[16], head[17]]));
    let mut body = vec![0u8; len - 19];
    s.read_exact(&mut body).await.expect("body");
    [head.to_vec(), body].concat()
}

/// Plays the router's side up to Established; returns our OPEN as the speaker sent it.
async fn handshake(s: &mut TcpStream) -> Vec<u8> {
    let theirs = read_msg(s).await;
    assert_eq!(theirs[18], 1, "OPEN first");
    s.write_all(&open(PEER_AS, 3, [10, 88, 1, 1], &caps_all(PEER_AS)))
        .await
        .unwrap();
    assert_eq!(read_msg(s).await, keepalive());
    s.write_all(&keepalive()).await.unwrap();
    theirs
}

async fn wait_state(speaker: &Speaker, want: State) {
    let mut st = speaker.status();
    tokio::time::timeout(LIMIT, st.wait_for(|v| v[0].state == want))
        .await
        .expect("state in time")
        .expect("speaker alive");
}

#[tokio::test]
async fn active_speaker_connects_announces_withdraws_and_ceases() {
    let router = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = router.local_addr().unwrap().port();
    let speaker = Speaker::start(SpeakerConfig {
        neighbors: vec![Neighbor {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            local_address: None,
            session: peer_config(false),
            bfd: None,
        }],
        listen: None,
    })
    .await
    .unwrap();
    let mut events = speaker.subscribe();
    speaker.announce(route("10.99.100.1/32"));
    let (mut s, _) = router.accept().await.unwrap();
    handshake(&mut s).await;
    wait_state(&speaker, State::Established).await;
    let u = read_msg(&mut s).await;
    assert_eq!(u[18], 2, "UPDATE");
    assert!(u.ends_with(&[32, 10, 99, 100, 1]));
    speaker.withdraw("10.99.100.1/32".parse().unwrap());
    let w = read_msg(&mut s).await;
    assert_eq!(&w[19..], &[0, 5, 32, 10, 99, 100, 1, 0, 0]);
    // Keepalives keep coming at a third of the 3 s hold time.
    assert_eq!(read_msg(&mut s).await, keepalive());
    let mut saw = Vec::new();
    while let Ok(e) = events.try_recv() {
        saw.push(e.event);
    }
    assert!(saw.contains(&Event::Announced("10.99.100.1/32".parse().unwrap())));
    speaker.shutdown().await;
    assert_eq!(read_msg(&mut s).await, msg(3, &[6, 2]));
}

#[tokio::test]
async fn passive_speaker_accepts_and_retries_after_a_peer_closes() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let speaker = Speaker::start(SpeakerConfig {
        neighbors: vec![Neighbor {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 179,
            local_address: None,
            session: peer_config(true),
            bfd: None,
        }],
        listen: Some(listen),
    })
    .await
    .unwrap();
    wait_state(&speaker, State::Active).await;
    for _ in 0..2 {
        let mut s = TcpStream::connect(listen).await.unwrap();
        handshake(&mut s).await;
        wait_state(&speaker, State::Established).await;
        drop(s);
        wait_state(&speaker, State::Active).await;
    }
    assert_eq!(speaker.status().borrow()[0].stats.flaps, 2);
    speaker.shutdown().await;
}
