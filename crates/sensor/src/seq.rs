//! Gaps in the connector's per-CPU sequence numbers: how kernel-side loss is counted.
//!
//! The kernel numbers process-connector messages with one counter per CPU
//! (`local_event.count` in `drivers/connector/cn_proc.c`), incremented for every
//! message it sends, under a lock that keeps one CPU's messages in order. A listener
//! that receives every message sees each CPU's numbers go up by one; a jump of `n + 1`
//! means `n` messages from that CPU never reached the socket, because its receive
//! buffer was full or the kernel could not allocate the message.
//!
//! ## Kernels 6.6 and later filter per listener
//!
//! Since 6.6 (`connector/cn_proc: Add filtering to fix some bugs`) a listener may ask
//! for a subset of events (`struct proc_input.event_type`), and `cn_filter()` drops
//! the others for that listener only. The counter is still shared and incremented for
//! every message, so a filtered listener sees gaps that are not loss. aether always
//! subscribes with the original 4-byte `PROC_CN_MCAST_LISTEN` request, which every
//! kernel accepts and which 6.6+ maps to `PROC_EVENT_ALL`; `cn_filter()` returns
//! "deliver" at once for `PROC_EVENT_ALL`, before looking at the event type. So this
//! socket is never filtered, every message the kernel sends reaches it unless it is
//! lost, and every gap it sees is loss. (Acknowledgements of other programs' listen
//! requests are multicast too and take numbers from the same counters; aether receives
//! and skips them, so they make no gaps either.) The `kernel` integration test checks
//! this on the running kernel: a second socket subscribed to exec events only sees
//! gaps where the `PROC_EVENT_ALL` socket sees none.

/// What one observed sequence number means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observation {
    /// The first number seen from this CPU: nothing to compare with.
    First,
    /// The next number: nothing lost.
    InOrder,
    /// This many messages from this CPU were lost just before this one.
    Gap(u64),
    /// The number went backwards or repeated. The kernel keeps one CPU's messages in
    /// order, so this is not loss; the tracker starts again from this number.
    Backwards,
}

/// Tracks the last sequence number seen from each CPU.
#[derive(Debug, Default)]
pub struct SeqTracker {
    last: Vec<Option<u32>>,
}

/// More CPUs than any machine aether runs on; a CPU number past this is treated as
/// garbage rather than grown into.
const MAX_CPUS: u32 = 1 << 14;

impl SeqTracker {
    /// An empty tracker.
    pub fn new() -> SeqTracker {
        SeqTracker::default()
    }

    /// Records `seq` from `cpu` and says what it means. Numbers wrap at `u32::MAX`.
    pub fn observe(&mut self, cpu: u32, seq: u32) -> Observation {
        if cpu >= MAX_CPUS {
            return Observation::First;
        }
        let i = cpu as usize;
        if self.last.len() <= i {
            self.last.resize(i + 1, None);
        }
        let Some(slot) = self.last.get_mut(i) else {
            return Observation::First;
        };
        let prev = slot.replace(seq);
        match prev {
            None => Observation::First,
            Some(p) => {
                let ahead = seq.wrapping_sub(p);
                if ahead == 1 {
                    Observation::InOrder
                } else if ahead == 0 || ahead > u32::MAX / 2 {
                    Observation::Backwards
                } else {
                    Observation::Gap(u64::from(ahead - 1))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_numbers_are_no_loss() {
        let mut t = SeqTracker::new();
        assert_eq!(t.observe(0, 5), Observation::First);
        assert_eq!(t.observe(0, 6), Observation::InOrder);
        assert_eq!(t.observe(1, 100), Observation::First);
        assert_eq!(t.observe(0, 7), Observation::InOrder);
        assert_eq!(t.observe(1, 101), Observation::InOrder);
    }

    #[test]
    fn gaps_are_counted_per_cpu() {
        let mut t = SeqTracker::new();
        t.observe(0, 1);
        t.observe(3, 1);
        assert_eq!(t.observe(0, 5), Observation::Gap(3));
        assert_eq!(t.observe(3, 2), Observation::InOrder);
    }

    #[test]
    fn wrap_around_is_in_order() {
        let mut t = SeqTracker::new();
        t.observe(0, u32::MAX);
        assert_eq!(t.observe(0, 0), Observation::InOrder);
        t.observe(1, u32::MAX - 1);
        assert_eq!(t.observe(1, 1), Observation::Gap(2));
    }

    #[test]
    fn backwards_and_repeats_are_not_loss() {
        let mut t = SeqTracker::new();
        t.observe(0, 10);
        assert_eq!(t.observe(0, 10), Observation::Backwards);
        assert_eq!(t.observe(0, 3), Observation::Backwards);
        assert_eq!(t.observe(0, 4), Observation::InOrder);
    }

    #[test]
    fn absurd_cpu_numbers_do_not_grow_the_table() {
        let mut t = SeqTracker::new();
        assert_eq!(t.observe(u32::MAX, 1), Observation::First);
        assert_eq!(t.observe(u32::MAX, 9), Observation::First);
        assert!(t.last.len() < 2);
    }
}
