//! The compiler: signatures in, [`CompiledDb`] out.

use aether_sigs::{BodySig, HashSig, LogicalSig, SignatureSink, Unsupported};
use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use std::collections::HashMap;

use crate::Engine;
use crate::grams::GramIndex;
use crate::hashdb::HashDb;
use crate::logical::LogicalDb;
use crate::names::NamePool;
use crate::pattern::{self, Program};

/// The compiled database: plain data, read by any number of scanners.
pub(crate) struct CompiledDb {
    pub(crate) signature_count: u64,
    pub(crate) names: NamePool,
    pub(crate) hashes: HashDb,
    pub(crate) allow: HashDb,
    /// `.mdb`/`.msb` PE section hashes and `.imp` import hashes (see
    /// [`crate::exe_layout`]).
    pub(crate) sections: HashDb,
    pub(crate) imports: HashDb,
    pub(crate) programs: Vec<Program>,
    /// Finds 4-byte anchors.
    pub(crate) grams: GramIndex,
    /// Finds 4-byte `nocase` anchors by their folded grams.
    pub(crate) folded_grams: GramIndex,
    pub(crate) folded_entries: Vec<(u32, (u32, u32))>,
    /// Finds shorter anchors; pattern id `k` has span `short_spans[k]`.
    pub(crate) automaton: Option<AhoCorasick>,
    pub(crate) short_spans: Vec<(u32, u32)>,
    /// Programs of an anchor: `anchor_programs[span.0..span.1]`.
    pub(crate) anchor_programs: Vec<u32>,
    /// The anchors the two finders were built from, kept for the cache.
    pub(crate) gram_entries: Vec<(u32, (u32, u32))>,
    pub(crate) short_anchors: Vec<Vec<u8>>,
    /// Logical signatures; their hex subsignatures are in `programs`.
    pub(crate) logical: LogicalDb,
    /// How normalized text is cut (see [`crate::textnorm`]).
    pub(crate) ascii_root: crate::textnorm::AsciiRoot,
}

/// The parts a [`CompiledDb`] is assembled from: what the builder produces
/// and what the cache stores.
pub(crate) struct DbParts {
    pub(crate) signature_count: u64,
    pub(crate) names: NamePool,
    pub(crate) hashes: HashDb,
    pub(crate) allow: HashDb,
    pub(crate) sections: HashDb,
    pub(crate) imports: HashDb,
    pub(crate) programs: Vec<Program>,
    pub(crate) anchor_programs: Vec<u32>,
    pub(crate) gram_entries: Vec<(u32, (u32, u32))>,
    /// Anchors shorter than four bytes, each with its span.
    pub(crate) short: Vec<(Vec<u8>, (u32, u32))>,
    /// Folded 4-byte anchors (see [`crate::grams::fold`]), each with its span.
    pub(crate) folded: Vec<(u32, (u32, u32))>,
    pub(crate) logical: LogicalDb,
}

impl CompiledDb {
    /// Builds the anchor finders over the parts.
    pub(crate) fn assemble(parts: DbParts) -> Result<CompiledDb, BuildError> {
        let DbParts {
            signature_count,
            names,
            hashes,
            allow,
            sections,
            imports,
            programs,
            anchor_programs,
            gram_entries,
            short,
            folded,
            logical,
        } = parts;
        let grams = GramIndex::new(&gram_entries);
        let folded_grams = GramIndex::new(&folded);
        let automaton = if short.is_empty() {
            None
        } else {
            let ac = AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::ContiguousNFA))
                .build(short.iter().map(|(a, _)| a.as_slice()))
                .map_err(|e| BuildError(e.to_string()))?;
            Some(ac)
        };
        let short_spans = short.iter().map(|(_, span)| *span).collect();
        let ascii_root = crate::textnorm::AsciiRoot::of(&programs);
        let short_anchors = short.into_iter().map(|(a, _)| a).collect();
        Ok(CompiledDb {
            signature_count,
            names,
            hashes,
            allow,
            sections,
            imports,
            programs,
            grams,
            folded_grams,
            folded_entries: folded,
            automaton,
            short_spans,
            anchor_programs,
            gram_entries,
            short_anchors,
            logical,
            ascii_root,
        })
    }

    /// The parts back, for the cache writer.
    pub(crate) fn short_entries(&self) -> impl Iterator<Item = (&[u8], (u32, u32))> {
        self.short_anchors
            .iter()
            .map(|a| a.as_slice())
            .zip(self.short_spans.iter().copied())
    }
}

/// Collects signatures from the loader and compiles them into an [`Engine`].
#[derive(Default)]
pub struct EngineBuilder {
    names: NamePool,
    hashes: HashDb,
    allow: HashDb,
    sections: HashDb,
    imports: HashDb,
    programs: Vec<Program>,
    anchors: HashMap<Vec<u8>, Vec<u32>>,
    /// Folded 4-byte anchors of `nocase` subsignatures.
    folded: HashMap<u32, Vec<u32>>,
    /// Body signatures among `programs` (the rest are subsignatures).
    bodies: u64,
    logical: LogicalDb,
    /// The database being loaded is not official (see
    /// [`SignatureSink::begin_database`]); records pushed directly, not by
    /// the loader, keep their names.
    unofficial: bool,
}

/// Why the automaton could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the body-signature automaton: {0}")]
pub struct BuildError(String);

