//! The messages of `proto/aether.proto`, written by hand with prost's derive (no
//! `protoc` at build time). The tests at the bottom pin their encoding to golden bytes
//! worked out from the protobuf wire format, so the two cannot drift apart silently.

/// Every frame's payload. `body` is `None` for a frame whose body this version does
/// not know (a newer peer's message): unknown fields and cases are tolerated.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Frame {
    /// What the frame carries.
    #[prost(oneof = "Body", tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12")]
    pub body: Option<Body>,
}

/// The cases of [`Frame::body`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Body {
    /// Client -> server.
    #[prost(message, tag = "1")]
    Hello(Hello),
    /// Server -> client, first.
    #[prost(message, tag = "2")]
    Welcome(Welcome),
    /// Client -> server.
    #[prost(message, tag = "3")]
    Subscribe(Subscribe),
    /// Server -> client.
    #[prost(message, tag = "4")]
    Record(Record),
    /// Server -> client.
    #[prost(message, tag = "5")]
    Lagged(Lagged),
    /// Client -> server (root only).
    #[prost(message, tag = "6")]
    Control(Control),
    /// Server -> client.
    #[prost(message, tag = "7")]
    ControlReply(ControlReply),
    /// Either way.
    #[prost(message, tag = "8")]
    Error(Error),
    /// UDP receiver -> sender.
    #[prost(message, tag = "9")]
    Nack(Nack),
    /// Client -> server, with an open descriptor passed alongside (`SCM_RIGHTS`).
    #[prost(message, tag = "10")]
    ScanFd(ScanFd),
    /// Server -> client: the answer to a [`ScanFd`].
    #[prost(message, tag = "11")]
    ScanResult(ScanResult),
    /// Server -> client, with the ring's descriptor passed alongside: live
    /// records continue in shared memory (see the `ring` module).
    #[prost(message, tag = "12")]
    RingAttach(RingAttach),
}

/// Who the client is (for logs only).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Hello {
    /// The client's protocol version.
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// A free-form client name.
    #[prost(string, tag = "2")]
    pub client: String,
}

/// The server's first frame on an accepted connection.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Welcome {
    /// The protocol version the server speaks.
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// The client's uid as the kernel reported it.
    #[prost(uint32, tag = "2")]
    pub uid: u32,
    /// Whether control commands will be obeyed.
    #[prost(bool, tag = "3")]
    pub control_allowed: bool,
    /// How many [`ScanFd`] requests may be in flight on this connection; 0: the
    /// server takes none (it predates them or has no scanner).
    #[prost(uint32, tag = "4")]
    pub max_scans_in_flight: u32,
}

/// Send every record from `since` on, then the live ones.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Subscribe {
    /// The first sequence number wanted.
    #[prost(uint64, tag = "1")]
    pub since: u64,
    /// Live records through the shared-memory ring rather than the socket,
    /// if the server offers one. Sent again on a subscribed connection (after
    /// the client was overrun in the ring), it restarts the replay there.
    #[prost(bool, tag = "2")]
    pub shared_memory: bool,
}

/// Live records continue in the ring passed with this frame, at `position`;
/// records numbered below `next_seq` found there were already sent.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RingAttach {
    /// Where to start reading in the ring.
    #[prost(uint64, tag = "1")]
    pub position: u64,
    /// The next record the client is owed.
    #[prost(uint64, tag = "2")]
    pub next_seq: u64,
}

/// One journal record.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Record {
    /// The journal's sequence number.
    #[prost(uint64, tag = "1")]
    pub seq: u64,
    /// Append time, ns since the Unix epoch.
    #[prost(uint64, tag = "2")]
    pub time_ns: u64,
    /// Record kind code (see `aether_journal::Kind`).
    #[prost(uint32, tag = "3")]
    pub kind: u32,
    /// Event kind or record kind name.
    #[prost(string, tag = "4")]
    pub name: String,
    /// The payload, JSON.
    #[prost(bytes = "vec", tag = "5")]
    pub data: Vec<u8>,
}

/// The subscriber lagged; records resume at `resume_from`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Lagged {
    /// The next sequence number the subscriber will get.
    #[prost(uint64, tag = "1")]
    pub resume_from: u64,
}

/// A control command.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Control {
    /// Echoed in the reply.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The command.
    #[prost(string, tag = "2")]
    pub command: String,
    /// Its argument.
    #[prost(string, tag = "3")]
    pub argument: String,
}

