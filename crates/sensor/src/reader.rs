//! The reader thread: it only drains the socket into the queue.
//!
//! Anything slow here lets the kernel's buffer fill, so the reader does no `/proc`
//! reads, no allocation per message and no locking beyond the queue. It decodes
//! (a few loads per message) because it is the only place that sees every message
//! the kernel delivered, in order: sequence gaps counted here are exactly the kernel's
//! loss, and items it must drop because the queue is full are counted apart as the
//! queue's loss.
//!
//! One exception, made on purpose: when the reader is caught up (its last receive
//! did not fill the batch), it reads `/proc` for exec events itself, right away. An
//! exec event carries only a PID and a short-lived program is gone within a
//! millisecond; every hand-off between threads costs that much on a loaded machine,
//! and the spawn-storm benchmark showed most details lost when only the processor
//! read them. The read costs tens of microseconds, and it is skipped whenever a
//! receive comes back full, i.e. whenever the socket has a backlog: then draining
//! wins and the processor reads later, as it always can.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};

use crate::Stats;
use crate::decode::{self, Body, Message};
use crate::procfs::{ProcFs, Read, StartCheck};
use crate::seq::{Observation, SeqTracker};
use crate::sys::{ConnectorSocket, RecvBatch};

/// What goes from the reader to the processor.
#[derive(Debug)]
pub(crate) enum Item {
    /// A kernel message.
    Msg(Message),
    /// An exec message with what the reader read from `/proc` on arrival.
    ExecRead(Message, Box<Read>),
    /// `count` messages from `cpu` were lost in the kernel just before the next one.
    Gap { cpu: u32, count: u64 },
    /// The kernel reported `ENOBUFS`.
    Overrun,
    /// Bytes that did not decode.
    Malformed(String),
    /// The queue was full for a while: this is what was dropped or summarized.
    Backlog(Backlog),
    /// The socket failed; the reader stopped.
    Failed(String),
}

/// What the reader had to hold back while the queue was full.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Backlog {
    /// Kernel messages dropped because the queue was full.
    pub dropped: u64,
    /// Kernel sequence gaps seen meanwhile, per CPU.
    pub gaps: Vec<(u32, u64)>,
    /// `ENOBUFS` reports seen meanwhile.
    pub overruns: u64,
    /// Malformed datagrams seen meanwhile.
    pub malformed: u64,
}

/// The reader's logic without the socket, so it can be tested with a queue alone.
pub(crate) struct ReaderState {
    tracker: SeqTracker,
    backlog: Option<Backlog>,
    tx: Sender<Item>,
    /// Items the queue may hold: the channel's own bound, or the one given to
    /// [`ReaderState::limit`] for an unbounded channel (which allocates as it
    /// fills instead of all at once).
    cap: usize,
    stats: Arc<Stats>,
    gone: bool,
    /// Reads exec details on arrival when set (see the module doc).
    early: Option<ProcFs>,
    /// Whether to read now: the last receive left no backlog.
    read_now: bool,
    /// Exec messages of the current batch: (message index, process id).
    batch_execs: Vec<(usize, u32)>,
    /// Index of the message being handled in the current batch.
    index: usize,
}

impl ReaderState {
    pub(crate) fn new(tx: Sender<Item>, stats: Arc<Stats>) -> ReaderState {
        ReaderState {
            tracker: SeqTracker::new(),
            backlog: None,
            cap: tx.capacity().unwrap_or(usize::MAX),
            tx,
            stats,
            gone: false,
            early: None,
            read_now: false,
            batch_execs: Vec::new(),
            index: 0,
        }
    }

    /// Holds at most `cap` items in the queue (the reader is its only sender,
    /// so the count it sees only falls behind its back).
    pub(crate) fn limit(&mut self, cap: usize) {
        self.cap = self.cap.min(cap.max(1));
    }

    /// Sends unless the queue holds `cap` items.
    fn try_send(&self, item: Item) -> Result<(), TrySendError<Item>> {
        if self.tx.len() >= self.cap {
            return Err(TrySendError::Full(item));
        }
        self.tx.try_send(item)
    }

    /// Reads exec details on arrival from this `/proc` when caught up.
    pub(crate) fn read_exec_details(&mut self, procfs: ProcFs) {
        self.early = Some(procfs);
    }

