//! A client for the Unix-socket transport.

use std::io;
use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::frame::{self, DEFAULT_MAX_FRAME, Decoder, FrameError};
use crate::msg::{Body, Control, ControlReply, Frame, Subscribe, Welcome};
use crate::subscription::Subscription;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The socket failed. (The cause is in the message and not a `source`,
    /// so that a chain of errors does not print it twice.)
    #[error("aether IPC: {0}")]
    Io(io::Error),
    /// The server sent bytes that are not frames.
    #[error("aether IPC: bad frame from the server: {0}")]
    Frame(FrameError),
    /// The server refused (an Error frame).
    #[error("aether IPC: refused by the server (code {code}): {message}")]
    Refused {
        /// The error code.
        code: i32,
        /// The server's message.
        message: String,
    },
    /// The server sent something else than expected.
    #[error("aether IPC: unexpected reply: {0}")]
    Unexpected(String),
    /// The server closed the connection.
    #[error("aether IPC: connection closed by the server")]
    Closed,
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> ClientError {
        ClientError::Io(e)
    }
}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> ClientError {
        ClientError::Frame(e)
    }
}

/// A connection to an aether IPC server.
pub struct Client {
    stream: UnixStream,
    dec: Decoder,
    welcome: Welcome,
}

impl Client {
    /// Connects and reads the server's Welcome (or its refusal).
    pub async fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).await?;
        let mut client = Client {
            stream,
            dec: Decoder::new(DEFAULT_MAX_FRAME),
            welcome: Welcome::default(),
        };
        match client.next_frame().await?.body {
            Some(Body::Welcome(w)) => client.welcome = w,
            Some(Body::Error(e)) => {
                return Err(ClientError::Refused {
                    code: e.code,
                    message: e.message,
                });
            }
            other => return Err(ClientError::Unexpected(format!("{other:?}"))),
        }
        Ok(client)
    }

    /// The server's Welcome.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: &Frame) -> Result<(), ClientError> {
        self.stream.write_all(&frame::encode(frame)).await?;
        Ok(())
    }

    /// Asks for every record from `since` on; read them with [`Client::next_frame`].
    pub async fn subscribe(&mut self, since: u64) -> Result<(), ClientError> {
        self.send(&Frame::new(Body::Subscribe(Subscribe {
            since,
            shared_memory: false,
        })))
        .await
    }

    /// Asks for every record from `since` on, live ones through the server's
    /// shared-memory ring when it has one (the socket otherwise); the
    /// connection then belongs to the subscription.
    pub async fn subscribe_shared(self, since: u64) -> Result<Subscription, ClientError> {
        Subscription::start(self.stream, self.dec, since).await
    }

    /// Sends a control command and waits for its reply.
    pub async fn control(
        &mut self,
        id: u64,
        command: &str,
        argument: &str,
    ) -> Result<ControlReply, ClientError> {
        let c = Control {
            id,
            command: command.into(),
            argument: argument.into(),
        };
        self.send(&Frame::new(Body::Control(c))).await?;
        match self.next_frame().await?.body {
            Some(Body::ControlReply(r)) if r.id == id => Ok(r),
            Some(Body::Error(e)) => Err(ClientError::Refused {
                code: e.code,
                message: e.message,
            }),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// The next frame from the server, decoded into `frame` to reuse its
    /// allocations (see [`Decoder::next_frame_into`]): for subscribers reading
    /// records flat out.
    pub async fn next_frame_into(&mut self, frame: &mut Frame) -> Result<(), ClientError> {
        loop {
            if self.dec.next_frame_into(frame)? {
                return Ok(());
            }
            if self.stream.read_buf(self.dec.buffer()).await? == 0 {
                self.dec.finish()?;
                return Err(ClientError::Closed);
            }
        }
    }

    /// The next frame from the server.
    pub async fn next_frame(&mut self) -> Result<Frame, ClientError> {
        loop {
            if let Some(f) = self.dec.next_frame()? {
                return Ok(f);
            }
            if self.stream.read_buf(self.dec.buffer()).await? == 0 {
                self.dec.finish()?;
                return Err(ClientError::Closed);
            }
        }
    }
}
