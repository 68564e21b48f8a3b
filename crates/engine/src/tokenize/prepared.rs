//! A WordPiece vocabulary prepared once into a file that later loads map and probe as it is —
//! its hash tables, entries and token bytes — instead of scanning tokenizer.json's vocabulary
//! and building tables at every start (15.0 M of the 54.4 M instructions of a one-sentence cold
//! start with the built-in model, callgrind).
//!
//! A file is named by the sha256 of the tokenizer.json it was made from and the format version,
//! records that sha256 and where the vocabulary object stands in the file, and is checked when
//! read (a file for other bytes, or a damaged one, is not used and is remade). Written to a
//! temporary file, fsynced and renamed: a crash or a second writer leaves no file or a whole one.
//! Best effort, as the prepared weights: an unwritable folder means the vocabulary is scanned.
//!
//! Layout (little-endian; every section starts on 8 bytes):
//! ```text
//! MAGIC (16) | sha256 (32) | 10 × u32: version, vocab_at, vocab_len, n_all, n_cont,
//!   all_bits, cont_bits, max_id + 1 (0: empty), prefix_len, arena_len | pad to 8
//! all slots    [u64; 1 << all_bits]    (tag << 32) | (entry index + 1); 0 is empty
//! cont slots   [u64; 1 << cont_bits]
//! all entries  [(start, len, id): 3 × u32; n_all]   spans of the arena
//! cont entries [(start, len, id); n_cont]           continuation pieces without their prefix
//! prefix       [u8; prefix_len]
//! arena        [u8; arena_len]
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bytes::Bytes;
use crate::fingerprint::hex;

const MAGIC: &[u8; 16] = b"sembed-vocab\0\0\0\0";
/// Bumped whenever the layout or [`hash`] changes.
const VERSION: u32 = 2;
const HEADER: usize = 16 + 32 + 10 * 4;

/// The hash of the flat tables: stable across builds and platforms (it is stored), unlike the
/// hashers of `std` or `rustc-hash`. Eight bytes per step, then a folded multiply.
pub(crate) fn hash(s: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (s.len() as u64).wrapping_mul(K);
    let (words, rest) = s.as_chunks::<8>();
    for w in words {
        h = (h ^ u64::from_le_bytes(*w)).wrapping_mul(K).rotate_left(31);
    }
    // The last 1–7 bytes without a variable-length copy (a `memcpy` call per lookup cost 30 % of
    // Model2Vec throughput): two overlapping 4-byte reads, or three single bytes (the length is
    // already in `h`).
    let n = rest.len();
    if n > 0 {
        let w = if n >= 4 {
            let lo = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let hi = u32::from_le_bytes([rest[n - 4], rest[n - 3], rest[n - 2], rest[n - 1]]);
            u64::from(lo) | u64::from(hi) << 32
        } else {
            u64::from(rest[0]) | u64::from(rest[n / 2]) << 8 | u64::from(rest[n - 1]) << 16
        };
        h = (h ^ w).wrapping_mul(K).rotate_left(31);
    }
    // One folded multiply spreads every input bit over both halves (index and tag).
    let m = u128::from(h).wrapping_mul(0xff51_afd7_ed55_8ccd);
    (m as u64) ^ (m >> 64) as u64
}

/// One vocabulary entry: a span of the arena and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(crate) struct FlatEntry {
    pub start: u32,
    pub len: u32,
    pub id: u32,
}

/// A table in the file's form, built in memory (to be written).
struct FlatTable {
    slots: Vec<u64>,
    entries: Vec<FlatEntry>,
}

impl FlatTable {
    /// Open addressing with linear probing at a load of at most one half.
    fn build(arena: &[u8], entries: Vec<FlatEntry>) -> (Self, u32) {
        let bits = (entries.len() * 2)
            .next_power_of_two()
            .max(16)
            .trailing_zeros();
        let mask = (1usize << bits) - 1;
        let mut slots = vec![0u64; 1 << bits];
        for (i, e) in entries.iter().enumerate() {
            let h = hash(&arena[e.start as usize..][..e.len as usize]);
            let mut at = h as usize & mask;
            while slots[at] != 0 {
                at = (at + 1) & mask;
            }
            slots[at] = (h >> 32 << 32) | (i as u64 + 1);
        }
        (FlatTable { slots, entries }, bits)
    }
}

