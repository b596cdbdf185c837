/*!
Process and thread events from the Linux kernel, with every loss said out loud.

The sensor listens to the kernel's process connector (`NETLINK_CONNECTOR`,
`CN_IDX_PROC`) and publishes one [`aether_events::Event`] for each fork
(process or thread), exec, exit, uid/gid change, setsid, ptrace, comm change and core
dump on the machine, on an [`aether_events::Bus`].

Brief overview of how a message travels:
1. The kernel queues it on the socket, whose buffer is forced large
   (`SO_RCVBUFFORCE`, 64 MiB by default: about 80,000 events).
2. The reader thread only drains the socket into a bounded queue. It watches the
   connector's per-CPU sequence numbers ([`seq`]) and `ENOBUFS`, so kernel loss is
   counted where it happens, and counts what it has to drop when the queue is full.
   When it is caught up, it also reads `/proc` for exec events on arrival, since a
   short-lived program is gone within a millisecond (see `reader.rs`).
3. The processor thread reads `/proc` for the execs the reader left ([`procfs`]),
   confirms each read against later image changes, keeps the table of live processes
   ([`table`]), turns loss into [`Loss`](aether_events::Loss) events followed by a
   resync of the table against `/proc`, and publishes numbered events.

A consumer that lost track of the stream (a daemon after a restart, or after falling
behind the bus) asks for a snapshot ([`Sensor::request_snapshot`]): the processor
publishes its table as `snapshot_begin`, one `process_snapshot` per process, and
`snapshot_end`, in order with the other events, so what follows continues from exactly
the listed state.

[`decode`] is the pure bytes-to-message decoder that tests and the fuzzer feed.
[`filter`] and [`monitor`] hold the logic of `aether monitor`.

```no_run
use aether_events::Bus;
use aether_sensor::SensorBuilder;

let bus = Bus::new(1 << 16);
let mut events = bus.subscribe();
let sensor = SensorBuilder::new().start(bus)?;
while let Ok(ev) = events.recv() {
    println!("{}", serde_json::to_string(&*ev).unwrap());
}
# let _ = sensor.stop();
# Ok::<(), aether_sensor::Error>(())
```
*/
#![deny(missing_docs)]

pub mod decode;
pub mod filter;
pub mod monitor;
mod processor;
pub mod procfs;
mod reader;
pub mod seq;
pub mod sys;
pub mod table;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aether_events::{Bus, Event};

use crate::decode::Body;
use crate::procfs::ProcFs;
use crate::reader::{Gate, ReaderState};
use crate::sys::{
    ConnectorSocket, PROC_CN_MCAST_IGNORE, PROC_CN_MCAST_LISTEN, RecvBatch, SyscallError,
};

/// Default socket receive buffer: 64 MiB, about 80,000 events at ~820 bytes of
/// buffer accounting each, enough for a reader stalled through a 20,000-process storm.
pub const DEFAULT_RCVBUF: usize = 64 << 20;
/// Default capacity of the queue between reader and processor, in messages.
pub const DEFAULT_QUEUE: usize = 1 << 18;