/// The answer to a [`Control`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct ControlReply {
    /// The command's id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Whether it was done.
    #[prost(bool, tag = "2")]
    pub ok: bool,
    /// What happened.
    #[prost(string, tag = "3")]
    pub message: String,
}

/// Error codes of [`Error::code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ErrorCode {
    /// Not said.
    Unspecified = 0,
    /// Connection or control refused.
    PermissionDenied = 1,
    /// A framing or decoding error; the connection is closed after.
    BadFrame = 2,
    /// A frame whose body the server does not know; ignored.
    UnknownMessage = 3,
    /// The journal could not be read; the subscription ended.
    ReplayFailed = 4,
}

/// Something went wrong.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Error {
    /// What kind of error ([`ErrorCode`]; unknown values are kept as numbers).
    #[prost(enumeration = "ErrorCode", tag = "1")]
    pub code: i32,
    /// A human-readable message.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// Resend these sequence numbers.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Nack {
    /// The stream.
    #[prost(uint32, tag = "1")]
    pub stream_id: u32,
    /// The missing sequence numbers (packed).
    #[prost(uint64, repeated, tag = "2")]
    pub seqs: Vec<u64>,
}

/// Scan the file whose open descriptor travels with this frame.
///
/// The client opens the file itself and passes the descriptor in the same
/// `sendmsg` as the frame's first byte (docs/protocol.md, "Scanning passed
/// descriptors"), so the server scans exactly what the client could open and
/// nothing else: it never opens a path on a client's behalf.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScanFd {
    /// Echoed in the [`ScanResult`]; unique among the client's requests in flight.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The path as the client names it: for the journal and logs only, never opened.
    #[prost(string, tag = "2")]
    pub path: String,
    /// How to scan.
    #[prost(message, optional, tag = "3")]
    pub options: Option<ScanRequestOptions>,
}

/// Options of a [`ScanFd`]. Limits are the client's wish: the server applies
/// the lower of it and its own (0: the server's).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScanRequestOptions {
    /// Report every matching signature, not only the first.
    #[prost(bool, tag = "1")]
    pub all_match: bool,
    /// Report encrypted archive members as `Heuristics.Encrypted.*`.
    #[prost(bool, tag = "2")]
    pub alert_encrypted: bool,
    /// Report files that hit a limit as `Heuristics.Limits.Exceeded.*`.
    #[prost(bool, tag = "3")]
    pub alert_exceeds_max: bool,
    /// Bytes scanned per file at most.
    #[prost(uint64, tag = "4")]
    pub max_scansize: u64,
    /// Files inside one container at most.
    #[prost(uint64, tag = "5")]
    pub max_files: u64,
    /// Container nesting depth at most.
    #[prost(uint32, tag = "6")]
    pub max_recursion: u32,
    /// Time per file at most, in milliseconds.
    #[prost(uint64, tag = "7")]
    pub max_scantime_ms: u64,
    /// Size of a member extracted from a container at most.
    #[prost(uint64, tag = "8")]
    pub max_filesize: u64,
}

/// What a scan concluded ([`ScanResult::verdict`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ScanVerdict {
    /// Not said (a newer server's verdict this side does not know).
    Unspecified = 0,
    /// Scanned, nothing found.
    Clean = 1,
    /// Scanned, `detections` holds what matched.
    Infected = 2,
    /// The file was empty when the server looked: not scanned.
    Empty = 3,
    /// The scan failed part way; `error` says why.
    Failed = 4,
    /// The request was refused before anything was read; `error` says why.
    Refused = 5,
}

/// Why a scan failed or was refused ([`ScanError::code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ScanErrorCode {
    /// Not said.
    Unspecified = 0,
    /// Reading the file failed (`errno` set).
    Read = 1,
    /// The file changed size while it was scanned (`expected_size`, `actual_size`).
    Changed = 2,
    /// No descriptor came with the request.
    NoDescriptor = 3,
    /// The descriptor is not a regular file (a FIFO, socket, device, directory).
    NotRegular = 4,
    /// The descriptor is not open for reading (write-only, `O_PATH`).
    NotReadable = 5,
    /// The server does not scan for this connection, or refuses the options
    /// (`all_match` where its configuration forbids it).
    NotAllowed = 6,
    /// Something went wrong in the server.
    Internal = 7,
}

