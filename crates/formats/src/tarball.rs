//! Tar archives (v7, ustar, GNU, pax), read with the `tar` crate.

use std::io::{BufReader, Read};

use crate::source::{ReadAt, SourceReader};
use crate::walk::{Body, Flow, FormatError, Member, Problem, Visitor, check_name, visit};

pub(crate) fn walk(src: &dyn ReadAt, visitor: &mut dyn Visitor) -> Result<(), FormatError> {
    let input = BufReader::with_capacity(64 << 10, SourceReader::new(src, 0, src.size()));
    let mut archive = tar::Archive::new(input);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => {
            visitor.problem(Problem::Broken {
                member: None,
                detail: format!("tar: {e}"),
            });
            return Ok(());
        }
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                visitor.problem(Problem::Broken {
                    member: None,
                    detail: format!("tar: {e}"),
                });
                return Ok(());
            }
        };
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_contiguous()) {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if check_name(visitor, &name) == Flow::Stop {
            return Ok(());
        }
        let size = entry.size();
        let mut m = Member::new(name, Body::Read(Box::new((&mut entry).take(size))));
        m.declared_size = Some(size);
        m.packed_size = Some(size);
        if visit(visitor, &mut m) == Flow::Stop {
            return Ok(());
        }
    }
    Ok(())
}