impl EngineBuilder {
    pub fn new() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Compiles what was collected.
    pub fn build(self) -> Result<Engine, BuildError> {
        let EngineBuilder {
            mut names,
            mut hashes,
            mut allow,
            mut sections,
            mut imports,
            programs,
            anchors,
            folded,
            bodies,
            logical,
            ..
        } = self;
        // The MD5 table is usually the largest by far: sort it on another core
        // while this one sorts the rest and indexes the anchors.
        std::thread::scope(|scope| {
            let md5 = &mut hashes.md5;
            scope.spawn(move || md5.finish());
            hashes.sha1.finish();
            hashes.sha256.finish();
            allow.finish();
            sections.finish();
            imports.finish();
            names.shrink();
        });
        // Sorted so that builds are reproducible.
        let mut anchors: Vec<(Vec<u8>, Vec<u32>)> = anchors.into_iter().collect();
        anchors.sort_unstable();
        let mut anchor_programs = Vec::with_capacity(programs.len());
        let mut gram_entries = Vec::new();
        let mut short = Vec::new();
        for (anchor, progs) in anchors {
            let start = anchor_programs.len() as u32;
            anchor_programs.extend_from_slice(&progs);
            let span = (start, anchor_programs.len() as u32);
            match GramIndex::gram(&anchor) {
                Some(gram) => gram_entries.push((gram, span)),
                None => short.push((anchor, span)),
            }
        }
        let mut folded: Vec<(u32, Vec<u32>)> = folded.into_iter().collect();
        folded.sort_unstable();
        let folded = folded
            .into_iter()
            .map(|(gram, progs)| {
                let start = anchor_programs.len() as u32;
                anchor_programs.extend_from_slice(&progs);
                (gram, (start, anchor_programs.len() as u32))
            })
            .collect();
        let signature_count = hashes.len() as u64
            + sections.len() as u64
            + imports.len() as u64
            + bodies
            + logical.sigs.len() as u64;
        let db = CompiledDb::assemble(DbParts {
            signature_count,
            names,
            hashes,
            allow,
            sections,
            imports,
            programs,
            anchor_programs,
            gram_entries,
            short,
            folded,
            logical,
        })?;
        Ok(Engine { db, yara: None })
    }
}

impl EngineBuilder {
    /// Stores a signature name as ClamAV prints it.
    fn push_name(&mut self, name: &str) -> crate::names::NameId {
        let id = self.names.push(name);
        if self.unofficial { id.unofficial() } else { id }
    }
}

impl SignatureSink for EngineBuilder {
    fn begin_database(&mut self, official: bool) {
        self.unofficial = !official;
    }

    fn hash(&mut self, sig: HashSig<'_>) -> Result<(), Unsupported> {
        let name = self.push_name(sig.name);
        self.hashes
            .insert(sig.digest.kind, sig.digest.as_bytes(), sig.size, name);
        Ok(())
    }

    fn body(&mut self, sig: BodySig<'_>) -> Result<(), Unsupported> {
        let id = self.programs.len() as u32;
        let name = crate::names::NameId(u32::MAX);
        let (mut prog, anchor) = pattern::compile(&sig, name)?;
        prog.name = self.push_name(sig.name);
        self.programs.push(prog);
        self.anchors.entry(anchor).or_default().push(id);
        self.bodies += 1;
        Ok(())
    }

    fn logical(&mut self, sig: LogicalSig<'_>) -> Result<(), Unsupported> {
        let first_slot = u32::try_from(self.logical.slots())
            .map_err(|_| Unsupported("more logical subsignatures than the engine can count"))?;
        // Compiled before the name is stored, so that a refused signature
        // leaves nothing behind.
        let (mut lsig, programs) =
            crate::logical::compile(&sig, crate::names::NameId(u32::MAX), first_slot)?;
        let name = self.push_name(sig.name);
        lsig.name = name;
        lsig.chains.iter_mut().for_each(|c| c.rename(name));
        for (mut prog, anchors) in programs {
            prog.name = name;
            let id = self.programs.len() as u32;
            self.programs.push(prog);
            for anchor in anchors {
                let ids = match (anchor.folded, GramIndex::gram(&anchor.bytes)) {
                    (true, Some(gram)) => self.folded.entry(gram).or_default(),
                    _ => self.anchors.entry(anchor.bytes).or_default(),
                };
                if ids.last() != Some(&id) {
                    ids.push(id);
                }
            }
        }
        self.logical.push(lsig);
        Ok(())
    }

    fn section_hash(&mut self, sig: HashSig<'_>) -> Result<(), Unsupported> {
        let name = self.push_name(sig.name);
        self.sections
            .insert(sig.digest.kind, sig.digest.as_bytes(), sig.size, name);
        Ok(())
    }

    fn import_hash(&mut self, sig: HashSig<'_>) -> Result<(), Unsupported> {
        let name = self.push_name(sig.name);
        self.imports
            .insert(sig.digest.kind, sig.digest.as_bytes(), sig.size, name);
        Ok(())
    }

    fn allow(&mut self, sig: HashSig<'_>) -> Result<(), Unsupported> {
        let name = self.push_name(sig.name);
        self.allow
            .insert(sig.digest.kind, sig.digest.as_bytes(), sig.size, name);
        Ok(())
    }
}