/// Why the sensor could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not privileged enough: the connector's large buffer needs `CAP_NET_ADMIN`.
    #[error("the process connector needs CAP_NET_ADMIN: {0}")]
    NotPermitted(SyscallError),
    /// Outside the initial network namespace the connector delivers nothing.
    #[error(
        "this process is not in the initial network namespace, where the process connector delivers events"
    )]
    NotInitialNetNamespace,
    /// The kernel never answered the listen request.
    #[error(
        "the kernel did not acknowledge the listen request within {0:?}; the process connector ignores requests from outside the initial user and PID namespaces"
    )]
    NoAck(Duration),
    /// The kernel answered the listen request with an error.
    #[error("the kernel refused the listen request: errno {0}")]
    Refused(u32),
    /// A system call failed.
    #[error(transparent)]
    Syscall(#[from] SyscallError),
    /// `/proc` could not be read.
    #[error("cannot read {path}: {source}")]
    Proc {
        /// What.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the {name} thread: {source}")]
    Thread {
        /// Which thread.
        name: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

impl Error {
    /// True for the errors that mean "not allowed here" (privilege or namespace),
    /// as opposed to a failure.
    pub fn is_environment(&self) -> bool {
        matches!(
            self,
            Error::NotPermitted(_)
                | Error::NotInitialNetNamespace
                | Error::NoAck(_)
                | Error::Refused(_)
        )
    }
}

/// Counters shared by the sensor's threads. Read them with [`Sensor::stats`].
#[derive(Debug, Default)]
pub struct Stats {
    /// Connector messages received and decoded.
    pub received: AtomicU64,
    /// Messages the kernel lost (sum of sequence gaps).
    pub lost_kernel: AtomicU64,
    /// `ENOBUFS` reports.
    pub overruns: AtomicU64,
    /// Messages dropped because the reader's queue was full.
    pub lost_queue: AtomicU64,
    /// Resyncs completed.
    pub resyncs: AtomicU64,
    /// Snapshots published ([`Sensor::request_snapshot`]).
    pub snapshots: AtomicU64,
    /// Snapshot requests made; the processor serves them while this is ahead of
    /// what it served.
    pub(crate) snapshot_requests: AtomicU64,
    /// Datagrams that did not decode.
    pub malformed: AtomicU64,
    /// Datagrams not sent by the kernel, ignored.
    pub foreign: AtomicU64,
    /// Events published.
    pub published: AtomicU64,
    /// `CLOCK_MONOTONIC` time before the reader's last receive that found the socket
    /// drained: every message sent before it is in the queue (or was dropped and
    /// counted). The processor waits on it to confirm exec reads (processor.rs).
    pub(crate) drained_ns: AtomicU64,
    /// Set while the processor holds an exec read awaiting confirmation, so the
    /// reader looks at the socket often (and `drained_ns` moves) while idle.
    pub(crate) confirming: std::sync::atomic::AtomicBool,
}

/// A plain copy of [`Stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[allow(missing_docs)]
pub struct StatsSnapshot {
    pub received: u64,
    pub lost_kernel: u64,
    pub overruns: u64,
    pub lost_queue: u64,
    pub resyncs: u64,
    pub snapshots: u64,
    pub malformed: u64,
    pub foreign: u64,
    pub published: u64,
}

impl Stats {
    /// A copy of the counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            received: l(&self.received),
            lost_kernel: l(&self.lost_kernel),
            overruns: l(&self.overruns),
            lost_queue: l(&self.lost_queue),
            resyncs: l(&self.resyncs),
            snapshots: l(&self.snapshots),
            malformed: l(&self.malformed),
            foreign: l(&self.foreign),
            published: l(&self.published),
        }
    }
}

/// Configures and starts a [`Sensor`].
#[derive(Clone, Debug)]
pub struct SensorBuilder {
    rcvbuf: usize,
    queue: usize,
    proc_root: PathBuf,
    paused: bool,
    ack_timeout: Duration,
}

impl Default for SensorBuilder {
    fn default() -> Self {
        SensorBuilder::new()
    }
}

impl SensorBuilder {
    /// Defaults: 64 MiB receive buffer, 262,144-message queue, `/proc`.
    pub fn new() -> SensorBuilder {
        SensorBuilder {
            rcvbuf: DEFAULT_RCVBUF,
            queue: DEFAULT_QUEUE,
            proc_root: PathBuf::from("/proc"),
            paused: false,
            ack_timeout: Duration::from_secs(3),
        }
    }

    /// The socket receive buffer to force, in bytes (the kernel doubles it).
    pub fn rcvbuf(mut self, bytes: usize) -> Self {
        self.rcvbuf = bytes;
        self
    }

    /// The capacity of the queue between reader and processor, in messages.
    pub fn queue_capacity(mut self, messages: usize) -> Self {
        self.queue = messages.max(1);
        self
    }

    /// Where `/proc` is.
    pub fn proc_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.proc_root = root.into();
        self
    }

    /// Start with the reader held back until [`Sensor::resume_reader`]: the
    /// subscription is made and the kernel queues events, but nothing drains them.
    /// For tests and benchmarks that need the buffer to fill.
    pub fn paused(mut self, paused: bool) -> Self {
        self.paused = paused;
        self
    }

    /// Subscribes to the connector and starts the reader and processor threads,
    /// which publish on `bus` until [`Sensor::stop`]. Subscribe to `bus` before
    /// calling this to see every event.
    pub fn start(self, bus: Bus<Event>) -> Result<Sensor, Error> {
        if sys::in_initial_net_namespace(&self.proc_root) == Some(false) {
            return Err(Error::NotInitialNetNamespace);
        }
        let procfs = ProcFs::new(&self.proc_root);
        let boot_id = procfs.boot_id().map_err(|source| Error::Proc {
            path: self.proc_root.join("sys/kernel/random/boot_id"),
            source,
        })?;
        let sock = ConnectorSocket::open()?;
        // Subscribe with at least 1 MiB, so a busy machine cannot crowd out the
        // acknowledgement; a smaller configured buffer is applied afterwards.
        const HANDSHAKE_RCVBUF: usize = 1 << 20;
        if self.rcvbuf > 0 {
            sock.set_rcvbuf_force(self.rcvbuf.max(HANDSHAKE_RCVBUF))
                .map_err(|e| match e.errno() {
                    Some(libc::EPERM) => Error::NotPermitted(e),
                    _ => Error::Syscall(e),
                })?;
        }
        sock.set_recv_timeout(Duration::from_millis(100))?;

        let stats = Arc::new(Stats::default());
        // Unbounded, limited by the reader: a bounded channel would allocate
        // (and touch) all of its 2^18 slots at start, 19 MB held for storms.
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut state = ReaderState::new(tx, Arc::clone(&stats));
        state.limit(self.queue);
        state.read_exec_details(procfs.clone());
        let tag = next_tag();
        subscribe(&sock, tag, self.ack_timeout, &mut state)?;
        if self.rcvbuf > 0 && self.rcvbuf < HANDSHAKE_RCVBUF {
            sock.set_rcvbuf_force(self.rcvbuf)?;
        }
        let rcvbuf = sock.rcvbuf()?;

        let sock = Arc::new(sock);
        let stop = Arc::new(AtomicBool::new(false));
        let gate = Arc::new(Gate::new(!self.paused));
        let processor = processor::Processor::new(rx, bus, Arc::clone(&stats), procfs, boot_id);
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let processor = std::thread::Builder::new()
            .name("aether-proc".into())
            .spawn(move || processor.run(ready_tx))
            .map_err(|source| Error::Thread {
                name: "processor",
                source,
            })?;
        let reader = {
            let (sock, stop, gate) = (Arc::clone(&sock), Arc::clone(&stop), Arc::clone(&gate));
            std::thread::Builder::new()
                .name("aether-reader".into())
                .spawn(move || reader::run(sock, state, stop, gate))
        };
        let reader = match reader {
            Ok(r) => r,
            Err(source) => {
                // Dropping the reader state closed the queue; the processor ends.
                let _ = processor.join();
                return Err(Error::Thread {
                    name: "reader",
                    source,
                });
            }
        };
        // When start returns, the table holds every process that existed before.
        let _ = ready_rx.recv();
        Ok(Sensor {
            stats,
            stop,
            gate,
            sock,
            tag,
            rcvbuf,
            reader: Some(reader),
            processor: Some(processor),
        })
    }
}

