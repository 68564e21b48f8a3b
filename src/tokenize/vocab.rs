//! The WordPiece vocabulary as one string arena plus two hash tables of spans into it: all entries, and
//! the continuation entries (`##x`) keyed without their prefix. Building it costs one allocation per
//! table instead of one per token, so a 30k-entry vocabulary loads in about a millisecond.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

#[derive(Debug, Clone, Copy)]
struct Entry {
    start: u32,
    len: u32,
    id: u32,
}

/// Token string → id, for whole-word and continuation lookups.
#[derive(Debug, Default)]
pub(crate) struct Vocab {
    text: String,
    all: HashTable<Entry>,
    continuation: HashTable<Entry>,
    prefix: String,
    max_id: Option<u32>,
}

fn hash(s: &str) -> u64 {
    FxBuildHasher.hash_one(s)
}

impl Vocab {
    /// An empty vocabulary whose continuation entries start with `prefix` (usually `##`).
    pub(crate) fn new(prefix: &str, capacity: usize) -> Self {
        Vocab {
            text: String::with_capacity(capacity * 8),
            all: HashTable::with_capacity(capacity),
            continuation: HashTable::with_capacity(capacity / 4),
            prefix: prefix.to_string(),
            max_id: None,
        }
    }

    fn span(&self, e: &Entry) -> &str {
        &self.text[e.start as usize..(e.start + e.len) as usize]
    }

    /// Adds `token`; a token seen before keeps its first id unless `overwrite` (JSON maps: last wins).
    pub(crate) fn insert(&mut self, token: &str, id: u32, overwrite: bool) {
        let start = self.text.len() as u32;
        let text = &self.text;
        let span = |e: &Entry| &text[e.start as usize..(e.start + e.len) as usize];
        // One probe: the new entry points at where `token` is about to be appended.
        match self
            .all
            .entry(hash(token), |e| span(e) == token, |e| hash(span(e)))
        {
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                if !overwrite {
                    return;
                }
                o.get_mut().id = id;
                if let Some(rest) = token.strip_prefix(self.prefix.as_str())
                    && let Some(c) = self.continuation.find_mut(hash(rest), |c| span(c) == rest)
                {
                    c.id = id;
                }
                return;
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(Entry {
                    start,
                    len: token.len() as u32,
                    id,
                });
            }
        }
        self.text.push_str(token);
        self.max_id = self.max_id.max(Some(id));
        if let Some(rest) = token.strip_prefix(self.prefix.as_str())
            && !rest.is_empty()
        {
            let p = self.prefix.len() as u32;
            let c = Entry {
                start: start + p,
                len: token.len() as u32 - p,
                id,
            };
            let text = &self.text;
            self.continuation.insert_unique(hash(rest), c, |e| {
                hash(&text[e.start as usize..(e.start + e.len) as usize])
            });
        }
    }

    /// Changes the continuation prefix, rebuilding the continuation table if it differs.
    pub(crate) fn set_prefix(&mut self, prefix: &str) {
        if prefix == self.prefix {
            return;
        }
        self.prefix = prefix.to_string();
        self.continuation.clear();
        let text = &self.text;
        let span = |e: &Entry| &text[e.start as usize..(e.start + e.len) as usize];
        for e in self.all.iter() {
            if let Some(rest) = span(e).strip_prefix(prefix)
                && !rest.is_empty()
            {
                let p = prefix.len() as u32;
                let c = Entry {
                    start: e.start + p,
                    len: e.len - p,
                    id: e.id,
                };
                self.continuation
                    .insert_unique(hash(rest), c, |x| hash(span(x)));
            }
        }
    }

    /// Largest id inserted (`None` when empty).
    pub(crate) fn max_id(&self) -> Option<u32> {
        self.max_id
    }

    /// Id of a word-initial piece (any entry, including `##x` ones, as in HF).
    pub(crate) fn get(&self, s: &str) -> Option<u32> {
        self.all.find(hash(s), |e| self.span(e) == s).map(|e| e.id)
    }

    /// Id of the continuation piece `prefix + s`.
    pub(crate) fn get_continuation(&self, s: &str) -> Option<u32> {
        self.continuation
            .find(hash(s), |e| self.span(e) == s)
            .map(|e| e.id)
    }

    /// `(token, id)` for every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        self.all.iter().map(|e| (self.span(e), e.id))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.all.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_overwrite() {
        let mut v = Vocab::new("##", 4);
        v.insert("un", 0, true);
        v.insert("##able", 1, true);
        v.insert("##", 2, true);
        assert_eq!(v.get("un"), Some(0));
        assert_eq!(v.get("##able"), Some(1));
        assert_eq!(v.get_continuation("able"), Some(1));
        assert_eq!(v.get_continuation("un"), None);
        assert_eq!(v.get_continuation(""), None);
        v.insert("##able", 7, true);
        assert_eq!(v.get_continuation("able"), Some(7));
        v.insert("un", 9, false);
        assert_eq!(v.get("un"), Some(0));
        assert_eq!(v.len(), 3);
        v.set_prefix("un");
        assert_eq!(v.get_continuation("able"), None);
        assert_eq!(v.get_continuation(""), None);
        v.insert("unzip", 4, true);
        assert_eq!(v.get_continuation("zip"), Some(4));
    }
}
