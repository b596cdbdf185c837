//! Loading database files and directories.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::LoadError;
use crate::sink::SignatureSink;

/// Database file formats, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DbFormat {
    Hdb,
    Hsb,
    Ndb,
    Fp,
    Sfp,
    Ign,
    Ign2,
    Cvd,
    Cld,
}

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {}

#[derive(Debug, Clone)]
pub struct FileReport {
    pub name: String,
    pub format: DbFormat,
    pub by_kind: BTreeMap<&'static str, u64>,
    pub unsupported: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub files: Vec<FileReport>,
}

pub struct Loader {
    report: LoadReport,
}

impl Loader {
    pub fn new(_opts: LoadOptions) -> Loader {
        Loader { report: LoadReport::default() }
    }

    pub fn load_path(&mut self, _path: &Path, _sink: &mut dyn SignatureSink) -> Result<(), LoadError> {
        Ok(())
    }

    pub fn load_bytes(
        &mut self,
        _name: &str,
        _format: DbFormat,
        _data: &[u8],
        _sink: &mut dyn SignatureSink,
    ) -> Result<(), LoadError> {
        Ok(())
    }

    pub fn finish(self) -> LoadReport {
        self.report
    }
}
