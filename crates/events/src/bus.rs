//! A broadcast bus: one publisher side, any number of subscribers, each reading every
//! value at its own pace.
//!
//! Values are kept in a ring of fixed capacity. [`Bus::publish`] never waits for a
//! subscriber: it stores the value, overwriting the oldest once the ring is full, and
//! wakes whoever waits. This is what keeps the kernel reader's pace independent of the
//! slowest consumer.
//!
//! ## Lagging
//!
//! A subscriber whose next value was overwritten gets
//! [`RecvError::Lagged(n)`](error::RecvError::Lagged) from its next receive, where `n`
//! is exactly the number of values it missed. It stays subscribed, its cursor moved
//! to the oldest value still held, and the following receive returns that value. The
//! caller decides whether to go on or give up.
//!
//! ## Closing
//!
//! When [`Bus::close`] is called, or the last [`Bus`] handle is dropped, subscribers
//! first receive every value still held for them and then
//! [`RecvError::Closed`](error::RecvError::Closed).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use error::{RecvError, RecvTimeoutError, TryRecvError};

/// Errors from receiving. Each variant's doc says what happens next.
pub mod error {
    use std::fmt;

    /// Why [`Subscriber::recv`](super::Subscriber::recv) returned no value.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum RecvError {
        /// The subscriber fell behind and this many values were overwritten before it
        /// read them. It is still subscribed; the next receive returns the oldest
        /// value still held.
        Lagged(u64),
        /// The bus is closed and every value was received. Nothing more will come.
        Closed,
    }

    /// Why [`Subscriber::try_recv`](super::Subscriber::try_recv) returned no value.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum TryRecvError {
        /// No value yet; try again later.
        Empty,
        /// As [`RecvError::Lagged`].
        Lagged(u64),
        /// As [`RecvError::Closed`].
        Closed,
    }

    /// Why [`Subscriber::recv_timeout`](super::Subscriber::recv_timeout) returned no value.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum RecvTimeoutError {
        /// No value arrived in time; the subscriber is unchanged.
        Timeout,
        /// As [`RecvError::Lagged`].
        Lagged(u64),
        /// As [`RecvError::Closed`].
        Closed,
    }

    impl fmt::Display for RecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                RecvError::Lagged(n) => write!(f, "subscriber lagged and missed {n} values"),
                RecvError::Closed => f.write_str("bus closed"),
            }
        }
    }

    impl fmt::Display for TryRecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                TryRecvError::Empty => f.write_str("no value yet"),
                TryRecvError::Lagged(n) => write!(f, "subscriber lagged and missed {n} values"),
                TryRecvError::Closed => f.write_str("bus closed"),
            }
        }
    }

    impl fmt::Display for RecvTimeoutError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                RecvTimeoutError::Timeout => f.write_str("timed out"),
                RecvTimeoutError::Lagged(n) => {
                    write!(f, "subscriber lagged and missed {n} values")
                }
                RecvTimeoutError::Closed => f.write_str("bus closed"),
            }
        }
    }

    impl std::error::Error for RecvError {}
    impl std::error::Error for TryRecvError {}
    impl std::error::Error for RecvTimeoutError {}
}

struct Ring<T> {
    values: VecDeque<Arc<T>>,
    /// Position the next published value will get; the oldest held value is at
    /// `next - values.len()`.
    next: u64,
    closed: bool,
    /// Subscribers blocked in a receive: the publisher wakes them only if any.
    waiting: usize,
}

