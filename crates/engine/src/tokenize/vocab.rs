//! The WordPiece vocabulary as hash tables of byte spans into one arena: all entries, and the
//! continuation entries (`##x`) keyed without their prefix. The arena is the tokenizer file itself
//! (memory-mapped, or compiled into the binary) followed by the few tokens that had to be decoded or
//! were added, so loading a 30k-entry vocabulary copies no token and allocates two tables.

use std::borrow::Cow;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use std::sync::Arc;

use super::prepared::Frozen;
use crate::bytes::Bytes;

#[derive(Debug, Clone, Copy)]
struct Entry {
    start: u32,
    len: u32,
    id: u32,
}

/// The bytes tokens are spans of: `base` (usually the tokenizer file), then `extra`.
pub(crate) struct Arena {
    /// Keeps the bytes `base_ptr` points into alive (they never move: a mapping, a box or static).
    _owner: Option<Arc<Bytes>>,
    base_ptr: *const u8,
    base_len: usize,
    extra: Vec<u8>,
}

// SAFETY: `base_ptr` only ever reads the immutable bytes `_owner` keeps alive; the rest is owned data.
unsafe impl Send for Arena {}
// SAFETY: as above; nothing is mutated through a shared reference.
unsafe impl Sync for Arena {}

impl Default for Arena {
    fn default() -> Self {
        Arena {
            _owner: None,
            base_ptr: std::ptr::NonNull::dangling().as_ptr(),
            base_len: 0,
            extra: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Arena({} + {} bytes)", self.base_len, self.extra.len())
    }
}

impl Arena {
    /// An arena over `base`; spans `0..base.len()` are its bytes.
    pub(crate) fn new(base: Arc<Bytes>) -> Self {
        Arena {
            base_ptr: base.as_ptr(),
            base_len: base.len(),
            _owner: Some(base),
            extra: Vec::new(),
        }
    }

    /// The base bytes. Read through a plain pointer because this sits on the tokenizer's hottest
    /// path (every vocabulary probe): going through `Arc<Bytes>` and its enum cost 9% of Model2Vec
    /// throughput (cargo bench --bench latency -- static).
    fn base(&self) -> &[u8] {
        // SAFETY: `base_ptr`/`base_len` describe `_owner`'s bytes (or are an empty dangling slice),
        // which live as long as `self` and are never written.
        unsafe { std::slice::from_raw_parts(self.base_ptr, self.base_len) }
    }

    #[inline]
    fn get(&self, e: &Entry) -> &[u8] {
        let (start, len) = (e.start as usize, e.len as usize);
        if start < self.base_len {
            &self.base()[start..start + len]
        } else {
            &self.extra[start - self.base_len..][..len]
        }
    }

    /// Appends `token`, returning its start.
    fn push(&mut self, token: &[u8]) -> usize {
        let start = self.base_len + self.extra.len();
        self.extra.extend_from_slice(token);
        start
    }

    fn pop_to(&mut self, start: usize) {
        self.extra.truncate(start - self.base_len);
    }
}

/// Token string → id, for whole-word and continuation lookups: hash tables built at load, or
/// a prepared file's tables read in place ([`prepared`](super::prepared)).
#[derive(Debug, Default)]
pub(crate) struct Vocab {
    arena: Arena,
    tables: Tables,
    /// When set, the lookups go there and `arena`/`tables` are empty.
    frozen: Option<Frozen>,
    prefix: String,
}

/// The hash tables (kept apart from the arena so the arena can be read while they grow).
#[derive(Debug, Default)]
struct Tables {
    all: HashTable<Entry>,
    continuation: HashTable<Entry>,
    max_id: Option<u32>,
}

fn hash(s: &[u8]) -> u64 {
    FxBuildHasher.hash_one(s)
}

impl Tables {
    fn with_capacity(capacity: usize) -> Self {
        Tables {
            all: HashTable::with_capacity(capacity),
            continuation: HashTable::with_capacity(capacity / 4),
            max_id: None,
        }
    }

    /// Adds `new` (a span of `arena`); false when the token was there before (its id then updated
    /// if `overwrite`).
    fn insert(&mut self, arena: &Arena, prefix: &[u8], new: Entry, overwrite: bool) -> bool {
        let token = arena.get(&new);
        let rest = token.strip_prefix(prefix).filter(|r| !r.is_empty());
        match self.all.entry(
            hash(token),
            |e| arena.get(e) == token,
            |e| hash(arena.get(e)),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                if overwrite {
                    o.get_mut().id = new.id;
                    if let Some(rest) = rest
                        && let Some(c) = self
                            .continuation
                            .find_mut(hash(rest), |c| arena.get(c) == rest)
                    {
                        c.id = new.id;
                    }
                }
                return false;
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(new);
            }
        }
        self.max_id = self.max_id.max(Some(new.id));
        if let Some(rest) = rest {
            let p = prefix.len() as u32;
            let c = Entry {
                start: new.start + p,
                len: new.len - p,
                id: new.id,
            };
            self.continuation
                .insert_unique(hash(rest), c, |e| hash(arena.get(e)));
        }
        true
    }
}

