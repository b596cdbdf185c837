//! Signature names, stored once in one string.
//!
//! A million hash signatures as a million `String`s would cost a million
//! allocations and their headers; one pool and a vector of end offsets costs
//! the text plus four bytes a name.

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
    pub(crate) text: String,
    pub(crate) ends: Vec<u32>,
}

impl NamePool {
    pub(crate) fn push(&mut self, name: &str) -> NameId {
        let id = NameId(self.ends.len() as u32);
        self.text.push_str(name);
        self.ends.push(self.text.len() as u32);
        id
    }

    /// The name as stored, without any suffix.
    pub(crate) fn get(&self, id: NameId) -> &str {
        let i = (id.0 & !UNOFFICIAL) as usize;
        let end = self.ends.get(i).copied().unwrap_or(0) as usize;
        let start = if i == 0 {
            0
        } else {
            self.ends.get(i - 1).copied().unwrap_or(0) as usize
        };
        self.text.get(start..end).unwrap_or("")
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
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
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
