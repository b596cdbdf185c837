//! The compiler: signatures in, [`CompiledDb`] out.

use aether_sigs::{BodySig, HashSig, SignatureSink, Unsupported};

use crate::Engine;

pub(crate) struct CompiledDb {
    pub(crate) signature_count: u64,
}

/// Collects signatures from the loader and compiles them into an [`Engine`].
#[derive(Default)]
pub struct EngineBuilder {
    signature_count: u64,
}

impl EngineBuilder {
    pub fn new() -> EngineBuilder {
        EngineBuilder::default()
    }

    pub fn build(self) -> Engine {
        Engine { db: CompiledDb { signature_count: self.signature_count } }
    }
}

impl SignatureSink for EngineBuilder {
    fn hash(&mut self, _sig: HashSig<'_>) -> Result<(), Unsupported> {
        self.signature_count += 1;
        Ok(())
    }
    fn body(&mut self, _sig: BodySig<'_>) -> Result<(), Unsupported> {
        self.signature_count += 1;
        Ok(())
    }
    fn allow(&mut self, _sig: HashSig<'_>) -> Result<(), Unsupported> {
        Ok(())
    }
}