impl Vocab {
    /// An empty vocabulary whose continuation entries start with `prefix` (usually `##`).
    pub(crate) fn new(prefix: &str, capacity: usize) -> Self {
        Vocab {
            arena: Arena::default(),
            tables: Tables::with_capacity(capacity),
            frozen: None,
            prefix: prefix.to_string(),
        }
    }

    /// A prepared file's vocabulary, used in place.
    pub(crate) fn from_frozen(frozen: Frozen) -> Self {
        Vocab {
            arena: Arena::default(),
            tables: Tables::default(),
            prefix: frozen.prefix().to_string(),
            frozen: Some(frozen),
        }
    }

    /// Turns a prepared file's vocabulary into built tables (before a change to it).
    fn thaw(&mut self) {
        let Some(frozen) = self.frozen.take() else {
            return;
        };
        let mut v = Vocab::new(frozen.prefix(), frozen.len());
        for (token, id) in frozen.iter() {
            let start = v.arena.push(token);
            let new = Entry {
                start: start as u32,
                len: token.len() as u32,
                id,
            };
            v.tables.insert(&v.arena, v.prefix.as_bytes(), new, true);
        }
        *self = v;
    }

    /// The bytes of this vocabulary's prepared file (see [`prepared`](super::prepared)) for
    /// the tokenizer.json with `sha256`, where it stood at `span`.
    pub(crate) fn prepared_bytes(
        &self,
        sha256: &[u8; 32],
        span: (usize, usize),
    ) -> Option<Vec<u8>> {
        if self.frozen.is_some() {
            return None;
        }
        let list = |t: &HashTable<Entry>| -> Vec<(&[u8], u32)> {
            t.iter().map(|e| (self.arena.get(e), e.id)).collect()
        };
        let (all, cont) = (list(&self.tables.all), list(&self.tables.continuation));
        super::prepared::encode(sha256, span, &all, &cont, &self.prefix, self.tables.max_id)
    }

    /// Adds `token`; a token seen before keeps its first id unless `overwrite` (JSON maps: last wins).
    pub(crate) fn insert(&mut self, token: &str, id: u32, overwrite: bool) {
        if let Some(f) = &self.frozen {
            if !overwrite && f.get(token.as_bytes()).is_some() {
                return;
            }
            self.thaw();
        }
        let start = self.arena.push(token.as_bytes());
        let new = Entry {
            start: start as u32,
            len: token.len() as u32,
            id,
        };
        if !self
            .tables
            .insert(&self.arena, self.prefix.as_bytes(), new, overwrite)
        {
            self.arena.pop_to(start);
        }
    }

    /// Changes the continuation prefix, rebuilding the continuation table if it differs.
    pub(crate) fn set_prefix(&mut self, prefix: &str) {
        if prefix == self.prefix {
            return;
        }
        self.thaw();
        self.prefix = prefix.to_string();
        let t = &mut self.tables;
        t.continuation.clear();
        let arena = &self.arena;
        let p = prefix.as_bytes();
        for e in t.all.iter() {
            if arena.get(e).len() > p.len() && arena.get(e).starts_with(p) {
                let c = Entry {
                    start: e.start + p.len() as u32,
                    len: e.len - p.len() as u32,
                    id: e.id,
                };
                t.continuation
                    .insert_unique(hash(arena.get(&c)), c, |x| hash(arena.get(x)));
            }
        }
    }

