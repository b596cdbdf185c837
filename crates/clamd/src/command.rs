//! Cutting commands out of a byte stream, and recognizing them.

use std::borrow::Cow;

/// Longest command accepted, prefix and terminator included. clamd reads
/// commands into a buffer of about `PATH_MAX` plus a little; a path argument
/// cannot be longer than `PATH_MAX` (4096) anyway.
pub const MAX_COMMAND_LEN: usize = 4096 + 64;

/// How the client framed a command; replies use the same terminator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delimiter {
    /// `zCMD\0`: replies end with NUL.
    Nul,
    /// `nCMD\n`: replies end with a newline.
    Newline,
    /// Unprefixed `CMD` (clamd's "old style"): one packet is one command,
    /// replies end with a newline. Some commands are refused in this form.
    Legacy,
}

impl Delimiter {
    /// The byte that ends every reply.
    pub fn terminator(self) -> u8 {
        match self {
            Delimiter::Nul => 0,
            Delimiter::Newline | Delimiter::Legacy => b'\n',
        }
    }
}

/// A recognized command. Paths are the raw argument bytes, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `PING`.
    Ping,
    /// `VERSION`.
    Version,
    /// `VERSIONCOMMANDS`.
    VersionCommands,
    /// `RELOAD`.
    Reload,
    /// `SHUTDOWN` (also clamd's old `QUIT`).
    Shutdown,
    /// `SELFCHECK`: does the database on disk differ from the loaded one?
    SelfCheck,
    /// `STATS`.
    Stats,
    /// `IDSESSION`.
    IdSession,
    /// `END`.
    End,
    /// `INSTREAM`: length-prefixed chunks follow.
    Instream,
    /// `FILDES`: a descriptor follows as `SCM_RIGHTS` ancillary data.
    Fildes,
    /// `SCAN path`: stop at the first infected file.
    Scan(Cow<'a, [u8]>),
    /// `CONTSCAN path`: report every infected file.
    ContScan(Cow<'a, [u8]>),
    /// `MULTISCAN path`: as CONTSCAN, on several threads.
    MultiScan(Cow<'a, [u8]>),
    /// `ALLMATCHSCAN path`: every signature of a file, stop after the first
    /// infected file.
    AllMatchScan(Cow<'a, [u8]>),
    /// `DETSTATS` and `DETSTATSCLEAR`: removed from clamd, accepted and
    /// answered with nothing.
    DetStats,
    /// Anything else (also a known command with a missing argument, trailing
    /// bytes, or sent in legacy form when clamd refuses that).
    Unknown,
}

impl Command<'_> {
    /// The command's name as in clamd's STATS task list.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Ping => "PING",
            Command::Version => "VERSION",
            Command::VersionCommands => "VERSIONCOMMANDS",
            Command::Reload => "RELOAD",
            Command::Shutdown => "SHUTDOWN",
            Command::SelfCheck => "SELFCHECK",
            Command::Stats => "STATS",
            Command::IdSession => "IDSESSION",
            Command::End => "END",
            Command::Instream => "INSTREAM",
            Command::Fildes => "FILDES",
            Command::Scan(_) => "SCAN",
            Command::ContScan(_) => "CONTSCAN",
            Command::MultiScan(_) => "MULTISCAN",
            Command::AllMatchScan(_) => "ALLMATCHSCAN",
            Command::DetStats => "DETSTATS",
            Command::Unknown => "UNKNOWN",
        }
    }

    /// Whether clamd accepts it inside an IDSESSION.
    pub fn allowed_in_session(&self) -> bool {
        matches!(
            self,
            Command::Fildes
                | Command::Scan(_)
                | Command::End
                | Command::Instream
                | Command::Version
                | Command::Ping
                | Command::Stats
                | Command::VersionCommands
        )
    }

    /// The path argument of a scanning command.
    pub fn path(&self) -> Option<&[u8]> {
        match self {
            Command::Scan(p)
            | Command::ContScan(p)
            | Command::MultiScan(p)
            | Command::AllMatchScan(p) => Some(p),
            _ => None,
        }
    }

    /// An owned copy, detached from the receive buffer.
    pub fn into_owned(self) -> Command<'static> {
        let own = |p: Cow<'_, [u8]>| Cow::Owned(p.into_owned());
        match self {
            Command::Ping => Command::Ping,
            Command::Version => Command::Version,
            Command::VersionCommands => Command::VersionCommands,
            Command::Reload => Command::Reload,
            Command::Shutdown => Command::Shutdown,
            Command::SelfCheck => Command::SelfCheck,
            Command::Stats => Command::Stats,
            Command::IdSession => Command::IdSession,
            Command::End => Command::End,
            Command::Instream => Command::Instream,
            Command::Fildes => Command::Fildes,
            Command::Scan(p) => Command::Scan(own(p)),
            Command::ContScan(p) => Command::ContScan(own(p)),
            Command::MultiScan(p) => Command::MultiScan(own(p)),
            Command::AllMatchScan(p) => Command::AllMatchScan(own(p)),
            Command::DetStats => Command::DetStats,
            Command::Unknown => Command::Unknown,
        }
    }
}