struct Shared<T> {
    ring: Mutex<Ring<T>>,
    wake: Condvar,
    capacity: usize,
    publishers: AtomicUsize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, Ring<T>> {
        // A panic while holding the lock cannot leave the ring half-updated (every
        // update is a push and a counter increment), so a poisoned lock is still usable.
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The publishing side of a broadcast. Clone it to publish from several places; the
/// bus closes when the last clone is dropped or [`Bus::close`] is called.
pub struct Bus<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Bus<T> {
    /// A bus that holds the last `capacity` values (at least 1) for slow subscribers.
    pub fn new(capacity: usize) -> Bus<T> {
        let capacity = capacity.max(1);
        Bus {
            shared: Arc::new(Shared {
                ring: Mutex::new(Ring {
                    values: VecDeque::with_capacity(capacity.min(1 << 16)),
                    next: 0,
                    closed: false,
                    waiting: 0,
                }),
                wake: Condvar::new(),
                capacity,
                publishers: AtomicUsize::new(1),
            }),
        }
    }

    /// A new subscriber that will receive every value published from now on.
    pub fn subscribe(&self) -> Subscriber<T> {
        let next = self.shared.lock().next;
        Subscriber {
            shared: Arc::clone(&self.shared),
            next,
        }
    }

    /// Stores `value` for every subscriber and wakes them. Never waits for one.
    /// Returns the value's position (0 for the first value published).
    pub fn publish(&self, value: T) -> u64 {
        let value = Arc::new(value);
        let (pos, waiting) = {
            let mut ring = self.shared.lock();
            if ring.values.len() == self.shared.capacity {
                ring.values.pop_front();
            }
            ring.values.push_back(value);
            ring.next += 1;
            (ring.next - 1, ring.waiting > 0)
        };
        if waiting {
            self.shared.wake.notify_all();
        }
        pos
    }

    /// Stores `value` like [`publish`](Self::publish) but wakes no one: for a
    /// publisher that emits in bursts and calls [`wake`](Self::wake) once per
    /// burst, sparing a context switch per value.
    pub fn publish_deferred(&self, value: T) -> u64 {
        let value = Arc::new(value);
        let mut ring = self.shared.lock();
        if ring.values.len() == self.shared.capacity {
            ring.values.pop_front();
        }
        ring.values.push_back(value);
        ring.next += 1;
        ring.next - 1
    }

    /// Wakes subscribers waiting for values (after
    /// [`publish_deferred`](Self::publish_deferred)).
    pub fn wake(&self) {
        if self.shared.lock().waiting > 0 {
            self.shared.wake.notify_all();
        }
    }

    /// Closes the bus: subscribers drain what is held, then get `Closed`.
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
    }

    /// How many values were published so far.
    pub fn published(&self) -> u64 {
        self.shared.lock().next
    }
}

impl<T> Clone for Bus<T> {
    fn clone(&self) -> Bus<T> {
        self.shared.publishers.fetch_add(1, Ordering::AcqRel);
        Bus {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for Bus<T> {
    fn drop(&mut self) {
        if self.shared.publishers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.close();
        }
    }
}

/// One subscriber's cursor into a [`Bus`].
pub struct Subscriber<T> {
    shared: Arc<Shared<T>>,
    next: u64,
}

enum Step<T> {
    Value(Arc<T>),
    Lagged(u64),
    Closed,
    Empty,
}

impl<T> Subscriber<T> {
    fn step(&mut self, ring: &Ring<T>) -> Step<T> {
        let oldest = ring.next - ring.values.len() as u64;
        if self.next < oldest {
            let missed = oldest - self.next;
            self.next = oldest;
            return Step::Lagged(missed);
        }
        if self.next < ring.next {
            let index = (self.next - oldest) as usize;
            if let Some(v) = ring.values.get(index) {
                self.next += 1;
                return Step::Value(Arc::clone(v));
            }
        }
        if ring.closed {
            Step::Closed
        } else {
            Step::Empty
        }
    }

    /// The next value, waiting for one if needed.
    pub fn recv(&mut self) -> Result<Arc<T>, RecvError> {
        let shared = Arc::clone(&self.shared);
        let mut ring = shared.lock();
        loop {
            match self.step(&ring) {
                Step::Value(v) => return Ok(v),
                Step::Lagged(n) => return Err(RecvError::Lagged(n)),
                Step::Closed => return Err(RecvError::Closed),
                Step::Empty => {
                    ring.waiting += 1;
                    ring = shared.wake.wait(ring).unwrap_or_else(|p| p.into_inner());
                    ring.waiting -= 1;
                }
            }
        }
    }

    /// The next value if one is ready.
    pub fn try_recv(&mut self) -> Result<Arc<T>, TryRecvError> {
        let shared = Arc::clone(&self.shared);
        let ring = shared.lock();
        match self.step(&ring) {
            Step::Value(v) => Ok(v),
            Step::Lagged(n) => Err(TryRecvError::Lagged(n)),
            Step::Closed => Err(TryRecvError::Closed),
            Step::Empty => Err(TryRecvError::Empty),
        }
    }

    /// The next value, waiting at most `timeout` for one.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Arc<T>, RecvTimeoutError> {
        let deadline = Instant::now() + timeout;
        let shared = Arc::clone(&self.shared);
        let mut ring = shared.lock();
        loop {
            match self.step(&ring) {
                Step::Value(v) => return Ok(v),
                Step::Lagged(n) => return Err(RecvTimeoutError::Lagged(n)),
                Step::Closed => return Err(RecvTimeoutError::Closed),
                Step::Empty => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(RecvTimeoutError::Timeout);
                    }
                    ring.waiting += 1;
                    ring = shared
                        .wake
                        .wait_timeout(ring, deadline - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                    ring.waiting -= 1;
                }
            }
        }
    }