    /// Builds the vocabulary from the JSON object `{"token": id, ...}` that starts at byte `at` of
    /// `arena`'s base (tokenizer.json's `model.vocab`), and returns it with the object's length in
    /// bytes. Strict: anything but string keys and integer ids in `0..2^32` is an error. Hand-scanned
    /// because serde_json's visitor took 94% of a static model's start-up (19.6 M of 21 M
    /// instructions, callgrind); serde_json remains the reference (`scan_matches_serde`). Tokens
    /// without escapes stay where they are in the file. Later duplicates win, as in a JSON map.
    pub(crate) fn from_json_object(
        mut arena: Arena,
        at: usize,
        prefix: &str,
    ) -> Result<(Self, usize), String> {
        let base = arena.base();
        let b = base.get(at..).unwrap_or_default();
        let eof = || "unexpected end of the vocabulary".to_string();
        let ws = |i: usize| super::json_scan::ws(b, i);
        let mut i = ws(0);
        if b.get(i) != Some(&b'{') {
            return Err("not a JSON object".into());
        }
        // ~12 bytes per entry in tokenizer.json vocabularies.
        let mut tables = Tables::with_capacity(b.len() / 12 + 16);
        let p = prefix.as_bytes();
        // Tokens with escapes, decoded, with where they stood: added once the scan is done.
        let mut decoded: Vec<(String, u32, u32)> = Vec::new();
        i = ws(i + 1);
        let end = if b.get(i) == Some(&b'}') {
            i + 1
        } else {
            loop {
                if b.get(i) != Some(&b'"') {
                    return Err(format!("expected a token string at byte {i}"));
                }
                let start = i + 1;
                // Most tokens: no escape, so the first special byte is the closing quote.
                let n = b[start..]
                    .iter()
                    .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                    .ok_or_else(eof)?;
                let mut j = start + n;
                let mut text = None;
                if b[j] != b'"' {
                    // Escapes (or a control character, which serde_json rejects): serde_json reads it.
                    let mut k = j;
                    loop {
                        match *b.get(k).ok_or_else(eof)? {
                            b'"' => break,
                            b'\\' => k += 2,
                            _ => k += 1,
                        }
                    }
                    j = k;
                    let t =
                        serde_json::from_slice::<String>(&b[i..=j]).map_err(|e| e.to_string())?;
                    text = Some(t);
                }
                i = ws(j + 1);
                if b.get(i) != Some(&b':') {
                    return Err(format!("expected ':' at byte {i}"));
                }
                i = ws(i + 1);
                let digits_at = i;
                let mut id: u64 = 0;
                while let Some(&d) = b.get(i).filter(|c| c.is_ascii_digit()) {
                    id = id * 10 + u64::from(d - b'0');
                    i += 1;
                    if id > u64::from(u32::MAX) {
                        break;
                    }
                }
                let next = ws(i);
                let digits = i - digits_at;
                if digits == 0
                    || id > u64::from(u32::MAX)
                    || (digits > 1 && b[digits_at] == b'0')
                    || !matches!(b.get(next), Some(b',' | b'}'))
                {
                    let token =
                        text.unwrap_or_else(|| String::from_utf8_lossy(&b[start..j]).into_owned());
                    return Err(format!("the id of {token:?} is not an integer in 0..2^32"));
                }
                let (start, id) = ((at + start) as u32, id as u32);
                match text {
                    Some(t) => decoded.push((t, id, start)),
                    None => {
                        let e = Entry {
                            start,
                            len: (at + j) as u32 - start,
                            id,
                        };
                        tables.insert(&arena, p, e, true);
                    }
                }
                if b[next] == b'}' {
                    break next + 1;
                }
                i = ws(next + 1);
            }
        };
        // A decoded token replaces an equal plain one only if it came later in the file.
        for (t, id, pos) in decoded {
            let start = arena.push(t.as_bytes());
            let new = Entry {
                start: start as u32,
                len: t.len() as u32,
                id,
            };
            let later = tables
                .all
                .find(hash(t.as_bytes()), |e| arena.get(e) == t.as_bytes())
                .is_none_or(|e| (e.start as usize) >= arena.base_len || e.start < pos);
            if !tables.insert(&arena, p, new, later) {
                arena.pop_to(start);
            }
        }
        let vocab = Vocab {
            arena,
            tables,
            frozen: None,
            prefix: prefix.to_string(),
        };
        Ok((vocab, end))
    }

    /// Largest id inserted (`None` when empty).
    pub(crate) fn max_id(&self) -> Option<u32> {
        match &self.frozen {
            Some(f) => f.max_id(),
            None => self.tables.max_id,
        }
    }

    /// Id of a word-initial piece (any entry, including `##x` ones, as in HF).
    #[inline]
    pub(crate) fn get(&self, s: &str) -> Option<u32> {
        let s = s.as_bytes();
        if let Some(f) = &self.frozen {
            return f.get(s);
        }
        self.tables
            .all
            .find(hash(s), |e| self.arena.get(e) == s)
            .map(|e| e.id)
    }

    /// Id of the continuation piece `prefix + s`.
    #[inline]
    pub(crate) fn get_continuation(&self, s: &str) -> Option<u32> {
        let s = s.as_bytes();
        if let Some(f) = &self.frozen {
            return f.get_continuation(s);
        }
        self.tables
            .continuation
            .find(hash(s), |e| self.arena.get(e) == s)
            .map(|e| e.id)
    }