/// What each command needs, in clamd's matching order: the order matters
/// because matching is by prefix (`VERSIONCOMMANDS` before `VERSION`).
/// (name, needs an argument, accepted in legacy form, builder)
type Build = for<'a> fn(Cow<'a, [u8]>) -> Command<'a>;
const TABLE: &[(&str, bool, bool, Build)] = &[
    ("SCAN", true, true, |p| Command::Scan(p)),
    ("QUIT", false, true, |_| Command::Shutdown),
    ("RELOAD", false, true, |_| Command::Reload),
    ("SELFCHECK", false, true, |_| Command::SelfCheck),
    ("PING", false, true, |_| Command::Ping),
    ("CONTSCAN", true, true, |p| Command::ContScan(p)),
    ("VERSIONCOMMANDS", false, false, |_| {
        Command::VersionCommands
    }),
    ("VERSION", false, true, |_| Command::Version),
    ("END", false, false, |_| Command::End),
    ("SHUTDOWN", false, true, |_| Command::Shutdown),
    ("MULTISCAN", true, true, |p| Command::MultiScan(p)),
    ("FILDES", false, true, |_| Command::Fildes),
    ("STATS", false, false, |_| Command::Stats),
    ("IDSESSION", false, false, |_| Command::IdSession),
    ("INSTREAM", false, false, |_| Command::Instream),
    ("DETSTATSCLEAR", false, true, |_| Command::DetStats),
    ("DETSTATS", false, true, |_| Command::DetStats),
    ("ALLMATCHSCAN", true, false, |p| Command::AllMatchScan(p)),
];

/// The command names VERSIONCOMMANDS lists, in clamd 1.4.6's order.
pub const VERSION_COMMANDS: &[&str] = &[
    "SCAN",
    "QUIT",
    "RELOAD",
    "PING",
    "CONTSCAN",
    "VERSIONCOMMANDS",
    "VERSION",
    "END",
    "SHUTDOWN",
    "MULTISCAN",
    "FILDES",
    "STATS",
    "IDSESSION",
    "INSTREAM",
    "DETSTATSCLEAR",
    "DETSTATS",
    "ALLMATCHSCAN",
];

/// Recognizes one command (without prefix and terminator), as clamd 1.4.6.
///
/// Matching is by prefix, in clamd's table order; a command that takes a
/// path gets everything after the byte following its name (so `SCAN /x` and
/// clamd's quirk `SCANX/x` both scan `/x`); one that takes none must end
/// there. In legacy form, the commands added with the `n`/`z` prefixes
/// (`IDSESSION`, `INSTREAM`, `STATS`, `END`, `VERSIONCOMMANDS`,
/// `ALLMATCHSCAN`) are unknown.
pub fn parse_command(text: &[u8], legacy: bool) -> Command<'_> {
    for &(name, needs_arg, old_ok, build) in TABLE {
        let Some(rest) = text.strip_prefix(name.as_bytes()) else {
            continue;
        };
        let command = if needs_arg {
            match rest.split_first() {
                Some((_, arg)) => build(Cow::Borrowed(arg)),
                None => return Command::Unknown,
            }
        } else if rest.is_empty() {
            build(Cow::Borrowed(&[]))
        } else {
            return Command::Unknown;
        };
        if legacy && !old_ok {
            return Command::Unknown;
        }
        return command;
    }
    Command::Unknown
}

/// One command cut from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// How it was framed.
    pub delimiter: Delimiter,
    /// The command.
    pub command: Command<'a>,
    /// Bytes of the buffer it used, terminator included.
    pub consumed: usize,
}

/// A command that cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// No terminator within [`MAX_COMMAND_LEN`] bytes.
    #[error("command longer than {MAX_COMMAND_LEN} bytes without a terminator")]
    TooLong,
}

