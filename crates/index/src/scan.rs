//! The dense search's first pass: every chunk vector of a collection as int8 codes in one file,
//! memory-mapped and scanned front to back (an int8 code is a quarter of the f32 vector), the best
//! candidates then rescored exactly from the database.
//!
//! The file is derived from the database and never the source of truth: its header records the
//! collection generation it reflects and the highest chunk id in it. When the database has moved
//! on, new chunks (ids only grow) are appended; when deletions have made more than a quarter of
//! the records dead, it is rebuilt (into a temporary file, renamed over the old one: a reader keeps
//! the version it mapped). Dead records are dropped when candidates are looked up. Writers take an
//! exclusive lock on a side file; a killed writer leaves a header that still describes a valid
//! prefix of records.
//!
//! Record layout: `[chunk id: i64][scale: f32][norm: f32][codes: i8 × dim]`, codes
//! `round(x / scale)` with `scale = max |x| / 127`.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::{Store, blob_f32};

const MAGIC: &[u8; 8] = b"SEMBSCN1";
const HEADER: usize = 64;

/// A collection's scan file.
pub(crate) struct ScanFile {
    path: PathBuf,
    dim: usize,
    /// The database.
    db: PathBuf,
    /// The database's instance id: a scan file of another database (one deleted and created
    /// again under the same name) is never taken for this one's.
    instance: u64,
}

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    instance: u64,
    dim: u32,
    count: u64,
    generation: i64,
    max_id: i64,
}

impl Header {
    fn encode(&self) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&self.dim.to_le_bytes());
        h[16..24].copy_from_slice(&self.count.to_le_bytes());
        h[24..32].copy_from_slice(&self.generation.to_le_bytes());
        h[32..40].copy_from_slice(&self.max_id.to_le_bytes());
        h[40..48].copy_from_slice(&self.instance.to_le_bytes());
        h
    }

    fn decode(b: &[u8]) -> Option<Header> {
        if b.len() < HEADER || &b[..8] != MAGIC {
            return None;
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        Some(Header {
            instance: u64_at(40),
            dim: u32::from_le_bytes(b[8..12].try_into().unwrap_or([0; 4])),
            count: u64_at(16),
            generation: u64_at(24) as i64,
            max_id: u64_at(32) as i64,
        })
    }
}

fn record_len(dim: usize) -> usize {
    16 + dim
}

/// int8 codes of `v`, with its scale and norm.
pub(crate) fn quantize(v: &[f32], out: &mut Vec<u8>) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    out.extend_from_slice(&scale.to_le_bytes());
    out.extend_from_slice(&norm.to_le_bytes());
    out.extend(
        v.iter()
            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8 as u8),
    );
}

/// A candidate of the first pass: chunk id and approximate cosine.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub id: i64,
    pub score: f32,
}

impl ScanFile {
    pub(crate) fn new(db: &Path, collection: i64, dim: usize, instance: u64) -> ScanFile {
        let mut name = db.as_os_str().to_owned();
        name.push(format!(".scan-{collection}"));
        ScanFile {
            path: PathBuf::from(name),
            db: db.to_path_buf(),
            dim,
            instance,
        }
    }