fn next_tag() -> u32 {
    static COUNTER: AtomicU32 = AtomicU32::new(1);
    // Distinct per socket in this process, and unlikely to match another process's.
    (sys::getpid() << 12) ^ COUNTER.fetch_add(2, Ordering::Relaxed).wrapping_mul(0x9e37)
}

/// Sends the listen request and waits for its acknowledgement, handing every
/// message that arrives meanwhile to the reader's state so none is lost.
fn subscribe(
    sock: &ConnectorSocket,
    tag: u32,
    timeout: Duration,
    state: &mut ReaderState,
) -> Result<(), Error> {
    sock.send_op(PROC_CN_MCAST_LISTEN, tag)
        .map_err(|e| match e.errno() {
            Some(libc::EPERM) => Error::NotPermitted(e),
            // No connector kernel socket to send to: not the initial namespace.
            Some(libc::ECONNREFUSED) => Error::NotInitialNetNamespace,
            _ => Error::Syscall(e),
        })?;
    let deadline = Instant::now() + timeout;
    let mut batch = RecvBatch::new(16);
    let mut acked: Option<u32> = None;
    while acked.is_none() && Instant::now() < deadline {
        match sock.recv_batch(&mut batch) {
            Ok(_) => {
                for d in batch.datagrams() {
                    if d.sender == 0 {
                        for m in decode::decode_datagram(d.bytes).flatten() {
                            if let Body::Ack { err } = m.body
                                && m.ack == tag.wrapping_add(1)
                            {
                                acked = Some(err);
                            }
                        }
                    }
                    state.on_datagram(d.bytes, d.sender, d.truncated);
                }
            }
            Err(e) => match e.errno() {
                Some(libc::ENOBUFS) => {
                    state.on_overrun();
                }
                Some(libc::EAGAIN) | Some(libc::EINTR) => {}
                _ => return Err(Error::Syscall(e)),
            },
        }
    }
    match acked {
        Some(0) => Ok(()),
        Some(err) if err == libc::EPERM as u32 => Err(Error::NotPermitted(SyscallError {
            call: "PROC_CN_MCAST_LISTEN",
            io_error: std::io::Error::from_raw_os_error(libc::EPERM),
        })),
        Some(err) => Err(Error::Refused(err)),
        None => Err(Error::NoAck(timeout)),
    }
}