    /// Prepares for a batch of datagrams: notes its exec messages, so a read for one exec is
    /// skipped when a later exec of the same process is already here (the read
    /// could show that later program).
    pub(crate) fn begin_batch<'a>(
        &mut self,
        datagrams: impl Iterator<Item = &'a [u8]>,
        full: bool,
    ) {
        self.read_now = self.early.is_some() && !full;
        self.batch_execs.clear();
        self.index = 0;
        if !self.read_now {
            return;
        }
        let mut i = 0;
        for d in datagrams {
            for m in decode::decode_datagram(d) {
                if let Ok(m) = m
                    && let Some(tgid) = image_change(&m.body)
                {
                    self.batch_execs.push((i, tgid));
                }
                i += 1;
            }
        }
    }

    fn early_read(&self, m: &Message) -> Option<Box<Read>> {
        let Body::Exec { tgid, .. } = m.body else {
            return None;
        };
        let procfs = self.early.as_ref().filter(|_| self.read_now)?;
        let later = self
            .batch_execs
            .iter()
            .any(|(i, t)| *i > self.index && *t == tgid);
        if later {
            // Leave it to the processor, which marks it superseded.
            return None;
        }
        let bound = procfs.tick_of(m.timestamp_ns).saturating_add(1);
        Some(Box::new(procfs.read(tgid, StartCheck::NotAfter(bound))))
    }

    /// Sends `item`, or counts it into the backlog if the queue is full. Returns
    /// false when the processor is gone.
    fn push(&mut self, item: Item) -> bool {
        if !self.flush() {
            self.hold(item);
            return !self.gone;
        }
        match self.try_send(item) {
            Ok(()) => true,
            Err(TrySendError::Full(item)) => {
                self.hold(item);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    fn hold(&mut self, item: Item) {
        let b = self.backlog.get_or_insert_with(Backlog::default);
        match item {
            Item::Msg(_) | Item::ExecRead(..) => {
                b.dropped += 1;
                self.stats.lost_queue.fetch_add(1, Ordering::Relaxed);
            }
            Item::Gap { cpu, count } => match b.gaps.iter_mut().find(|(c, _)| *c == cpu) {
                Some((_, n)) => *n += count,
                None => b.gaps.push((cpu, count)),
            },
            Item::Overrun => b.overruns += 1,
            Item::Malformed(_) => b.malformed += 1,
            Item::Backlog(inner) => {
                b.dropped += inner.dropped;
                b.overruns += inner.overruns;
                b.malformed += inner.malformed;
                b.gaps.extend(inner.gaps);
            }
            // Never dropped: sent blocking by `fail`.
            Item::Failed(_) => {}
        }
    }

    /// Tries to deliver the backlog. True when there is none left.
    pub(crate) fn flush(&mut self) -> bool {
        let Some(b) = self.backlog.take() else {
            return true;
        };
        match self.try_send(Item::Backlog(b)) {
            Ok(()) => true,
            Err(TrySendError::Full(Item::Backlog(b))) => {
                self.backlog = Some(b);
                false
            }
            Err(_) => {
                self.gone = true;
                false
            }
        }
    }

    /// Handles one datagram. Returns false when the processor is gone.
    pub(crate) fn on_datagram(&mut self, bytes: &[u8], sender: u32, truncated: bool) -> bool {
        if sender != 0 {
            // Only the kernel speaks for the connector; anything else is ignored
            // (and counted), never decoded into an event.
            self.stats.foreign.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        if truncated {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return self.push(Item::Malformed(format!(
                "datagram of {} bytes was cut by the receive buffer",
                bytes.len()
            )));
        }
        for r in decode::decode_datagram(bytes) {
            let ok = match r {
                Ok(m) => {
                    self.stats.received.fetch_add(1, Ordering::Relaxed);
                    if let Observation::Gap(n) = self.tracker.observe(m.cpu, m.seq) {
                        self.stats.lost_kernel.fetch_add(n, Ordering::Relaxed);
                        if !self.push(Item::Gap {
                            cpu: m.cpu,
                            count: n,
                        }) {
                            return false;
                        }
                    }
                    let item = match self.early_read(&m) {
                        Some(read) => Item::ExecRead(m, read),
                        None => Item::Msg(m),
                    };
                    self.index += 1;
                    self.push(item)
                }
                Err(decode::DecodeError::Overrun { .. }) => self.on_overrun(),
                Err(e) => {
                    self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                    self.push(Item::Malformed(e.to_string()))
                }
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// The kernel said `ENOBUFS`. Returns false when the processor is gone.
    pub(crate) fn on_overrun(&mut self) -> bool {
        self.stats.overruns.fetch_add(1, Ordering::Relaxed);
        self.push(Item::Overrun)
    }

    /// Reports a fatal socket error, waiting for room: it is the last item.
    fn fail(&mut self, why: String) {
        self.flush();
        let _ = self
            .tx
            .send_timeout(Item::Failed(why), Duration::from_secs(5));
    }
}

/// The process whose program image a message says changed: an exec's. (An exec
/// sends no comm event; renames come from `prctl` and `/proc/<pid>/comm`.)
pub(crate) fn image_change(body: &Body) -> Option<u32> {
    match *body {
        Body::Exec { tgid, .. } => Some(tgid),
        _ => None,
    }
}

/// Lets a test or benchmark hold the reader back so that the kernel buffer fills.
#[derive(Default)]
pub(crate) struct Gate {
    open: std::sync::Mutex<bool>,
    wake: std::sync::Condvar,
}

impl Gate {
    pub(crate) fn new(open: bool) -> Gate {
        Gate {
            open: std::sync::Mutex::new(open),
            wake: std::sync::Condvar::new(),
        }
    }

    pub(crate) fn open(&self) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake.notify_all();
    }

    /// Waits up to `limit` for the gate to open; true if it is open.
    fn wait(&self, limit: Duration) -> bool {
        let g = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if *g {
            return true;
        }
        let (g, _) = self
            .wake
            .wait_timeout(g, limit)
            .unwrap_or_else(|p| p.into_inner());
        *g
    }
}

/// How long the reader waits for the socket when it is empty: briefly while the
/// processor waits to confirm an exec read, else long enough to stay idle.
const CONFIRM_POLL: Duration = Duration::from_millis(1);
const IDLE_POLL: Duration = Duration::from_millis(100);

/// The reader thread's body.
pub(crate) fn run(
    sock: Arc<ConnectorSocket>,
    mut state: ReaderState,
    stop: Arc<AtomicBool>,
    gate: Arc<Gate>,
) {
    let mut batch = RecvBatch::new(64);
    while !stop.load(Ordering::Acquire) {
        if !gate.wait(Duration::from_millis(100)) {
            continue;
        }
        // Never block in a receive: finding the socket empty tells the processor
        // that every message sent before `before` is queued (it confirms exec reads
        // with that), so when nothing is there the reader waits for the socket to
        // become readable, briefly while the processor has a read to confirm.
        let before = crate::sys::monotonic_ns();
        let got = match sock.try_recv_batch(&mut batch) {
            Err(e) if e.errno() == Some(libc::EAGAIN) => {
                state.flush();
                state.stats.drained_ns.fetch_max(before, Ordering::Release);
                let wait = if state.stats.confirming.load(Ordering::Acquire) {
                    CONFIRM_POLL
                } else {
                    IDLE_POLL
                };
                if let Err(e) = sock.wait_readable(wait) {
                    state.fail(e.to_string());
                    return;
                }
                continue;
            }
            other => other,
        };
        match got {
            Ok(n) => {
                let full = n == batch.capacity();
                state.begin_batch(batch.datagrams().map(|d| d.bytes), full);
                for d in batch.datagrams() {
                    if !state.on_datagram(d.bytes, d.sender, d.truncated) {
                        return;
                    }
                }
            }
            Err(e) => match e.errno() {
                Some(libc::ENOBUFS) => {
                    if !state.on_overrun() {
                        return;
                    }
                }
                Some(libc::EAGAIN) | Some(libc::EINTR) => {
                    state.flush();
                }
                _ => {
                    state.fail(e.to_string());
                    return;
                }
            },
        }
    }
    state.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{encode, encode_event, what};

    fn exec_msg(cpu: u32, seq: u32, pid: u32) -> Vec<u8> {
        encode(seq, 0, &encode_event(what::EXEC, cpu, 0, &[pid, pid]))
    }

    #[test]
    fn kernel_gaps_become_items_with_exact_counts() {
        let (tx, rx) = crossbeam_channel::bounded(16);
        let stats = Arc::new(Stats::default());
        let mut r = ReaderState::new(tx, stats.clone());
        r.on_datagram(&exec_msg(0, 1, 5), 0, false);
        r.on_datagram(&exec_msg(0, 5, 6), 0, false);
        let items: Vec<_> = rx.try_iter().collect();
        assert!(matches!(items[0], Item::Msg(_)));
        assert!(matches!(items[1], Item::Gap { cpu: 0, count: 3 }));
        assert!(matches!(items[2], Item::Msg(_)));
        assert_eq!(stats.lost_kernel.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_full_queue_drops_with_an_exact_count_and_keeps_gaps() {
        let (tx, rx) = crossbeam_channel::bounded(2);
        let stats = Arc::new(Stats::default());
        let mut r = ReaderState::new(tx, stats.clone());
        for seq in 0..10 {
            r.on_datagram(&exec_msg(0, seq, 5), 0, false);
        }
        r.on_datagram(&exec_msg(1, 0, 5), 0, false);
        r.on_datagram(&exec_msg(1, 4, 5), 0, false); // 3 lost in the kernel meanwhile
        assert_eq!(rx.try_iter().count(), 2);
        assert!(r.flush());
        match rx.try_recv().unwrap() {
            Item::Backlog(b) => {
                assert_eq!(b.dropped, 10);
                assert_eq!(b.gaps, vec![(1, 3)]);
            }
            other => panic!("expected a backlog, got {other:?}"),
        }
        assert_eq!(stats.lost_queue.load(Ordering::Relaxed), 10);
        assert_eq!(stats.lost_kernel.load(Ordering::Relaxed), 3);
        assert_eq!(stats.received.load(Ordering::Relaxed), 12);
    }

    #[test]
    fn foreign_senders_are_ignored() {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let stats = Arc::new(Stats::default());
        let mut r = ReaderState::new(tx, stats.clone());
        r.on_datagram(&exec_msg(0, 1, 5), 4242, false);
        assert_eq!(rx.try_iter().count(), 0);
        assert_eq!(stats.foreign.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn garbage_becomes_a_malformed_item() {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let stats = Arc::new(Stats::default());
        let mut r = ReaderState::new(tx, stats);
        r.on_datagram(&[1, 2, 3], 0, false);
        assert!(matches!(rx.try_recv().unwrap(), Item::Malformed(m) if m.contains("truncated")));
    }
}