    fn lock_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".lock");
        PathBuf::from(p)
    }

    fn header(&self) -> Option<Header> {
        let mut f = File::open(&self.path).ok()?;
        let mut b = [0u8; HEADER];
        std::io::Read::read_exact(&mut f, &mut b).ok()?;
        Header::decode(&b).filter(|h| self.ours(h))
    }

    /// The database's path, absolute through its canonical folder (what a walk compares with).
    pub(crate) fn canonical_db(&self) -> PathBuf {
        let db = self.db.clone();
        match (db.parent(), db.file_name()) {
            (Some(dir), Some(name)) => {
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                std::fs::canonicalize(dir).map_or(db.clone(), |d| d.join(name))
            }
            _ => db,
        }
    }

    fn ours(&self, h: &Header) -> bool {
        h.dim as usize == self.dim && h.instance == self.instance
    }

    /// Brings the file up to `generation` of the collection in `store`.
    pub(crate) fn refresh(&self, store: &Store, collection: i64, generation: i64) -> Result<()> {
        if self.header().is_some_and(|h| h.generation == generation) {
            return Ok(());
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.lock_path())
            .map_err(|e| Error::io(self.lock_path(), e))?;
        let _guard = Flock::exclusive(&lock).map_err(|e| Error::io(self.lock_path(), e))?;
        // Another process may have done it while we waited.
        let header = self.header();
        if header.is_some_and(|h| h.generation == generation) {
            return Ok(());
        }
        match header {
            // (A header ahead of the database is a database restored from a copy: rebuilt.)
            Some(h)
                if h.generation < generation
                    && self.dead(store, collection, &h)? * 4 <= h.count =>
            {
                self.append(store, collection, h, generation)
            }
            _ => self.rebuild(store, collection, generation),
        }
    }

    /// Records in the file whose chunks are gone: those it has, less the chunks of the collection
    /// up to its last id (all of them, from the collection's count, less the newer ones — which
    /// only a range of ids past the file's last has to count).
    fn dead(&self, store: &Store, collection: i64, h: &Header) -> Result<u64> {
        let (live, newer): (i64, i64) = store
            .conn
            .query_row(
                "SELECT (SELECT live_chunks FROM collections WHERE id = ?1),
                        (SELECT count(*) FROM chunks c JOIN docs d ON d.id = c.doc
                         WHERE c.id > ?2 AND d.collection = ?1)",
                rusqlite::params![collection, h.max_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| store.err(e))?;
        Ok(h.count.saturating_sub((live - newer).max(0) as u64))
    }

    /// Writes the records of the collection's chunks with ids above `after` to `out`; returns how
    /// many and the highest id.
    fn records(
        &self,
        store: &Store,
        collection: i64,
        after: i64,
        out: &mut impl Write,
    ) -> Result<(u64, i64)> {
        let mut st = store
            .conn
            .prepare(
                "SELECT c.id, v.vector FROM chunks c JOIN docs d ON d.id = c.doc
                 JOIN vectors v ON v.id = c.vector
                 WHERE d.collection = ?1 AND c.id > ?2 ORDER BY c.id",
            )
            .map_err(|e| store.err(e))?;
        let mut rows = st
            .query(rusqlite::params![collection, after])
            .map_err(|e| store.err(e))?;
        let (mut n, mut max) = (0u64, after);
        let mut rec = Vec::with_capacity(record_len(self.dim));
        while let Some(r) = rows.next().map_err(|e| store.err(e))? {
            let id: i64 = r.get(0).map_err(|e| store.err(e))?;
            let blob: Vec<u8> = r.get(1).map_err(|e| store.err(e))?;
            let v = blob_f32(&blob);
            if v.len() != self.dim {
                return Err(Error::Corrupt {
                    path: store.path.clone(),
                    reason: format!(
                        "a vector of {} dimensions in a {}-dimensional collection",
                        v.len(),
                        self.dim
                    ),
                });
            }
            rec.clear();
            rec.extend_from_slice(&id.to_le_bytes());
            quantize(&v, &mut rec);
            out.write_all(&rec).map_err(|e| Error::io(&self.path, e))?;
            n += 1;
            max = id;
        }
        Ok((n, max))
    }

    fn rebuild(&self, store: &Store, collection: i64, generation: i64) -> Result<()> {
        // One writer at a time (the lock): a fixed name, so a killed rebuild leaves nothing behind
        // that the next one does not overwrite.
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let result = (|| -> Result<()> {
            let f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            let mut w = std::io::BufWriter::new(f);
            w.write_all(&[0u8; HEADER])
                .map_err(|e| Error::io(&tmp, e))?;
            let (count, max_id) = self.records(store, collection, 0, &mut w)?;
            let mut f = w
                .into_inner()
                .map_err(|e| Error::io(&tmp, e.into_error()))?;
            let h = Header {
                instance: self.instance,
                dim: self.dim as u32,
                count,
                generation,
                max_id,
            };
            f.seek(SeekFrom::Start(0))
                .and_then(|_| f.write_all(&h.encode()))
                .map_err(|e| Error::io(&tmp, e))?;
            std::fs::rename(&tmp, &self.path).map_err(|e| Error::io(&self.path, e))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn append(&self, store: &Store, collection: i64, h: Header, generation: i64) -> Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        // Records past the header's count (a killed writer's) are overwritten.
        let end = HEADER as u64 + h.count * record_len(self.dim) as u64;
        f.set_len(end).map_err(|e| Error::io(&self.path, e))?;
        f.seek(SeekFrom::Start(end))
            .map_err(|e| Error::io(&self.path, e))?;
        let mut w = std::io::BufWriter::new(f);
        let (n, max_id) = self.records(store, collection, h.max_id, &mut w)?;
        let mut f = w
            .into_inner()
            .map_err(|e| Error::io(&self.path, e.into_error()))?;
        // The records are in place before the header counts them.
        f.flush().map_err(|e| Error::io(&self.path, e))?;
        let new = Header {
            count: h.count + n,
            generation,
            max_id,
            ..h
        };
        f.seek(SeekFrom::Start(0))
            .and_then(|_| f.write_all(&new.encode()))
            .map_err(|e| Error::io(&self.path, e))
    }

    /// The `n` best candidates for the query `q` (f32; its norm is divided out), approximate
    /// cosine from the int8 codes, and how many records were scanned. A large file is scanned by
    /// as many of `pool`'s threads as are free, a block at a time.
    pub(crate) fn top(
        &self,
        q: &[f32],
        n: usize,
        pool: &sembed::ThreadPool,
    ) -> Result<(Vec<Candidate>, u64)> {
        let f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        // SAFETY: read-only map of a file that writers only replace by rename or grow past what
        // its header counts (an append shortens it only back to the header's count, and only
        // records within that count are read); every read below is bounds-checked.
        let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io(&self.path, e))?;
        // Refreshed just before: anything else (another database's file) is not used.
        let Some(h) = Header::decode(&map).filter(|h| self.ours(h)) else {
            return Err(Error::Corrupt {
                path: self.path.clone(),
                reason: "the scan file does not belong to this index".into(),
            });
        };
        let rl = record_len(self.dim);
        let count = (h.count as usize).min(map.len().saturating_sub(HEADER) / rl);
        let qn = q.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        let body = &map[HEADER..HEADER + count * rl];
        let scan = |records: &[u8], heap: &mut TopN| {
            for rec in records.chunks_exact(rl) {
                let id = i64::from_le_bytes(rec[..8].try_into().unwrap_or([0; 8]));
                let scale = f32::from_le_bytes(rec[8..12].try_into().unwrap_or([0; 4]));
                let norm = f32::from_le_bytes(rec[12..16].try_into().unwrap_or([0; 4]));
                let codes: &[i8] = bytemuck::cast_slice(&rec[16..]);
                let dot = dot_i8(q, codes) * scale;
                heap.push(Candidate {
                    id,
                    score: dot / (qn * norm.max(1e-12)),
                });
            }
        };
        let mut heap = TopN::new(n);
        if count < PARALLEL_RECORDS || pool.threads() < 2 {
            scan(body, &mut heap);
        } else {
            let next = std::sync::atomic::AtomicUsize::new(0);
            let heaps = std::sync::Mutex::new(Vec::new());
            pool.run(pool.threads(), &|_| {
                let mut mine = TopN::new(n);
                loop {
                    let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let start = b * BLOCK_RECORDS;
                    if start >= count {
                        break;
                    }
                    let end = (start + BLOCK_RECORDS).min(count);
                    scan(&body[start * rl..end * rl], &mut mine);
                }
                heaps.lock().unwrap_or_else(|p| p.into_inner()).push(mine);
            });
            for h in heaps.into_inner().unwrap_or_else(|p| p.into_inner()) {
                for c in h.into_sorted() {
                    heap.push(c);
                }
            }
        }
        Ok((heap.into_sorted(), count as u64))
    }
}

/// Past this many records, a scan is shared between threads.
const PARALLEL_RECORDS: usize = 100_000;
/// Records a thread takes at a time (16 MiB of 256-dimensional codes).
const BLOCK_RECORDS: usize = 65_536;

/// `Σ q[i] · c[i]` (compiled with AVX2 + FMA where the CPU has them).
fn dot_i8(q: &[f32], c: &[i8]) -> f32 {
    #[inline(always)]
    fn body(q: &[f32], c: &[i8]) -> f32 {
        let mut acc = [0f32; 16];
        let qc = q.chunks_exact(16);
        let cc = c.chunks_exact(16);
        let tail: f32 = qc
            .remainder()
            .iter()
            .zip(cc.remainder())
            .map(|(a, &b)| a * b as f32)
            .sum();
        for (qa, ca) in qc.zip(cc) {
            for i in 0..16 {
                acc[i] += qa[i] * ca[i] as f32;
            }
        }
        acc.iter().sum::<f32>() + tail
    }
    #[cfg(target_arch = "x86_64")]
    {
        /// # Safety
        /// The CPU must have AVX2 and FMA.
        #[target_feature(enable = "avx2,fma")]
        unsafe fn fast(q: &[f32], c: &[i8]) -> f32 {
            body(q, c)
        }
        static AVX2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        if *AVX2.get_or_init(|| {
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
        }) {
            // SAFETY: AVX2 and FMA were detected just above.
            return unsafe { fast(q, c) };
        }
    }
    body(q, c)
}

/// The `n` highest-scoring candidates seen.
struct TopN {
    n: usize,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<Ranked>>,
}

#[derive(Debug, Clone, Copy)]
struct Ranked(Candidate);

impl PartialEq for Ranked {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == std::cmp::Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ranked {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0
            .score
            .total_cmp(&o.0.score)
            .then(o.0.id.cmp(&self.0.id))
    }
}

impl TopN {
    fn new(n: usize) -> Self {
        TopN {
            n: n.max(1),
            heap: std::collections::BinaryHeap::with_capacity(n.max(1) + 1),
        }
    }

    fn push(&mut self, c: Candidate) {
        if self.heap.len() < self.n {
            self.heap.push(std::cmp::Reverse(Ranked(c)));
        } else if let Some(min) = self.heap.peek()
            && Ranked(c) > min.0
        {
            self.heap.pop();
            self.heap.push(std::cmp::Reverse(Ranked(c)));
        }
    }

    fn into_sorted(self) -> Vec<Candidate> {
        let mut v: Vec<Candidate> = self.heap.into_iter().map(|r| r.0.0).collect();
        v.sort_by_key(|c| std::cmp::Reverse(Ranked(*c)));
        v
    }
}

/// An exclusive `flock` held until dropped.
struct Flock<'a>(&'a File);

