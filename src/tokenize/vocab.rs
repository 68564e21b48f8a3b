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
        let start = self.text.len();
        self.text.push_str(token);
        if !self.insert_span(start, token.len(), id, overwrite) {
            self.text.truncate(start);
        }
    }

    /// Adds the token already in the arena at `start..start + len`; false when it was there before
    /// (its id then updated if `overwrite`).
    fn insert_span(&mut self, start: usize, len: usize, id: u32, overwrite: bool) -> bool {
        let text = &self.text;
        let span = |e: &Entry| &text[e.start as usize..(e.start + e.len) as usize];
        let token = &text[start..start + len];
        let prefix = self.prefix.as_str();
        let rest = token.strip_prefix(prefix).filter(|r| !r.is_empty());
        match self
            .all
            .entry(hash(token), |e| span(e) == token, |e| hash(span(e)))
        {
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                if overwrite {
                    o.get_mut().id = id;
                    if let Some(rest) = rest
                        && let Some(c) = self.continuation.find_mut(hash(rest), |c| span(c) == rest)
                    {
                        c.id = id;
                    }
                }
                return false;
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(Entry {
                    start: start as u32,
                    len: len as u32,
                    id,
                });
            }
        }
        self.max_id = self.max_id.max(Some(id));
        if let Some(rest) = rest {
            let p = prefix.len() as u32;
            let c = Entry {
                start: start as u32 + p,
                len: len as u32 - p,
                id,
            };
            self.continuation
                .insert_unique(hash(rest), c, |e| hash(span(e)));
        }
        true
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

    /// Builds the vocabulary from a JSON object `{"token": id, ...}` at the start of `json`
    /// (tokenizer.json's `model.vocab`; text after the object is ignored) and returns it with the
    /// object's length in bytes. Strict: anything but string keys and integer ids in `0..2^32` is an
    /// error. Hand-scanned because serde_json's visitor took 94% of a static model's start-up (19.6 M
    /// of 21 M instructions, callgrind); serde_json remains the reference (`scan_matches_serde`). The
    /// object's text becomes the arena: tokens without escapes are used where they stand. Later
    /// duplicates win, as when a JSON map is deserialized.
    pub(crate) fn from_json_object(json: &str, prefix: &str) -> Result<(Self, usize), String> {
        let b = json.as_bytes();
        let eof = || "unexpected end of the vocabulary".to_string();
        let ws = |i: usize| {
            i + b[i.min(b.len())..]
                .iter()
                .position(|c| !matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
                .unwrap_or(b.len() - i.min(b.len()))
        };
        let mut i = ws(0);
        if b.get(i) != Some(&b'{') {
            return Err("not a JSON object".into());
        }
        // The arena: the text up to the end of the object is not known yet, so take it all; the
        // tail is cut once the end is found.
        // ~12 bytes per entry in tokenizer.json vocabularies.
        let capacity = json.len() / 12 + 16;
        // Room for escaped tokens and added tokens, appended later, so the arena is not copied again.
        let mut text = String::with_capacity(json.len() + 4096);
        text.push_str(json);
        let mut v = Vocab {
            text,
            all: HashTable::with_capacity(capacity),
            continuation: HashTable::with_capacity(capacity / 4),
            prefix: prefix.to_string(),
            max_id: None,
        };
        i = ws(i + 1);
        if b.get(i) == Some(&b'}') {
            v.text.truncate(i + 1);
            return Ok((v, i + 1));
        }
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
            let mut decoded = None;
            if b[j] != b'"' {
                // Escapes (or a control character, which serde_json rejects): let serde_json read it.
                let mut k = j;
                loop {
                    match *b.get(k).ok_or_else(eof)? {
                        b'"' => break,
                        b'\\' => k += 2,
                        _ => k += 1,
                    }
                }
                j = k;
                decoded =
                    Some(serde_json::from_str::<String>(&json[i..=j]).map_err(|e| e.to_string())?);
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
            let end = ws(i);
            let digits = i - digits_at;
            if digits == 0
                || id > u64::from(u32::MAX)
                || (digits > 1 && b[digits_at] == b'0')
                || !matches!(b.get(end), Some(b',' | b'}'))
            {
                let token = decoded.as_deref().unwrap_or(&json[start..j]);
                return Err(format!("the id of {token:?} is not an integer in 0..2^32"));
            }
            match decoded {
                Some(t) => v.insert(&t, id as u32, true),
                None => {
                    v.insert_span(start, j - start, id as u32, true);
                }
            }
            if b[end] == b'}' {
                // Keep the arena to the object plus what escaped tokens appended after the input.
                if v.text.len() == json.len() {
                    v.text.truncate(end + 1);
                }
                return Ok((v, end + 1));
            }
            i = ws(end + 1);
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
    fn scan_matches_serde() {
        let json = r###" { "a":0, "##b" : 1,"\u00e9\"q\\":2,
            "a": 3, "":4, "日本": 4294967295 } "###;
        let (v, len) = Vocab::from_json_object(json, "##").unwrap();
        assert_eq!(len, json.trim_end().len());
        let want: std::collections::HashMap<String, u32> = serde_json::from_str(json).unwrap();
        let mut got: Vec<(String, u32)> = v.iter().map(|(t, i)| (t.to_string(), i)).collect();
        let mut want: Vec<(String, u32)> = want.into_iter().collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(v.get_continuation("b"), Some(1));
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
            assert!(Vocab::from_json_object(bad, "##").is_err(), "{bad}");
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
}
