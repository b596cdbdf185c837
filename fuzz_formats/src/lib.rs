//! Shared by the fuzz targets: walks a container and extracts every member
//! into a writer that refuses more than 1 MiB, as the engine bounds members.

use std::io::{self, Write};

use aether_formats::{FileType, Flow, Member, Problem, Visitor};

struct Capped(u64);

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        if self.0 > 1 << 20 {
            return Err(io::Error::other("cap"));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Extract {
    members: u32,
}

impl Visitor for Extract {
    fn member(&mut self, m: &mut Member<'_>) -> Flow {
        self.members += 1;
        let _ = m.extract(&mut Capped(0));
        if self.members > 1000 { Flow::Stop } else { Flow::Continue }
    }
    fn problem(&mut self, _: Problem) -> Flow {
        Flow::Continue
    }
}

/// Walks `data` as a container of type `ty`; must never panic.
pub fn walk(ty: FileType, data: &[u8]) {
    let mut v = Extract { members: 0 };
    let _ = aether_formats::walk(ty, &data, &mut v);
}
