//! `aether monitor`: every process and thread event on the machine, live.
//!
//! Thin by design: the sensor, the filter, the printing and the counts live in
//! `aether_sensor::monitor`; this file is the command line and the exit code.

use aether_sensor::filter::Filter;
use aether_sensor::monitor::{self, MonitorOptions};

/// Options of `aether monitor`.
#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    /// Print one JSON object per event (schema in docs/events.md) instead of columns.
    #[arg(long)]
    pub json: bool,

    /// Only print events matching KEY=VALUE[,VALUE...], where KEY is kind, pid, uid
    /// or exe (exe takes a path or a base name, `*` matches anything). Repeat to
    /// require several. Loss and malformed events are always printed.
    #[arg(long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,

    /// Socket receive buffer (K, M, G suffixes). The default holds about 80,000 events.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = monitor::parse_size)]
    pub rcvbuf: usize,

    /// Capacity of the queue between the socket reader and the processor, in messages.
    #[arg(long, value_name = "N", default_value_t = aether_sensor::DEFAULT_QUEUE)]
    pub queue: usize,

    /// On exit, also print the latency from exec to delivery (p50, p99).
    #[arg(long)]
    pub latency: bool,
}

/// Runs the monitor until Ctrl-C or SIGTERM; returns the exit code (2 when it
/// cannot run here: no CAP_NET_ADMIN, not in the initial network namespace).
pub fn run(args: MonitorArgs) -> anyhow::Result<i32> {
    let filter = match Filter::parse(&args.filter) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("aether monitor: {e}");
            return Ok(monitor::EXIT_ERROR);
        }
    };
    let opts = MonitorOptions {
        json: args.json,
        filter,
        rcvbuf: args.rcvbuf,
        queue: args.queue,
        latency: args.latency,
        ..MonitorOptions::default()
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    Ok(monitor::run(&opts, &mut stdout.lock(), &mut stderr.lock()))
}
