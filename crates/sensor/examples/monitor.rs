//! `aether monitor` without the `aether` binary: the very same command file,
//! compiled into an example so the sensor crate can run and benchmark it alone.
//!
//! cargo run -p aether-sensor --example monitor -- --json

#[path = "../../aether/src/commands/monitor.rs"]
mod monitor;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "aether-monitor")]
struct Cli {
    #[command(flatten)]
    args: monitor::MonitorArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let code = monitor::run(cli.args)?;
    std::process::exit(code);
}
