/*!
aether's event-driven IPC: how aetherd's parts and clients exchange events, reliably
and only with whom they should.

The design answers the failures of the system it replaces (UDP datagrams on loopback
carrying .NET BinaryFormatter payloads): datagrams were dropped silently, anyone could
forge them, and the decoder built arbitrary types from the wire. Here:

- One schema-defined, versioned encoding: protobuf messages declared in
  `proto/aether.proto` ([`msg`]), decoded only into those types; unknown fields are
  skipped, so newer peers interoperate. Frames carry a magic, a version and a length
  checked against a limit before anything is read ([`frame`]).
- The Unix-socket transport ([`Server`], [`Client`]) knows each peer from the kernel
  (`SO_PEERCRED`) and asks an [`Authorize`] hook: by default root and one group may
  connect, only root may send control commands.
- Scans without trust: a client passes an open descriptor (`SCM_RIGHTS`) with
  each [`msg::ScanFd`] and the server's [`ScanHandler`] scans exactly that file,
  so a root daemon never reads for a client what the client could not open
  itself. Requests are pipelined up to a per-connection bound, each answered
  once ([`ScanClient`] is the blocking client side).
- Subscriptions start at a cursor: records are replayed from the journal ([`Replay`])
  and continue live from the [`Hub`] with no gap and no duplicate. A subscriber that
  falls too far behind is told ([`msg::Lagged`]) and catches up from the journal on its
  own; the publisher never waits.
- Live records for local subscribers through one shared-memory ring
  ([`Subscription`]): a sealed, read-only `memfd` the publisher writes each
  record into once, instead of copying it through the kernel once per
  subscriber; a subscriber overrun in it is told it lagged and replays from
  the journal, as on the socket.
- The UDP transport ([`udp`]) is kept for processes that speak datagrams, with what
  it lacked: an HMAC-SHA256 on every datagram under a per-install key from a root-only
  file, per-stream sequence numbers with replay rejection, counters for everything
  rejected, and NACKs that refill gaps from the journal. It binds loopback only unless
  told otherwise.

`docs/protocol.md` describes the protocol well enough to write a client in another
language.
*/
#![deny(missing_docs)]

mod auth;
mod client;
mod fdpass;
pub mod frame;
pub mod msg;
mod ring;
mod scan_client;
mod server;
mod subscription;
#[cfg(test)]
mod test_rng;
pub mod udp;

pub use auth::{Authorize, GroupPolicy, PeerCred};
pub use client::{Client, ClientError};
pub use frame::{Decoder, FrameError, RecordRef};
pub use ring::RingError;
#[doc(hidden)]
pub use ring::read_arbitrary_ring;
pub use scan_client::{ScanClient, ScanReceiver, ScanSender};
pub use server::{
    ControlHandler, DEFAULT_RING_CAPACITY, Hub, MAX_BATCH, RefusalLog, Refused, Replay, RingStatus,
    ScanFuture, ScanHandler, Server, ServerConfig,
};
pub use subscription::{Delivery, Subscription};