/// The tables of a prepared file, read in place. The pointers point into `_owner`'s bytes,
/// which this keeps alive; every entry's span was checked to lie in the arena when opened.
pub(crate) struct Frozen {
    _owner: Arc<Bytes>,
    all: Probe,
    cont: Probe,
    arena: (*const u8, usize),
    max_id: Option<u32>,
    prefix: String,
}

// SAFETY: the raw pointers only read immutable bytes that `_owner` keeps alive.
unsafe impl Send for Frozen {}
// SAFETY: as above; nothing is ever written through them.
unsafe impl Sync for Frozen {}

impl std::fmt::Debug for Frozen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frozen({} + {} entries)", self.all.n, self.cont.n)
    }
}

#[derive(Clone, Copy)]
struct Probe {
    slots: *const u64,
    mask: usize,
    entries: *const FlatEntry,
    n: usize,
}

impl Frozen {
    fn arena(&self) -> &[u8] {
        // SAFETY: a span of `_owner`'s bytes (checked in `open`), alive as long as `self`.
        unsafe { std::slice::from_raw_parts(self.arena.0, self.arena.1) }
    }

    fn slots(p: &Probe) -> &[u64] {
        // SAFETY: `mask + 1` u64s at an 8-aligned offset of the owner's bytes (checked in `open`).
        unsafe { std::slice::from_raw_parts(p.slots, p.mask + 1) }
    }

    fn entries(p: &Probe) -> &[FlatEntry] {
        // SAFETY: `n` entries at a 4-aligned offset of the owner's bytes (checked in `open`).
        unsafe { std::slice::from_raw_parts(p.entries, p.n) }
    }

    #[inline]
    fn find(&self, p: &Probe, s: &[u8]) -> Option<u32> {
        let (slots, entries, arena) = (Self::slots(p), Self::entries(p), self.arena());
        let h = hash(s);
        let tag = h >> 32;
        let mut at = h as usize & p.mask;
        // Bounded: a damaged file with no empty slot must not loop for ever.
        for _ in 0..slots.len() {
            let slot = slots[at];
            if slot == 0 {
                return None;
            }
            if slot >> 32 == tag
                && let Some(e) = entries.get((slot as u32 as usize).wrapping_sub(1))
                && arena.get(e.start as usize..e.start as usize + e.len as usize) == Some(s)
            {
                return Some(e.id);
            }
            at = (at + 1) & p.mask;
        }
        None
    }

    /// Id of a whole-word lookup (any entry).
    #[inline]
    pub(crate) fn get(&self, s: &[u8]) -> Option<u32> {
        self.find(&self.all, s)
    }

    /// Id of the continuation piece `prefix + s`.
    #[inline]
    pub(crate) fn get_continuation(&self, s: &[u8]) -> Option<u32> {
        self.find(&self.cont, s)
    }

