//! The benchmarks' subscriber of either kind: a socket client decoding into a
//! reused frame, or a ring subscription lending records without a copy.

use aether_ipc::msg::Body;
use aether_ipc::{Client, Delivery, Subscription};

/// A subscriber of either kind.
pub enum Reader {
    Socket(Client),
    Ring(Box<Subscription>),
}

/// What a subscriber looks at.
pub enum Got {
    /// A record's number and time.
    Record(u64, u64),
    Lagged,
    Other(String),
}

impl Reader {
    /// The next delivery: the socket client decodes into a reused frame
    /// (`Client::next_frame_into`), the ring subscriber lends the record
    /// without copying it (`Subscription::next`).
    pub async fn next(&mut self, f: &mut aether_ipc::msg::Frame) -> Result<Got, String> {
        let body = match self {
            Reader::Socket(c) => {
                c.next_frame_into(f).await.map_err(|e| e.to_string())?;
                &f.body
            }
            Reader::Ring(s) => match s.next().await.map_err(|e| e.to_string())? {
                Delivery::Record(r) => return Ok(Got::Record(r.seq, r.time_ns)),
                Delivery::Other(f) => &f.body,
            },
        };
        Ok(match body {
            Some(Body::Record(r)) => Got::Record(r.seq, r.time_ns),
            Some(Body::Lagged(_)) => Got::Lagged,
            other => Got::Other(format!("{other:?}")),
        })
    }
}

/// Connects to `path` and subscribes from `since`, through the ring or not.
pub async fn subscribe(
    path: &std::path::Path,
    since: u64,
    ring: bool,
) -> Result<Reader, aether_ipc::ClientError> {
    let mut c = Client::connect(path).await?;
    if ring {
        return Ok(Reader::Ring(Box::new(c.subscribe_shared(since).await?)));
    }
    c.subscribe(since).await?;
    Ok(Reader::Socket(c))
}
