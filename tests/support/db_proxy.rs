//! A TCP proxy in front of the control database that a test can partition. While partitioned no
//! byte passes in either direction and new connections get no further than the proxy, as when
//! the network between a process and its database drops every packet: nothing fails, it all just
//! hangs. Healed, what was held passes on (as TCP's retransmissions would deliver it), unless
//! one end gave up meanwhile.

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; it stops when the test process ends.
pub struct DbProxy {
    /// The database URL through the proxy.
    pub url: String,
    partitioned: watch::Sender<bool>,
}

impl DbProxy {
    /// Starts a proxy to the server of `url` (a `postgres://` URL with a host and port).
    pub async fn start(url: &str) -> Self {
        let (before, rest) = url.split_once('@').expect("a URL with user@host");
        let (host_port, after) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let upstream = host_port.to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("{before}@{}{after}", listener.local_addr().unwrap());
        let (partitioned, gate) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream.clone(), gate.clone()));
            }
        });
        DbProxy { url, partitioned }
    }

    /// From now on nothing passes; returns when it began.
    pub fn partition(&self) -> Instant {
        self.partitioned.send_replace(true);
        Instant::now()
    }

    /// Everything passes again.
    pub fn heal(&self) {
        self.partitioned.send_replace(false);
    }
}

/// Waits until the network is whole.
async fn open(gate: &mut watch::Receiver<bool>) -> bool {
    gate.wait_for(|partitioned| !partitioned).await.is_ok()
}

async fn relay(client: TcpStream, upstream: String, mut gate: watch::Receiver<bool>) {
    if !open(&mut gate).await {
        return;
    }
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        pipe(client_read, server_write, gate.clone()),
        pipe(server_read, client_write, gate),
    );
}

/// Copies one direction, passing nothing while partitioned.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut gate: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !open(&mut gate).await {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Bytes read just before the partition wait for the heal like the rest.
        if !open(&mut gate).await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    // An end closed during the partition: the other learns of it once it heals.
    if open(&mut gate).await {
        let _ = to.shutdown().await;
    }
}