/// Asks a running sensor for snapshots ([`Sensor::request_snapshot`]); cheap to
/// clone, for any thread. After the sensor stopped, requests do nothing.
#[derive(Clone, Debug)]
pub struct SnapshotRequester {
    stats: Arc<Stats>,
}

impl SnapshotRequester {
    /// See [`Sensor::request_snapshot`].
    pub fn request(&self) {
        self.stats.snapshot_requests.fetch_add(1, Ordering::Release);
    }
}

/// A running sensor. Dropping it stops it, like [`Sensor::stop`].
pub struct Sensor {
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    gate: Arc<Gate>,
    sock: Arc<ConnectorSocket>,
    tag: u32,
    rcvbuf: usize,
    reader: Option<JoinHandle<()>>,
    processor: Option<JoinHandle<()>>,
}

impl Sensor {
    /// The counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The receive buffer the kernel granted, in bytes (twice the requested size:
    /// the kernel counts its bookkeeping in it).
    pub fn rcvbuf(&self) -> usize {
        self.rcvbuf
    }

    /// Asks for a snapshot of every running process, published on the bus in
    /// order with the other events: a `snapshot_begin` event, one
    /// `process_snapshot` per process in ascending pid order, a `snapshot_end`,
    /// and nothing else between them. The snapshot is the sensor's own table
    /// after every event numbered before it (after a loss, once the resync that
    /// follows it has repaired the table), so a consumer that lost track, after
    /// a restart or after falling behind the bus, gets the state the events that
    /// follow continue from. Requests made before a snapshot begins are served
    /// by that one snapshot. Never waits; the snapshot follows within the
    /// processor's next turn (at most about 200 ms when idle).
    pub fn request_snapshot(&self) {
        self.snapshots().request();
    }

    /// A handle to [`Sensor::request_snapshot`] from another thread.
    pub fn snapshots(&self) -> SnapshotRequester {
        SnapshotRequester {
            stats: Arc::clone(&self.stats),
        }
    }

    /// Lets a reader started [`paused`](SensorBuilder::paused) drain the socket.
    pub fn resume_reader(&self) {
        self.gate.open();
    }

    /// Changes the socket receive buffer (bytes, forced past `rmem_max`); returns
    /// the size the kernel granted (twice the request: it counts its bookkeeping).
    pub fn set_rcvbuf(&mut self, bytes: usize) -> Result<usize, SyscallError> {
        self.sock.set_rcvbuf_force(bytes)?;
        self.rcvbuf = self.sock.rcvbuf()?;
        Ok(self.rcvbuf)
    }

    /// Stops reading, lets the processor publish what was already read, closes the
    /// bus and returns the final counters.
    pub fn stop(mut self) -> StatsSnapshot {
        self.shutdown();
        self.stats.snapshot()
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.gate.open();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        if let Some(p) = self.processor.take() {
            let _ = p.join();
        }
        // Old kernels count listeners and keep sending until told to stop.
        let _ = self.sock.send_op(PROC_CN_MCAST_IGNORE, self.tag);
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        if self.reader.is_some() || self.processor.is_some() {
            self.shutdown();
        }
    }
}
