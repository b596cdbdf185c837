//! /proc file contents into the sensor's parsers (a process controls its own
//! comm and cmdline, so these bytes are attacker-chosen).
#![no_main]

use aether_sensor::procfs::{parse_stat, parse_status_ids, split_cmdline};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_stat(data);
    let _ = parse_status_ids(data, "Uid:");
    let _ = split_cmdline(data);
});