/// Why a scan failed or was refused.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScanError {
    /// What kind of failure ([`ScanErrorCode`]; unknown values kept as numbers).
    #[prost(enumeration = "ScanErrorCode", tag = "1")]
    pub code: i32,
    /// The OS error number, for [`ScanErrorCode::Read`]; 0 otherwise.
    #[prost(int32, tag = "2")]
    pub errno: i32,
    /// A human-readable message.
    #[prost(string, tag = "3")]
    pub message: String,
    /// For [`ScanErrorCode::Changed`]: the size when the scan began.
    #[prost(uint64, tag = "4")]
    pub expected_size: u64,
    /// For [`ScanErrorCode::Changed`]: the size found later.
    #[prost(uint64, tag = "5")]
    pub actual_size: u64,
}

/// One matching signature.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ScanDetection {
    /// The signature's name.
    #[prost(string, tag = "1")]
    pub signature: String,
    /// Where it matched: archive members from the outside in; empty for the
    /// file itself.
    #[prost(string, repeated, tag = "2")]
    pub chain: Vec<String>,
}

/// The answer to [`ScanFd`] `id`. Every request gets exactly one, in the order
/// scans finish (not necessarily the order of the requests).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScanResult {
    /// The request's id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// What the scan concluded ([`ScanVerdict`]).
    #[prost(enumeration = "ScanVerdict", tag = "2")]
    pub verdict: i32,
    /// What matched, in report order (infected only).
    #[prost(message, repeated, tag = "3")]
    pub detections: Vec<ScanDetection>,
    /// The file's size as the server saw it.
    #[prost(uint64, tag = "4")]
    pub size: u64,
    /// Bytes the engine scanned.
    #[prost(uint64, tag = "5")]
    pub bytes_scanned: u64,
    /// The recognized type, ClamAV's name (`CL_TYPE_ZIP`); empty if none.
    #[prost(string, tag = "6")]
    pub file_type: String,
    /// The limit that cut the scan short (`MaxScanSize`, `MaxFiles`,
    /// `MaxRecursion`, `MaxScanTime`, `MaxFileSize`); empty if none.
    #[prost(string, tag = "7")]
    pub limit: String,
    /// Why the scan failed or was refused.
    #[prost(message, optional, tag = "8")]
    pub error: Option<ScanError>,
}

impl ScanResult {
    /// A refusal of request `id`: nothing was read.
    pub fn refused(id: u64, code: ScanErrorCode, message: impl Into<String>) -> ScanResult {
        ScanResult {
            id,
            verdict: ScanVerdict::Refused as i32,
            error: Some(ScanError {
                code: code as i32,
                message: message.into(),
                ..ScanError::default()
            }),
            ..ScanResult::default()
        }
    }
}

