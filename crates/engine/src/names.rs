//! Signature names, stored once in one string.
//!
//! A million hash signatures as a million `String`s would cost a million
//! allocations and their headers; one pool and a vector of end offsets costs
//! the text plus four bytes a name.

use crate::bytes::{Bytes, u32_at};

/// Index of a name in a [`NamePool`]. The top bit marks a signature from an
/// unofficial database, printed with `.UNOFFICIAL` appended as ClamAV does;
/// a flag costs nothing where a million stored suffixes cost 11 MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NameId(pub(crate) u32);

const UNOFFICIAL: u32 = 1 << 31;

impl NameId {
    pub(crate) fn unofficial(self) -> NameId {
        NameId(self.0 | UNOFFICIAL)
    }
}

#[derive(Debug, Default)]
pub(crate) struct NamePool {
    /// The names, one after another (UTF-8).
    pub(crate) text: Bytes,
    /// End offset of each name in `text`, u32 LE.
    pub(crate) ends: Bytes,
}

impl NamePool {
    pub(crate) fn push(&mut self, name: &str) -> NameId {
        let id = NameId(self.len() as u32);
        let text = self.text.make_mut();
        text.extend_from_slice(name.as_bytes());
        let end = text.len() as u32;
        self.ends.make_mut().extend_from_slice(&end.to_le_bytes());
        id
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len() / 4
    }

    /// The name as stored, without any suffix.
    pub(crate) fn get(&self, id: NameId) -> &str {
        let i = (id.0 & !UNOFFICIAL) as usize;
        if i >= self.len() {
            return "";
        }
        let end = u32_at(&self.ends, i * 4) as usize;
        let start = if i == 0 {
            0
        } else {
            u32_at(&self.ends, (i - 1) * 4) as usize
        };
        self.text
            .get(start..end)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// The name as clamscan prints it.
    pub(crate) fn display(&self, id: NameId) -> String {
        let name = self.get(id);
        if id.0 & UNOFFICIAL != 0 {
            format!("{name}.UNOFFICIAL")
        } else {
            name.to_string()
        }
    }

    pub(crate) fn shrink(&mut self) {
        self.text.make_mut().shrink_to_fit();
        self.ends.make_mut().shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let mut pool = NamePool::default();
        let a = pool.push("Eicar-Test-Signature");
        let b = pool.push("");
        let c = pool.push("Win.Trojan.Agent-1");
        assert_eq!(pool.get(a), "Eicar-Test-Signature");
        assert_eq!(pool.get(b), "");
        assert_eq!(pool.get(c), "Win.Trojan.Agent-1");
        assert_eq!(
            pool.display(c.unofficial()),
            "Win.Trojan.Agent-1.UNOFFICIAL"
        );
        assert_eq!(pool.display(c), "Win.Trojan.Agent-1");
    }
}
