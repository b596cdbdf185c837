//! A subscriber reading a shared-memory ring whose positions, entries and
//! frames are arbitrary bytes: it must never panic and always come to an end
//! (an overrun, an error or nothing more to read), whatever the ring holds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Only a memfd that cannot be made is an error here.
    aether_ipc::read_arbitrary_ring(data).expect("memfd");
});
