//! Builders of cabinet test files shared by aether-formats' reader tests
//! and the engine's clamscan differential test (included there by path).

#![allow(dead_code)]

use std::io::{Cursor, Write};

use cab::{CabinetBuilder, CompressionType};

/// A folder: its compression and its files' names and contents.
pub type Folder<'a> = (CompressionType, Vec<(&'a str, Vec<u8>)>);

/// Folders written in order.
pub fn build(folders: &[Folder<'_>], reserve: bool) -> Vec<u8> {
    let mut b = CabinetBuilder::new();
    if reserve {
        b.set_reserve_data(vec![0xee; 300]);
    }
    for (ctype, files) in folders {
        let f = b.add_folder(*ctype);
        if reserve {
            f.set_reserve_data(vec![0xdd; 7]);
        }
        for (name, _) in files {
            f.add_file(*name);
        }
    }
    let mut w = b.build(Cursor::new(Vec::new())).expect("build");
    let contents: Vec<&Vec<u8>> = folders
        .iter()
        .flat_map(|(_, files)| files.iter().map(|(_, d)| d))
        .collect();
    let mut i = 0;
    while let Some(mut fw) = w.next_file().expect("next file") {
        fw.write_all(contents[i]).expect("write");
        i += 1;
    }
    w.finish().expect("finish").into_inner()
}

/// Folders written in order, without reserve fields.
pub fn cabinet(folders: &[Folder<'_>]) -> Vec<u8> {
    build(folders, false)
}