    /// `(token, id)` for every entry, in no particular order.
    pub(crate) fn iter(&self) -> Box<dyn Iterator<Item = (Cow<'_, str>, u32)> + '_> {
        match &self.frozen {
            Some(f) => Box::new(f.iter().map(|(t, id)| (String::from_utf8_lossy(t), id))),
            None => Box::new(
                self.tables
                    .all
                    .iter()
                    .map(|e| (String::from_utf8_lossy(self.arena.get(e)), e.id)),
            ),
        }
    }

    /// Whether lookups read a prepared file's tables.
    #[cfg(test)]
    pub(crate) fn is_prepared(&self) -> bool {
        self.frozen.is_some()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        match &self.frozen {
            Some(f) => f.len(),
            None => self.tables.all.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arena(json: &str) -> Arena {
        Arena::new(Arc::new(Bytes::Owned(json.as_bytes().into())))
    }

    #[test]
    fn scan_matches_serde() {
        let json = r###" { "a":0, "##b" : 1,"\u00e9\"q\\":2,
            "a": 3, "":4, "日本": 4294967295 } "###;
        let (v, len) = Vocab::from_json_object(arena(json), 0, "##").unwrap();
        assert_eq!(len, json.trim_end().len());
        let want: std::collections::HashMap<String, u32> = serde_json::from_str(json).unwrap();
        let mut got: Vec<(String, u32)> = v.iter().map(|(t, i)| (t.to_string(), i)).collect();
        let mut want: Vec<(String, u32)> = want.into_iter().collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(v.get_continuation("b"), Some(1));
        // An escaped spelling of a plain token: whichever comes later in the file wins.
        for json in [
            r#"{"a":1, "\u0061":2}"#,
            r#"{"\u0061":2, "a":1}"#,
            r#"{"\u0061":2, "a":1, "\u0061":3}"#,
        ] {
            let want: std::collections::HashMap<String, u32> = serde_json::from_str(json).unwrap();
            let (v, _) = Vocab::from_json_object(arena(json), 0, "##").unwrap();
            assert_eq!(v.get("a"), want.get("a").copied(), "{json}");
            assert_eq!(v.len(), 1);
        }
        for bad in [
            r#"{"a": -1}"#,
            r#"{"a": 1.5}"#,
            r#"{"a": 4294967296}"#,
            r#"{"a": "1"}"#,
            r#"{"a": 1"#,
            "[]",
            r#"{"a": 01}"#,
            r#"{"a": 1,}"#,
            r#"{"a" 1}"#,
            r#"{"a": 1 "b": 2}"#,
            "{\"a\u{1}\": 1}",
            "{\"\x01\": 1}",
            r#"{"\q": 1}"#,
            r#"{"a": 1e3}"#,
            r#"{,"a": 1}"#,
        ] {
            assert!(
                Vocab::from_json_object(arena(bad), 0, "##").is_err(),
                "{bad}"
            );
        }
    }

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
    }

    /// A prepared vocabulary answers as the built one, and turns back into built tables when
    /// changed (a token added, another prefix).
    #[test]
    fn prepared_vocabulary_and_thaw() {
        let mut v = Vocab::new("##", 4);
        for (i, w) in ["[UNK]", "un", "##able", "##", "able"].iter().enumerate() {
            v.insert(w, i as u32, true);
        }
        let sha = [1u8; 32];
        let bytes = v.prepared_bytes(&sha, (0, 2)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        super::super::prepared::write(dir.path(), &sha, &bytes).unwrap();
        let (f, _, _) = super::super::prepared::open(dir.path(), &sha).unwrap();
        let mut p = Vocab::from_frozen(f);
        assert!(p.is_prepared());
        for s in ["[UNK]", "un", "##able", "##", "able", "x", ""] {
            assert_eq!(p.get(s), v.get(s), "{s}");
            assert_eq!(p.get_continuation(s), v.get_continuation(s), "{s}");
        }
        assert_eq!((p.len(), p.max_id()), (5, Some(4)));
        // Present and not overwritten: still the file's tables.
        p.insert("un", 9, false);
        assert!(p.is_prepared());
        assert_eq!(p.get("un"), Some(1));
        p.insert("new", 7, false);
        assert!(!p.is_prepared());
        assert_eq!(
            (p.get("new"), p.get("un"), p.get_continuation("able")),
            (Some(7), Some(1), Some(2))
        );
        p.set_prefix("@@");
        assert_eq!(p.get_continuation("able"), None);
    }
}
