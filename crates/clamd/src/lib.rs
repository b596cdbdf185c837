/*!
The clamd protocol, as bytes in and bytes out.

Thousands of scripts, mail filters and file servers speak clamd's socket
protocol; aetherd answers them byte for byte as Debian's clamd 1.4.6 does. This
crate holds everything about the wire format and nothing about sockets,
threads or scanning, so that it can be tested exhaustively, fuzzed, and reused
by a client (`aether scan --daemon`) as well as by the daemon:

- [`next_command`] cuts one command out of a receive buffer, in any of the three
  framings clamd accepts: `zCMD\0`, `nCMD\n` and the legacy unprefixed
  `CMD` (one packet, one command); [`parse_command`] recognizes the command
  exactly as clamd's `parse_command` does (prefix match, argument after one
  separator byte, legacy restrictions).
- [`InstreamDecoder`] decodes INSTREAM's 4-byte big-endian length chunks,
  ended by a zero-length chunk, enforcing `StreamMaxLength` as clamd does.
- [`Replier`] formats every reply: `path: Name FOUND`, `path: msg ERROR`,
  `PONG`, session replies with their `N: ` prefix, and the NUL or newline
  terminator the client chose.

Every entry point takes untrusted bytes and never panics; malformed input is
a typed [`FrameError`] or [`InstreamError`].
*/
#![deny(missing_docs)]

mod command;
mod instream;
mod reply;

pub use command::{
    Command, Delimiter, Frame, FrameError, MAX_COMMAND_LEN, VERSION_COMMANDS, next_command,
    parse_command,
};
pub use instream::{Chunk, InstreamDecoder, InstreamError};
pub use reply::{Replier, StatsReport, StatsTask, clamd_strerror};

/// The clamd version aetherd presents itself as.
pub const CLAMD_VERSION: &str = "1.4.6";
