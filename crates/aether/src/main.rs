/*!
`aether`: the command-line tool.

This binary is glue, as ripgrep's `crates/core`: it parses flags, calls the
libraries (`aether-engine` to load databases, `aether-scan` to walk and scan,
`aether-report` to print) and decides the exit code in one place, [`main`].
Exit codes are clamscan's: 0 nothing found, 1 something found, 2 an error.
*/

mod commands;

use std::io;
use std::process::ExitCode;

fn main() -> ExitCode {
    aether_scan::return_large_buffers();
    // A panic in any thread (a scanning worker) is a bug; report it and exit
    // with clamscan's error code rather than leave the scan half done.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::exit(2);
    }));

    match commands::run(std::env::args_os()) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // `aether scan | head` closes the pipe: stop quietly.
            if is_broken_pipe(&err) {
                return ExitCode::from(0);
            }
            eprintln!("ERROR: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
