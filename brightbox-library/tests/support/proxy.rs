//! A TCP fault proxy on 127.0.0.1 for the fault matrix.
//!
//! It forwards bytes without reading them, so in front of an FTPS server it carries the
//! TLS-protected control connection only: data connections go to the control connection's
//! peer address, 127.0.0.1, at the port the server advertises, which bypasses the proxy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Faults applied to every flow the proxy forwards.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults {
    /// Resets the flow once this many bytes went from client to server.
    pub(crate) reset_after_upstream: Option<u64>,
    /// Resets the flow once this many bytes went from server to client.
    pub(crate) reset_after_downstream: Option<u64>,
    /// Resets a flow that carried no byte in either direction for this long.
    pub(crate) idle_reset: Option<Duration>,
    /// Limits each direction of each flow to this many bytes per second.
    pub(crate) throttle_bytes_per_second: Option<u64>,
    /// Applies the faults above to the first this many flows only; later flows pass unchanged.
    /// `None` applies them to every flow.
    pub(crate) faulty_flows: Option<u64>,
    /// Accepts connections but never connects to the target and never sends a byte, as a
    /// server that stopped answering does.
    pub(crate) silent: bool,
    /// Makes every flow from this zero-based index on silent, as `silent` does, whatever the
    /// other fields say.
    pub(crate) silent_from_flow: Option<u64>,
}

impl Faults {
    /// Returns the faults for the flow with the zero-based `index`.
    fn for_flow(&self, index: u64) -> Faults {
        if self.silent_from_flow.is_some_and(|first| index >= first) {
            return Faults {
                silent: true,
                ..Faults::default()
            };
        }
        match self.faulty_flows {
            Some(count) if index >= count => Faults::default(),
            _ => self.clone(),
        }
    }
}

/// Keeps `client` open without reading or writing until the proxy resets its flows or the
/// client closes.
async fn hold_silently(client: TcpStream, mut reset_signal: watch::Receiver<u64>) {
    let _ = reset_signal.changed().await;
    let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
    drop(client);
}

/// Counters shared by all flows of one proxy.
#[derive(Debug, Default)]
pub(crate) struct ProxyStats {
    /// Connections accepted from clients.
    pub(crate) accepted: AtomicU64,
    /// Bytes forwarded from clients to the target.
    pub(crate) upstream_bytes: AtomicU64,
    /// Bytes forwarded from the target to clients.
    pub(crate) downstream_bytes: AtomicU64,
    /// Flows the proxy ended with a TCP reset.
    pub(crate) resets: AtomicU64,
}

/// A running proxy; it stops accepting and resets its flows when dropped.
pub(crate) struct FaultProxy {
    /// The address clients connect to.
    pub(crate) address: SocketAddr,
    /// Counters for assertions.
    pub(crate) stats: Arc<ProxyStats>,
    reset_all: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.reset_now();
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy on a free port of 127.0.0.1 that forwards each connection to `target`.
    pub(crate) async fn start(target: SocketAddr, faults: Faults) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy on 127.0.0.1");
        let address = listener.local_addr().expect("proxy address");
        let stats = Arc::new(ProxyStats::default());
        let (reset_all, _) = watch::channel(0_u64);

        let task = {
            let stats = Arc::clone(&stats);
            let reset_all = reset_all.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    let index = stats.accepted.fetch_add(1, Ordering::Relaxed);
                    let faults = faults.for_flow(index);
                    let stats = Arc::clone(&stats);
                    let reset_signal = reset_all.subscribe();
                    tokio::spawn(async move {
                        if faults.silent {
                            hold_silently(client, reset_signal).await;
                            return;
                        }
                        let Ok(server) = TcpStream::connect(target).await else {
                            return;
                        };
                        forward(client, server, faults, stats, reset_signal).await;
                    });
                }
            })
        };

        FaultProxy {
            address,
            stats,
            reset_all,
            task,
        }
    }

    /// Resets every flow that is open now. Later connections are forwarded as usual.
    pub(crate) fn reset_now(&self) {
        self.reset_all.send_modify(|generation| *generation += 1);
    }

    /// Returns a handle that resets the proxy's open flows from another task.
    pub(crate) fn reset_handle(&self) -> ResetHandle {
        ResetHandle(self.reset_all.clone())
    }

    /// Returns the number of flows the proxy reset so far.
    pub(crate) fn resets(&self) -> u64 {
        self.stats.resets.load(Ordering::Relaxed)
    }

    /// Returns the number of connections accepted so far.
    pub(crate) fn accepted(&self) -> u64 {
        self.stats.accepted.load(Ordering::Relaxed)
    }

    /// Returns the bytes forwarded from clients to the target so far.
    pub(crate) fn upstream_bytes(&self) -> u64 {
        self.stats.upstream_bytes.load(Ordering::Relaxed)
    }

    /// Returns the bytes forwarded from the target to clients so far.
    pub(crate) fn downstream_bytes(&self) -> u64 {
        self.stats.downstream_bytes.load(Ordering::Relaxed)
    }
}

/// Resets every open flow of one proxy, as [`FaultProxy::reset_now`] does.
#[derive(Clone)]
pub(crate) struct ResetHandle(watch::Sender<u64>);

impl ResetHandle {
    /// Resets every flow that is open now.
    pub(crate) fn reset_now(&self) {
        self.0.send_modify(|generation| *generation += 1);
    }
}

/// Direction of a copy, for byte counters and limits.
#[derive(Clone, Copy)]
enum Direction {
    Upstream,
    Downstream,
}