    /// How many values are waiting for this subscriber (lagged ones included).
    pub fn pending(&self) -> u64 {
        let ring = self.shared.lock();
        ring.next.saturating_sub(self.next)
    }
}

impl<T> Clone for Subscriber<T> {
    /// Another subscriber at the same position.
    fn clone(&self) -> Subscriber<T> {
        Subscriber {
            shared: Arc::clone(&self.shared),
            next: self.next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn every_subscriber_sees_every_value_in_order() {
        let bus = Bus::new(16);
        let mut a = bus.subscribe();
        let mut b = bus.subscribe();
        for i in 0..10u32 {
            bus.publish(i);
        }
        for i in 0..10u32 {
            assert_eq!(*a.recv().unwrap(), i);
        }
        for i in 0..10u32 {
            assert_eq!(*b.recv().unwrap(), i);
        }
        assert_eq!(a.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn a_late_subscriber_sees_only_later_values() {
        let bus = Bus::new(16);
        bus.publish(1u8);
        let mut s = bus.subscribe();
        bus.publish(2u8);
        assert_eq!(*s.recv().unwrap(), 2);
    }

    #[test]
    fn lag_is_counted_exactly_and_the_subscriber_stays() {
        let bus = Bus::new(4);
        let mut slow = bus.subscribe();
        let mut fast = bus.subscribe();
        for i in 0..10u32 {
            bus.publish(i);
            assert_eq!(*fast.recv().unwrap(), i);
        }
        assert_eq!(slow.pending(), 10);
        assert_eq!(slow.recv(), Err(RecvError::Lagged(6)));
        for i in 6..10u32 {
            assert_eq!(*slow.recv().unwrap(), i);
        }
        bus.publish(10);
        assert_eq!(*slow.recv().unwrap(), 10);
        // A second lag is counted from where the subscriber is now.
        for i in 11..20u32 {
            bus.publish(i);
        }
        assert_eq!(slow.try_recv(), Err(TryRecvError::Lagged(5)));
        assert_eq!(*slow.try_recv().unwrap(), 16);
    }

    #[test]
    fn deferred_values_arrive_after_a_wake() {
        let bus = Bus::new(8);
        let mut s = bus.subscribe();
        let publisher = bus.clone();
        let t = thread::spawn(move || {
            publisher.publish_deferred(1u8);
            publisher.publish_deferred(2u8);
            publisher.wake();
        });
        assert_eq!(*s.recv().unwrap(), 1);
        assert_eq!(*s.recv().unwrap(), 2);
        t.join().unwrap();
    }

    #[test]
    fn close_drains_then_reports_closed() {
        let bus = Bus::new(4);
        let mut s = bus.subscribe();
        bus.publish(1u8);
        drop(bus);
        assert_eq!(*s.recv().unwrap(), 1);
        assert_eq!(s.recv(), Err(RecvError::Closed));
    }

    #[test]
    fn clones_keep_the_bus_open() {
        let bus = Bus::new(4);
        let second = bus.clone();
        let mut s = bus.subscribe();
        drop(bus);
        second.publish(3u8);
        assert_eq!(*s.recv().unwrap(), 3);
        assert_eq!(
            s.recv_timeout(Duration::from_millis(1)),
            Err(RecvTimeoutError::Timeout)
        );
        drop(second);
        assert_eq!(
            s.recv_timeout(Duration::from_secs(5)),
            Err(RecvTimeoutError::Closed)
        );
    }

    #[test]
    fn a_waiting_subscriber_is_woken_by_another_thread() {
        let bus = Bus::new(1024);
        let mut s = bus.subscribe();
        let publisher = thread::spawn(move || {
            for i in 0..1000u32 {
                bus.publish(i);
            }
        });
        let mut seen = 0u64;
        let mut lagged = 0u64;
        loop {
            match s.recv() {
                Ok(_) => seen += 1,
                Err(RecvError::Lagged(n)) => lagged += n,
                Err(RecvError::Closed) => break,
            }
        }
        publisher.join().unwrap();
        assert_eq!(seen + lagged, 1000);
    }

    #[test]
    fn lag_accounting_is_exact_under_concurrency() {
        let bus = Bus::new(8);
        let mut s = bus.subscribe();
        let publisher = thread::spawn(move || {
            for i in 0..20_000u32 {
                bus.publish(i);
            }
        });
        let mut expected = 0u32;
        loop {
            match s.recv() {
                Ok(v) => {
                    assert_eq!(*v, expected, "values arrive in order, after any lag");
                    expected += 1;
                }
                Err(RecvError::Lagged(n)) => expected += n as u32,
                Err(RecvError::Closed) => break,
            }
        }
        publisher.join().unwrap();
        assert_eq!(expected, 20_000);
    }
}
