//! The blocking client side of descriptor scans: connect, then send
//! [`ScanFd`] requests with their descriptors on one thread and read the
//! [`ScanResult`]s on another, so that several scans are in flight at once.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::client::ClientError;
use crate::fdpass;
use crate::frame::{self, DEFAULT_MAX_FRAME, Decoder};
use crate::msg::{Body, Frame, Hello, ScanFd, ScanResult, Welcome};

/// A connection to a server that scans passed descriptors.
pub struct ScanClient {
    stream: UnixStream,
    dec: Decoder,
    welcome: Welcome,
}

/// The sending half of a [`ScanClient`].
pub struct ScanSender {
    stream: UnixStream,
}

/// The receiving half of a [`ScanClient`].
pub struct ScanReceiver {
    stream: UnixStream,
    dec: Decoder,
}

impl ScanClient {
    /// Connects, says hello as `name` and reads the server's Welcome (or its
    /// refusal). `timeout` bounds every later read and write on the
    /// connection, so that a server that stops answering is an error, not a
    /// hang. A server that takes no scans is an error.
    pub fn connect(path: &Path, name: &str, timeout: Duration) -> Result<ScanClient, ClientError> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut client = ScanClient {
            stream,
            dec: Decoder::new(DEFAULT_MAX_FRAME),
            welcome: Welcome::default(),
        };
        let hello = Hello {
            version: u32::from(frame::VERSION),
            client: name.into(),
        };
        (&client.stream).write_all(&frame::encode(&Frame::new(Body::Hello(hello))))?;
        match next_frame(&client.stream, &mut client.dec)?.body {
            Some(Body::Welcome(w)) => client.welcome = w,
            Some(Body::Error(e)) => {
                return Err(ClientError::Refused {
                    code: e.code,
                    message: e.message,
                });
            }
            other => return Err(ClientError::Unexpected(format!("{other:?}"))),
        }
        if client.welcome.max_scans_in_flight == 0 {
            return Err(ClientError::Unexpected(
                "the server takes no scan requests".into(),
            ));
        }
        Ok(client)
    }

    /// The server's Welcome.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// How many requests may be in flight (the server's limit).
    pub fn window(&self) -> usize {
        self.welcome.max_scans_in_flight as usize
    }

    /// Splits the connection for a sending and a receiving thread.
    pub fn split(self) -> io::Result<(ScanSender, ScanReceiver)> {
        let sender = ScanSender {
            stream: self.stream.try_clone()?,
        };
        let receiver = ScanReceiver {
            stream: self.stream,
            dec: self.dec,
        };
        Ok((sender, receiver))
    }
}

impl ScanSender {
    /// Sends `request` with `file` passed alongside (one `sendmsg` carries the
    /// descriptor and the frame's first bytes). The caller may close its copy
    /// of the descriptor as soon as this returns.
    pub fn send(&mut self, request: &ScanFd, file: BorrowedFd<'_>) -> Result<(), ClientError> {
        let bytes = frame::encode(&Frame::new(Body::ScanFd(request.clone())));
        let sent = loop {
            match fdpass::send_with_fd(self.stream.as_raw_fd(), &bytes, file) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let rest = bytes.get(sent..).unwrap_or(&[]);
        (&self.stream).write_all(rest)?;
        Ok(())
    }

    /// Says no more requests will come; the server still answers those in flight.
    pub fn finish(&self) -> io::Result<()> {
        self.stream.shutdown(std::net::Shutdown::Write)
    }
}

impl ScanReceiver {
    /// The next answer. A server's Error frame is [`ClientError::Refused`];
    /// the end of the connection is [`ClientError::Closed`]; a read that
    /// times out is an I/O error of kind `WouldBlock` or `TimedOut`.
    pub fn recv(&mut self) -> Result<ScanResult, ClientError> {
        loop {
            match next_frame(&self.stream, &mut self.dec)?.body {
                Some(Body::ScanResult(r)) => return Ok(r),
                Some(Body::Error(e)) => {
                    return Err(ClientError::Refused {
                        code: e.code,
                        message: e.message,
                    });
                }
                // A body this version does not know: skipped, as the
                // protocol asks.
                None => continue,
                Some(other) => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
    }
}

fn next_frame(mut stream: &UnixStream, dec: &mut Decoder) -> Result<Frame, ClientError> {
    loop {
        if let Some(f) = dec.next_frame()? {
            return Ok(f);
        }
        let buf = dec.buffer();
        let len = buf.len();
        buf.resize(buf.capacity(), 0);
        let n = match stream.read(&mut buf[len..]) {
            Ok(n) => n,
            Err(e) => {
                buf.truncate(len);
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
        };
        buf.truncate(len + n);
        if n == 0 {
            dec.finish()?;
            return Err(ClientError::Closed);
        }
    }
}
