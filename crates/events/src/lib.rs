/*!
aether's process events: what happened, to which process, and how to hear about it.

This crate is the vocabulary shared by the kernel sensor (`aether-sensor`), which
produces events, and by everything that consumes them: the monitor command, the
scanner's real-time protection, the daemon and its IPC. It makes no system calls.

Brief overview:
- [`Event`]: one numbered event. Its [`EventKind`] says what happened ([`Fork`],
  [`Exec`], [`Exit`], ...) or what the sensor knows it missed ([`Loss`],
  [`ProcessFound`], [`ProcessVanished`]).
- [`ProcessKey`]: (boot id, pid, start time), which names one process and never
  another, even after its PID is reused.
- [`Bus`] and [`Subscriber`]: a broadcast of events to any number of subscribers.
  A subscriber that falls behind is told exactly how many events it missed
  ([`error::RecvError::Lagged`]) and stays subscribed; it never slows the publisher.

Sequence numbers ([`Event::seq`]) are aether's own: every event the sensor publishes
gets the next number, with no gaps, so a consumer that sees `seq` jump knows it lost
events on its side, and a consumer that sees no jump knows that everything the sensor
knew about reached it (what the sensor itself missed arrives as [`Loss`] events).

```
use aether_events::{Bus, error::RecvError};

let bus: Bus<u32> = Bus::new(2);
let mut sub = bus.subscribe();
for n in 0..5 {
    bus.publish(n);
}
// Capacity 2: values 0, 1 and 2 were overwritten before `sub` read them.
assert_eq!(sub.recv(), Err(RecvError::Lagged(3)));
assert_eq!(*sub.recv().unwrap(), 3);
assert_eq!(*sub.recv().unwrap(), 4);
```
*/
#![deny(missing_docs)]

mod bus;
mod event;

pub use bus::{Bus, Subscriber, error};
pub use event::{
    BootId, Comm, Coredump, Event, EventKind, Exec, Exit, Fork, ForkKind, IdChange, Loss,
    LossCause, Malformed, MissingReason, ProcessDetails, ProcessFound, ProcessKey, ProcessSnapshot,
    ProcessVanished, Ptrace, Resync, Sid, SnapshotBegin, SnapshotEnd, Task,
};