impl<'a> Flock<'a> {
    fn exclusive(f: &'a File) -> std::io::Result<Flock<'a>> {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a descriptor `f` owns; it only takes an advisory lock.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(Flock(f))
    }
}

impl Drop for Flock<'_> {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: as above; unlocking a lock this process holds.
            unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_approximate_the_dot_product() {
        let v: Vec<f32> = (0..384)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 97.0)
            .collect();
        let q: Vec<f32> = (0..384)
            .map(|i| ((i * 13 % 89) as f32 - 44.0) / 61.0)
            .collect();
        let mut rec = Vec::new();
        quantize(&v, &mut rec);
        let scale = f32::from_le_bytes(rec[..4].try_into().unwrap());
        let codes: &[i8] = bytemuck::cast_slice(&rec[8..]);
        let exact: f32 = q.iter().zip(&v).map(|(a, b)| a * b).sum();
        let approx = dot_i8(&q, codes) * scale;
        assert!(
            (exact - approx).abs() < 0.01 * exact.abs().max(1.0),
            "{exact} vs {approx}"
        );
    }

    #[test]
    fn top_n_keeps_the_best_in_order() {
        let mut t = TopN::new(3);
        for (id, s) in [(1, 0.5), (2, 0.9), (3, 0.1), (4, 0.7), (5, 0.95)] {
            t.push(Candidate { id, score: s });
        }
        let ids: Vec<i64> = t.into_sorted().iter().map(|c| c.id).collect();
        assert_eq!(ids, [5, 2, 4]);
    }
}