    /// Every entry as (token bytes, id).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], u32)> {
        let arena = self.arena();
        Self::entries(&self.all)
            .iter()
            .map(move |e| (&arena[e.start as usize..][..e.len as usize], e.id))
    }

    pub(crate) fn len(&self) -> usize {
        self.all.n
    }

    pub(crate) fn max_id(&self) -> Option<u32> {
        self.max_id
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// Where the prepared vocabulary of the tokenizer.json with this sha256 lives in `dir`.
fn file_path(dir: &Path, sha256: &[u8; 32]) -> PathBuf {
    dir.join(format!("{}-vocab-v{VERSION}.bin", hex(sha256)))
}

/// The prepared vocabulary for the tokenizer.json with `sha256`, with the byte span of
/// `model.vocab` in that file; `None` when there is none (or it is not valid).
pub(crate) fn open(dir: &Path, sha256: &[u8; 32]) -> Option<(Frozen, usize, usize)> {
    let file = std::fs::File::open(file_path(dir, sha256)).ok()?;
    // SAFETY: a read-only map of a file sembed writes once (renamed into place, never changed);
    // its content is checked below, and every later read is bounds-checked or within the
    // checked spans.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    from_bytes(Arc::new(Bytes::Mmap(map)), sha256)
}

fn from_bytes(owner: Arc<Bytes>, sha256: &[u8; 32]) -> Option<(Frozen, usize, usize)> {
    let b: &[u8] = &owner;
    if !cfg!(target_endian = "little")
        || b.len() < HEADER
        || &b[..16] != MAGIC
        || &b[16..48] != sha256
        || !(b.as_ptr() as usize).is_multiple_of(8)
    {
        return None;
    }
    let u = |i: usize| -> usize {
        let at = 48 + 4 * i;
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
    };
    let (version, vocab_at, vocab_len, n_all, n_cont) = (u(0), u(1), u(2), u(3), u(4));
    let (all_bits, cont_bits, max_id1, prefix_len, arena_len) = (u(5), u(6), u(7), u(8), u(9));
    if version != VERSION as usize || all_bits > 30 || cont_bits > 30 {
        return None;
    }
    let mut at = HEADER.next_multiple_of(8);
    let mut take = |len: usize| {
        let start = at;
        at = (at + len).next_multiple_of(8);
        (start, len)
    };
    let all_slots = take(8 << all_bits);
    let cont_slots = take(8 << cont_bits);
    let all_entries = take(12 * n_all);
    let cont_entries = take(12 * n_cont);
    let prefix = take(prefix_len);
    let arena = take(arena_len);
    if arena.0 + arena.1 != b.len() || n_all > (1 << all_bits) || n_cont > (1 << cont_bits) {
        return None;
    }
    let entries = |(start, len): (usize, usize)| -> Option<&[FlatEntry]> {
        bytemuck::try_cast_slice(&b[start..start + len]).ok()
    };
    let (all, cont) = (entries(all_entries)?, entries(cont_entries)?);
    if all
        .iter()
        .chain(cont)
        .any(|e| e.start as usize + e.len as usize > arena_len)
    {
        return None;
    }
    let prefix = std::str::from_utf8(&b[prefix.0..prefix.0 + prefix.1])
        .ok()?
        .to_string();
    let probe = |slots: (usize, usize), bits: usize, entries: &[FlatEntry]| Probe {
        slots: b[slots.0..].as_ptr().cast(),
        mask: (1 << bits) - 1,
        entries: entries.as_ptr(),
        n: entries.len(),
    };
    let frozen = Frozen {
        all: probe(all_slots, all_bits, all),
        cont: probe(cont_slots, cont_bits, cont),
        arena: (b[arena.0..].as_ptr(), arena_len),
        max_id: max_id1.checked_sub(1).map(|m| m as u32),
        prefix,
        _owner: owner.clone(),
    };
    Some((frozen, vocab_at, vocab_len))
}

/// The file's bytes for a vocabulary: `all` and `cont` as (token, id), `prefix` its continuation
/// prefix, found at `span` of the tokenizer.json with `sha256`.
pub(crate) fn encode(
    sha256: &[u8; 32],
    span: (usize, usize),
    all: &[(&[u8], u32)],
    cont: &[(&[u8], u32)],
    prefix: &str,
    max_id: Option<u32>,
) -> Option<Vec<u8>> {
    let mut arena = Vec::new();
    let mut entries = |list: &[(&[u8], u32)]| -> Option<Vec<FlatEntry>> {
        list.iter()
            .map(|(t, id)| {
                let e = FlatEntry {
                    start: u32::try_from(arena.len()).ok()?,
                    len: u32::try_from(t.len()).ok()?,
                    id: *id,
                };
                arena.extend_from_slice(t);
                Some(e)
            })
            .collect()
    };
    let (all, cont) = (entries(all)?, entries(cont)?);
    let (all, all_bits) = FlatTable::build(&arena, all);
    let (cont, cont_bits) = FlatTable::build(&arena, cont);
    let header = [
        VERSION,
        u32::try_from(span.0).ok()?,
        u32::try_from(span.1).ok()?,
        all.entries.len() as u32,
        cont.entries.len() as u32,
        all_bits,
        cont_bits,
        max_id.map_or(Some(0), |m| m.checked_add(1))?,
        u32::try_from(prefix.len()).ok()?,
        u32::try_from(arena.len()).ok()?,
    ];
    let mut out = Vec::with_capacity(HEADER + 8 * (all.slots.len() + cont.slots.len()));
    let pad = |out: &mut Vec<u8>| out.resize(out.len().next_multiple_of(8), 0);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(sha256);
    header
        .iter()
        .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    pad(&mut out);
    for t in [&all, &cont] {
        t.slots
            .iter()
            .for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
        pad(&mut out);
    }
    for t in [&all, &cont] {
        for e in &t.entries {
            [e.start, e.len, e.id]
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        pad(&mut out);
    }
    out.extend_from_slice(prefix.as_bytes());
    pad(&mut out);
    out.extend_from_slice(&arena);
    Some(out)
}

/// Writes `bytes` (from [`encode`]) as the prepared vocabulary for `sha256` in `dir`: to a
/// temporary file, fsynced, renamed into place. Errors are the caller's to ignore.
pub(crate) fn write(dir: &Path, sha256: &[u8; 32], bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}-vocab.tmp-{}-{:?}",
        hex(sha256),
        std::process::id(),
        std::thread::current().id()
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, file_path(dir, sha256))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    type Tokens = Vec<(&'static [u8], u32)>;

    fn sample() -> (Tokens, Tokens) {
        let all: Vec<(&[u8], u32)> = vec![
            (b"[UNK]", 0),
            (b"un", 1),
            (b"##able", 2),
            (b"##", 3),
            ("日本".as_bytes(), 4),
            (b"a-token-longer-than-eight-bytes", 7),
        ];
        let cont: Vec<(&[u8], u32)> = vec![(b"able", 2)];
        (all, cont)
    }

    fn open_bytes(bytes: Vec<u8>, sha: &[u8; 32]) -> Option<(Frozen, usize, usize)> {
        // Page-aligned, as a map of the file would be.
        let mut map = memmap2::MmapMut::map_anon(bytes.len()).unwrap();
        map.copy_from_slice(&bytes);
        from_bytes(Arc::new(Bytes::Mmap(map.make_read_only().unwrap())), sha)
    }

    #[test]
    fn written_tables_answer_every_lookup() {
        let (all, cont) = sample();
        let sha = [3u8; 32];
        let bytes = encode(&sha, (10, 200), &all, &cont, "##", Some(7)).unwrap();
        let (f, at, len) = open_bytes(bytes.clone(), &sha).expect("valid");
        assert_eq!(
            (at, len, f.len(), f.max_id(), f.prefix()),
            (10, 200, 6, Some(7), "##")
        );
        for (t, id) in &all {
            assert_eq!(f.get(t), Some(*id), "{t:?}");
        }
        assert_eq!(f.get_continuation(b"able"), Some(2));
        assert_eq!(f.get_continuation(b"un"), None);
        for miss in [
            &b""[..],
            b"u",
            b"una",
            b"##abl",
            b"able",
            b"a-token-longer-than-eight-byte",
        ] {
            assert_eq!(f.get(miss), None, "{miss:?}");
        }
        let mut got: Vec<_> = f.iter().map(|(t, id)| (t.to_vec(), id)).collect();
        let mut want: Vec<_> = all.iter().map(|(t, id)| (t.to_vec(), *id)).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        // Another file's sha, another version, a damaged header or arena: not used.
        assert!(open_bytes(bytes.clone(), &[4u8; 32]).is_none());
        let mut v2 = bytes.clone();
        v2[48] = (VERSION + 1) as u8;
        assert!(open_bytes(v2, &sha).is_none());
        assert!(open_bytes(bytes[..bytes.len() - 1].to_vec(), &sha).is_none());
        let mut long = bytes.clone();
        let arena_len_at = 48 + 4 * 9;
        long[arena_len_at] = long[arena_len_at].wrapping_sub(40);
        assert!(open_bytes(long, &sha).is_none());
    }

    /// A table whose slots are all taken (a damaged file) ends a missing lookup instead of
    /// probing for ever; a slot naming no entry is a miss, not a panic.
    #[test]
    fn damaged_slots_end_lookups() {
        let (all, cont) = sample();
        let sha = [5u8; 32];
        let mut bytes = encode(&sha, (0, 0), &all, &cont, "##", None).unwrap();
        let slots_at = HEADER.next_multiple_of(8);
        let all_bits = bytes[48 + 4 * 5];
        for i in 0..1usize << all_bits {
            let at = slots_at + 8 * i;
            let v = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
            if v == 0 {
                bytes[at..at + 8].copy_from_slice(&(u64::MAX).to_le_bytes());
            }
        }
        let (f, _, _) = open_bytes(bytes, &sha).unwrap();
        assert_eq!(f.get(b"not there"), None);
        assert_eq!(f.get(b"un"), Some(1));
    }

    #[test]
    fn files_are_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (all, cont) = sample();
        let sha = [9u8; 32];
        let bytes = encode(&sha, (1, 2), &all, &cont, "##", Some(7)).unwrap();
        write(dir.path(), &sha, &bytes).unwrap();
        write(dir.path(), &sha, &bytes).unwrap();
        let (f, ..) = open(dir.path(), &sha).unwrap();
        assert_eq!(f.get(b"un"), Some(1));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [format!("{}-vocab-v{VERSION}.bin", hex(&sha))]);
        assert!(open(dir.path(), &[1u8; 32]).is_none());
    }
}