/// Forwards one flow in both directions until both sides close or a fault resets it.
async fn forward(
    client: TcpStream,
    server: TcpStream,
    faults: Faults,
    stats: Arc<ProxyStats>,
    mut reset_signal: watch::Receiver<u64>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    // Second handles to the same sockets: setting SO_LINGER to zero on them before the last
    // descriptor closes turns the close into a TCP reset.
    let (Ok(client_socket), Ok(server_socket)) = (
        socket2::SockRef::from(&client).try_clone(),
        socket2::SockRef::from(&server).try_clone(),
    ) else {
        return;
    };

    let started = Instant::now();
    let last_activity = Arc::new(AtomicU64::new(0));
    let (limit_reached, mut limit_signal) = mpsc::channel::<()>(2);
    let (cancel, _) = watch::channel(false);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let mut upstream = tokio::spawn(copy_one_way(
        client_read,
        server_write,
        Direction::Upstream,
        faults.reset_after_upstream,
        faults.clone(),
        Arc::clone(&stats),
        Arc::clone(&last_activity),
        started,
        limit_reached.clone(),
        cancel.subscribe(),
    ));
    let mut downstream = tokio::spawn(copy_one_way(
        server_read,
        client_write,
        Direction::Downstream,
        faults.reset_after_downstream,
        faults.clone(),
        Arc::clone(&stats),
        Arc::clone(&last_activity),
        started,
        limit_reached,
        cancel.subscribe(),
    ));

    let idle_check = faults
        .idle_reset
        .map(|idle| (idle / 4).max(Duration::from_millis(10)));
    let mut upstream_done = false;
    let mut downstream_done = false;
    let reset = loop {
        if upstream_done && downstream_done {
            break false;
        }
        tokio::select! {
            _ = &mut upstream, if !upstream_done => upstream_done = true,
            _ = &mut downstream, if !downstream_done => downstream_done = true,
            _ = limit_signal.recv() => break true,
            // An error means the proxy was dropped, which also resets its flows.
            _ = reset_signal.changed() => break true,
            () = tokio::time::sleep(idle_check.unwrap_or(Duration::from_secs(3600))),
                if idle_check.is_some() => {
                let idle = faults.idle_reset.unwrap_or_default();
                let last = Duration::from_millis(last_activity.load(Ordering::Relaxed));
                if started.elapsed().saturating_sub(last) >= idle {
                    break true;
                }
            }
        }
    };

    if reset {
        let _ = client_socket.set_linger(Some(Duration::ZERO));
        let _ = server_socket.set_linger(Some(Duration::ZERO));
        stats.resets.fetch_add(1, Ordering::Relaxed);
        // The copies drop their halves without shutting down the write side, so no FIN goes out
        // before the reset.
        let _ = cancel.send(true);
        if !upstream_done {
            let _ = upstream.await;
        }
        if !downstream_done {
            let _ = downstream.await;
        }
    }
    // Dropping the last handles closes both sockets; with SO_LINGER 0 each close sends a reset.
    drop(client_socket);
    drop(server_socket);
}

/// Runs `operation` unless `cancel` turns true first; returns `None` when cancelled.
async fn unless_cancelled<T>(
    cancel: &mut watch::Receiver<bool>,
    operation: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        output = operation => Some(output),
        _ = cancel.wait_for(|cancelled| *cancelled) => None,
    }
}

/// Copies `from` to `to` until EOF, counting bytes and applying the byte limit and throttle.
///
/// On cancellation the write half is dropped with `forget`, so no FIN is sent.
#[allow(clippy::too_many_arguments)]
async fn copy_one_way(
    mut from: OwnedReadHalf,
    to: OwnedWriteHalf,
    direction: Direction,
    limit: Option<u64>,
    faults: Faults,
    stats: Arc<ProxyStats>,
    last_activity: Arc<AtomicU64>,
    started: Instant,
    limit_reached: mpsc::Sender<()>,
    mut cancel: watch::Receiver<bool>,
) {
    let mut to = to;
    let rate = faults.throttle_bytes_per_second.filter(|rate| *rate > 0);
    // Small reads keep a throttled flow smooth.
    let buffer_size = rate.map_or(64 * 1024, |rate| (rate / 20).clamp(512, 64 * 1024) as usize);
    let mut buffer = vec![0_u8; buffer_size];
    let mut forwarded: u64 = 0;
    let throttle_start = Instant::now();
    let counter = match direction {
        Direction::Upstream => &stats.upstream_bytes,
        Direction::Downstream => &stats.downstream_bytes,
    };
    loop {
        let read_size = match limit {
            Some(limit) if forwarded >= limit => {
                let _ = limit_reached.send(()).await;
                let _ = cancel.wait_for(|cancelled| *cancelled).await;
                to.forget();
                return;
            }
            Some(limit) => buffer
                .len()
                .min(usize::try_from(limit - forwarded).unwrap_or(usize::MAX)),
            None => buffer.len(),
        };
        let chunk = buffer.get_mut(..read_size).unwrap_or_default();
        let read = match unless_cancelled(&mut cancel, from.read(chunk)).await {
            None => {
                to.forget();
                return;
            }
            Some(Ok(0) | Err(_)) => {
                let _ = to.shutdown().await;
                return;
            }
            Some(Ok(read)) => read,
        };
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        last_activity.store(elapsed_ms, Ordering::Relaxed);
        let data = chunk.get(..read).unwrap_or_default();
        match unless_cancelled(&mut cancel, to.write_all(data)).await {
            None => {
                to.forget();
                return;
            }
            Some(Err(_)) => return,
            Some(Ok(())) => {}
        }
        forwarded += read as u64;
        counter.fetch_add(read as u64, Ordering::Relaxed);

        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(forwarded as f64 / rate as f64);
            if unless_cancelled(&mut cancel, tokio::time::sleep_until(throttle_start + due))
                .await
                .is_none()
            {
                to.forget();
                return;
            }
        }
    }
}