/// Cuts the next command from `buf`. `Ok(None)` means more bytes are needed.
///
/// `packet_end` says that `buf` holds exactly what the first read of the
/// connection returned: a legacy (unprefixed) command ends at a newline or,
/// as in clamd ("one packet = one command"), at the end of that packet.
/// Legacy commands are only recognized at the start of a connection;
/// `first` says whether this is the connection's first command.
pub fn next_command(
    buf: &[u8],
    first: bool,
    packet_end: bool,
) -> Result<Option<Frame<'_>>, FrameError> {
    let Some(&prefix) = buf.first() else {
        return Ok(None);
    };
    let (delimiter, term) = match prefix {
        b'z' => (Delimiter::Nul, 0u8),
        b'n' => (Delimiter::Newline, b'\n'),
        _ => (Delimiter::Legacy, b'\n'),
    };
    let end = buf.iter().position(|&b| b == term);
    let (body, consumed) = match (delimiter, end) {
        (Delimiter::Legacy, Some(e)) => (&buf[..e], e + 1),
        (Delimiter::Legacy, None) if packet_end || buf.len() >= MAX_COMMAND_LEN => (buf, buf.len()),
        (_, Some(e)) => (&buf[1..e], e + 1),
        (_, None) if buf.len() >= MAX_COMMAND_LEN => return Err(FrameError::TooLong),
        (_, None) => return Ok(None),
    };
    if consumed > MAX_COMMAND_LEN {
        return Err(FrameError::TooLong);
    }
    let body = match delimiter {
        // clamd's cli_chomp: trailing CR/LF removed from newline-framed commands.
        Delimiter::Nul => body,
        _ => trim_crlf(body),
    };
    let command = match delimiter {
        // clamd only takes a legacy command as the connection's first bytes.
        Delimiter::Legacy if !first => Command::Unknown,
        Delimiter::Legacy => parse_command(body, true),
        _ => parse_command(body, false),
    };
    Ok(Some(Frame {
        delimiter,
        command,
        consumed,
    }))
}

fn trim_crlf(mut s: &[u8]) -> &[u8] {
    while let Some((&last, rest)) = s.split_last() {
        if last == b'\n' || last == b'\r' {
            s = rest;
        } else {
            break;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(buf: &[u8]) -> (Delimiter, Command<'_>, usize) {
        let f = next_command(buf, true, true).unwrap().unwrap();
        (f.delimiter, f.command, f.consumed)
    }

    #[test]
    fn three_framings() {
        assert_eq!(cmd(b"zPING\0rest"), (Delimiter::Nul, Command::Ping, 6));
        assert_eq!(cmd(b"nPING\n"), (Delimiter::Newline, Command::Ping, 6));
        assert_eq!(cmd(b"nPING\r\n"), (Delimiter::Newline, Command::Ping, 7));
        assert_eq!(cmd(b"PING"), (Delimiter::Legacy, Command::Ping, 4));
        assert_eq!(cmd(b"PING\nxx"), (Delimiter::Legacy, Command::Ping, 5));
    }

    #[test]
    fn incomplete_and_too_long() {
        assert_eq!(next_command(b"", true, true), Ok(None));
        assert_eq!(next_command(b"nPIN", true, true), Ok(None));
        assert_eq!(next_command(b"zPING\n", true, false), Ok(None));
        assert_eq!(next_command(b"PIN", true, false), Ok(None));
        let long = vec![b'n'; MAX_COMMAND_LEN];
        assert_eq!(next_command(&long, true, true), Err(FrameError::TooLong));
        let mut long_done = vec![b'n'; MAX_COMMAND_LEN + 1];
        long_done.push(b'\n');
        assert_eq!(
            next_command(&long_done, true, true),
            Err(FrameError::TooLong)
        );
    }

    #[test]
    fn recognition_as_clamd() {
        assert_eq!(
            parse_command(b"VERSIONCOMMANDS", false),
            Command::VersionCommands
        );
        assert_eq!(parse_command(b"VERSION", false), Command::Version);
        assert_eq!(parse_command(b"VERSION x", false), Command::Unknown);
        assert_eq!(parse_command(b"PINGjunk", true), Command::Unknown);
        assert_eq!(parse_command(b"ping", false), Command::Unknown);
        assert_eq!(parse_command(b"SCAN", false), Command::Unknown);
        assert_eq!(
            parse_command(b"SCAN ", false),
            Command::Scan(Cow::Borrowed(b""))
        );
        assert_eq!(
            parse_command(b"SCAN /a b", false),
            Command::Scan(Cow::Borrowed(b"/a b"))
        );
        assert_eq!(
            parse_command(b"SCANX/a", false),
            Command::Scan(Cow::Borrowed(b"/a"))
        );
        assert_eq!(
            parse_command(b"ALLMATCHSCAN /a", false),
            Command::AllMatchScan(Cow::Borrowed(b"/a"))
        );
        assert_eq!(parse_command(b"ALLMATCHSCAN /a", true), Command::Unknown);
        assert_eq!(parse_command(b"INSTREAM", true), Command::Unknown);
        assert_eq!(parse_command(b"IDSESSION", false), Command::IdSession);
        assert_eq!(parse_command(b"", false), Command::Unknown);
        // A legacy command after the first is not taken (clamd: off != 0).
        let f = next_command(b"PING\n", false, true).unwrap().unwrap();
        assert_eq!(f.command, Command::Unknown);
    }

    #[test]
    fn session_rules() {
        assert!(Command::Ping.allowed_in_session());
        assert!(Command::Scan(Cow::Borrowed(b"/")).allowed_in_session());
        assert!(!Command::ContScan(Cow::Borrowed(b"/")).allowed_in_session());
        assert!(!Command::IdSession.allowed_in_session());
        assert!(!Command::Unknown.allowed_in_session());
    }
}