impl Frame {
    /// A frame with this body.
    pub fn new(body: Body) -> Frame {
        Frame { body: Some(body) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    // Golden bytes, from the protobuf wire format (tag = field << 3 | wire type).
    #[test]
    fn encoding_matches_the_proto_schema() {
        let f = Frame::new(Body::Subscribe(Subscribe {
            since: 300,
            shared_memory: false,
        }));
        // field 3, length-delimited (0x1a), len 3: field 1 varint (0x08) 300 = ac 02.
        assert_eq!(f.encode_to_vec(), [0x1a, 0x03, 0x08, 0xac, 0x02]);
        let f = Frame::new(Body::Subscribe(Subscribe {
            since: 300,
            shared_memory: true,
        }));
        // ... and field 2 varint (0x10) true.
        assert_eq!(
            f.encode_to_vec(),
            [0x1a, 0x05, 0x08, 0xac, 0x02, 0x10, 0x01]
        );
        let f = Frame::new(Body::RingAttach(RingAttach {
            position: 4096,
            next_seq: 7,
        }));
        // field 12, length-delimited (0x62), len 5: 4096 = 80 20, then 7.
        assert_eq!(
            f.encode_to_vec(),
            [0x62, 0x05, 0x08, 0x80, 0x20, 0x10, 0x07]
        );

        let f = Frame::new(Body::Record(Record {
            seq: 1,
            time_ns: 2,
            kind: 1,
            name: "exec".into(),
            data: b"{}".to_vec(),
        }));
        let want = [
            0x22, 0x10, // field 4, len 16
            0x08, 0x01, 0x10, 0x02, 0x18, 0x01, // seq, time_ns, kind
            0x22, 0x04, b'e', b'x', b'e', b'c', // name
            0x2a, 0x02, b'{', b'}', // data
        ];
        assert_eq!(f.encode_to_vec(), want);

        let f = Frame::new(Body::Nack(Nack {
            stream_id: 7,
            seqs: vec![1, 2, 300],
        }));
        // field 9 (0x4a); stream_id (0x08 07); seqs packed (0x12, len 4: 01 02 ac 02).
        assert_eq!(
            f.encode_to_vec(),
            [0x4a, 0x08, 0x08, 0x07, 0x12, 0x04, 0x01, 0x02, 0xac, 0x02]
        );

        let f = Frame::new(Body::Error(Error {
            code: ErrorCode::PermissionDenied as i32,
            message: "no".into(),
        }));
        assert_eq!(
            f.encode_to_vec(),
            [0x42, 0x06, 0x08, 0x01, 0x12, 0x02, b'n', b'o']
        );
        let f = Frame::new(Body::Welcome(Welcome {
            version: 1,
            uid: 0,
            control_allowed: true,
            max_scans_in_flight: 0,
        }));
        assert_eq!(f.encode_to_vec(), [0x12, 0x04, 0x08, 0x01, 0x18, 0x01]);
        let f = Frame::new(Body::Lagged(Lagged { resume_from: 5 }));
        assert_eq!(f.encode_to_vec(), [0x2a, 0x02, 0x08, 0x05]);
        let f = Frame::new(Body::Control(Control {
            id: 1,
            command: "reload".into(),
            argument: String::new(),
        }));
        assert_eq!(
            f.encode_to_vec(),
            [
                0x32, 0x0a, 0x08, 0x01, 0x12, 0x06, b'r', b'e', b'l', b'o', b'a', b'd'
            ]
        );
        let f = Frame::new(Body::ControlReply(ControlReply {
            id: 1,
            ok: true,
            message: String::new(),
        }));
        assert_eq!(f.encode_to_vec(), [0x3a, 0x04, 0x08, 0x01, 0x10, 0x01]);
        let f = Frame::new(Body::Hello(Hello {
            version: 1,
            client: "x".into(),
        }));
        assert_eq!(
            f.encode_to_vec(),
            [0x0a, 0x05, 0x08, 0x01, 0x12, 0x01, b'x']
        );
    }

    #[test]
    fn scan_messages_match_the_proto_schema() {
        let f = Frame::new(Body::ScanFd(ScanFd {
            id: 1,
            path: "a".into(),
            options: Some(ScanRequestOptions {
                all_match: true,
                ..Default::default()
            }),
        }));
        // field 10 (0x52), len 9: id, path, options (field 3, len 2: all_match).
        assert_eq!(
            f.encode_to_vec(),
            [
                0x52, 0x09, 0x08, 0x01, 0x12, 0x01, b'a', 0x1a, 0x02, 0x08, 0x01
            ]
        );
        let f = Frame::new(Body::ScanResult(ScanResult {
            id: 1,
            verdict: ScanVerdict::Infected as i32,
            detections: vec![ScanDetection {
                signature: "S".into(),
                chain: vec!["m".into()],
            }],
            ..Default::default()
        }));
        // field 11 (0x5a), len 12: id, verdict 2, detections (field 3, len 6).
        assert_eq!(
            f.encode_to_vec(),
            [
                0x5a, 0x0c, 0x08, 0x01, 0x10, 0x02, 0x1a, 0x06, 0x0a, 0x01, b'S', 0x12, 0x01, b'm'
            ]
        );
        let f = Frame::new(Body::ScanResult(ScanResult::refused(
            2,
            ScanErrorCode::NotRegular,
            "x",
        )));
        // verdict 5 (refused); error (field 8, 0x42, len 5): code 4, message.
        assert_eq!(
            f.encode_to_vec(),
            [
                0x5a, 0x0b, 0x08, 0x02, 0x10, 0x05, 0x42, 0x05, 0x08, 0x04, 0x1a, 0x01, b'x'
            ]
        );
        let f = Frame::new(Body::Welcome(Welcome {
            version: 1,
            uid: 5,
            control_allowed: false,
            max_scans_in_flight: 16,
        }));
        assert_eq!(
            f.encode_to_vec(),
            [0x12, 0x06, 0x08, 0x01, 0x10, 0x05, 0x20, 0x10]
        );
    }

    #[test]
    fn unknown_fields_and_bodies_are_tolerated() {
        // A Subscribe with an extra field 15 (varint 1) a newer client might send.
        let bytes = [0x1a, 0x04, 0x08, 0x05, 0x78, 0x01];
        let f = Frame::decode(&bytes[..]).unwrap();
        assert_eq!(
            f.body,
            Some(Body::Subscribe(Subscribe {
                since: 5,
                shared_memory: false
            }))
        );
        // A body case 20 this version does not know.
        let bytes = [0xa2, 0x01, 0x00];
        assert_eq!(Frame::decode(&bytes[..]).unwrap().body, None);
    }
}
