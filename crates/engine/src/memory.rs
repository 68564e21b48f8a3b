//! How the process's memory is managed, apart from what is stored in it: an anonymous buffer backed
//! by transparent huge pages, and advice to the kernel about mapped file bytes (drop these pages,
//! read these sparsely, map these in the background). Everything here is advice or a private
//! allocation: no result of the engine depends on whether a call succeeds.

use std::ops::Range;
use std::sync::Arc;

use crate::bytes::Bytes;

const PAGE: usize = 4096;
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
const HUGE: usize = 2 << 20;

/// Whether transparent huge pages may be had at all (`never` means no).
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) fn huge_pages_available() -> bool {
    cfg!(target_os = "linux")
        && std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .is_ok_and(|s| !s.contains("[never]"))
}

/// An anonymous buffer whose data starts on a huge-page boundary, advised to be backed by
/// transparent huge pages: filled once, then read-only.
///
/// Why: a forward pass over few tokens streams every weight once, and in a VM each 4 KiB page
/// costs a two-level page walk. Measured on a 9-row product streaming 37 MB of f32 weights:
/// 40–45 GFLOP/s from 4 KiB pages, 87 from huge pages.
///
/// WebAssembly has no anonymous mappings: there the buffer is heap memory (aligned to 64 bytes).
pub(crate) struct HugeBuffer {
    #[cfg(not(target_arch = "wasm32"))]
    map: memmap2::Mmap,
    #[cfg(target_arch = "wasm32")]
    map: Vec<u8>,
    start: usize,
    len: usize,
}

/// A [`HugeBuffer`] being filled.
pub(crate) struct HugeBufferMut {
    #[cfg(not(target_arch = "wasm32"))]
    map: memmap2::MmapMut,
    #[cfg(target_arch = "wasm32")]
    map: Vec<u8>,
    start: usize,
    len: usize,
}

impl HugeBufferMut {
    /// `len` zeroed bytes of heap; `None` when the memory is not there.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn new(len: usize) -> Option<Self> {
        // 64 bytes of slack so the data can start on a cache line; a failed allocation is `None`.
        let mut map = Vec::new();
        map.try_reserve_exact(len + 64).ok()?;
        map.resize(len + 64, 0);
        let start = (64 - map.as_ptr() as usize % 64) % 64;
        Some(HugeBufferMut { map, start, len })
    }

    /// `len` zeroed bytes, on huge pages where the system has them (else ordinary pages); `None`
    /// when the memory is not there.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn new(len: usize) -> Option<Self> {
        // One extra huge page so the data can start on a huge-page boundary whatever address the
        // kernel picks; the untouched slack is never resident.
        let map = memmap2::MmapMut::map_anon(len + HUGE).ok()?;
        #[cfg(unix)]
        if huge_pages_available() {
            let _ = map.advise(memmap2::Advice::HugePage);
        }
        let start = (HUGE - map.as_ptr() as usize % HUGE) % HUGE;
        Some(HugeBufferMut { map, start, len })
    }

    /// The writable bytes.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map[self.start..self.start + self.len]
    }

    /// Ends the filling: the pages become read-only.
    pub(crate) fn freeze(self) -> Option<HugeBuffer> {
        Some(HugeBuffer {
            #[cfg(not(target_arch = "wasm32"))]
            map: self.map.make_read_only().ok()?,
            #[cfg(target_arch = "wasm32")]
            map: self.map,
            start: self.start,
            len: self.len,
        })
    }
}

impl HugeBuffer {
    /// The bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.map[self.start..self.start + self.len]
    }
}

/// The whole 4 KiB pages inside `bytes`.
fn inner_pages(bytes: &[u8]) -> Option<Range<usize>> {
    let start = (bytes.as_ptr() as usize).next_multiple_of(PAGE);
    let end = (bytes.as_ptr() as usize + bytes.len()) / PAGE * PAGE;
    (end > start).then_some(start..end)
}

/// The 4 KiB pages that `bytes` touches.
pub(crate) fn outer_pages(bytes: &[u8]) -> Range<usize> {
    let start = bytes.as_ptr() as usize / PAGE * PAGE;
    start..bytes.as_ptr() as usize + bytes.len()
}

/// The address range of a mapping's line in `/proc/self/maps` or `smaps` (its first field,
/// `start-end` in hex); `None` for other lines.
fn mapping_range(first_field: &str) -> Option<(usize, usize)> {
    let (lo, hi) = first_field.split_once('-')?;
    Some((
        usize::from_str_radix(lo, 16).ok()?,
        usize::from_str_radix(hi, 16).ok()?,
    ))
}

/// Whether every page of `bytes` lies in a read-only mapping of a file, as `/proc/self/maps`
/// lists them (a mapping with an inode and no write permission). False when that cannot be read.
#[cfg_attr(not(feature = "builtin"), allow(dead_code))]
pub(crate) fn is_file_mapping(bytes: &[u8]) -> bool {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return false;
    };
    let (mut at, end) = (
        bytes.as_ptr() as usize,
        bytes.as_ptr() as usize + bytes.len(),
    );
    // Mappings are listed in address order: walk the ones covering [at, end).
    for line in maps.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(range), Some(perms), Some(_), Some(_), Some(inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let Some((lo, hi)) = mapping_range(range) else {
            continue;
        };
        if hi <= at || lo > at {
            continue;
        }
        if inode == "0" || perms.as_bytes().get(1) != Some(&b'-') {
            return false;
        }
        at = hi;
        if at >= end {
            return true;
        }
    }
    false
}

/// Whether at least 90 % of `bytes` is mapped through 2 MiB page-table entries (a file in the
/// page cache as 2 MiB folios, or transparent huge pages), as `/proc/self/smaps` counts them
/// (`FilePmdMapped`, `AnonHugePages`) for the mappings that hold `bytes`. False when unknown.
pub(crate) fn mostly_huge_mapped(bytes: &[u8]) -> bool {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return false;
    };
    let (lo, hi) = (
        bytes.as_ptr() as usize,
        bytes.as_ptr() as usize + bytes.len(),
    );
    let mut huge_kb = 0usize;
    let mut inside = false;
    for line in smaps.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(first) = f.next() else { continue };
        // A mapping's first line: `start-end perms offset dev inode [path]`.
        if let Some((a, b)) = mapping_range(first) {
            inside = a < hi && b > lo;
            continue;
        }
        if inside && matches!(first, "FilePmdMapped:" | "AnonHugePages:") {
            huge_kb += f.next().and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
        }
    }
    !bytes.is_empty() && huge_kb * 1024 * 10 >= bytes.len() * 9
}

/// Drops the whole pages of `bytes` from this process until they are read again.
///
/// # Safety
/// `bytes` must lie in a read-only mapping of a file (a memory map or the executable's data): there
/// `MADV_DONTNEED` only unmaps pages, and the next read faults in the same content. On anonymous or
/// heap memory it would discard the data.
pub(crate) unsafe fn release_file_pages(bytes: &[u8]) {
    #[cfg(target_os = "linux")]
    if let Some(r) = inner_pages(bytes) {
        // SAFETY: the caller guarantees a read-only file-backed range, which MADV_DONTNEED
        // cannot change the content of.
        unsafe { libc::madvise(r.start as *mut libc::c_void, r.len(), libc::MADV_DONTNEED) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = inner_pages(bytes);
}

/// Advises that `bytes` (of a live mapping) are read sparsely (`MADV_RANDOM`), so reading a row
/// does not make its neighbours' pages resident. Advice only: failures are ignored.
pub(crate) fn read_sparsely(bytes: &[u8]) {
    #[cfg(target_os = "linux")]
    {
        let r = outer_pages(bytes);
        // SAFETY: the range covers pages of a live mapping that `bytes` borrows; MADV_RANDOM
        // never changes memory contents.
        unsafe { libc::madvise(r.start as *mut libc::c_void, r.len(), libc::MADV_RANDOM) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = bytes;
}

/// Advises that `bytes` (a whole mapping, so the advice splits nothing) be backed by huge pages
/// (`MADV_HUGEPAGE`): for a file, page-cache misses are then read as 2 MiB folios. Advice only.
pub(crate) fn advise_huge(bytes: &[u8]) {
    #[cfg(target_os = "linux")]
    if huge_pages_available() {
        let r = outer_pages(bytes);
        // SAFETY: the range covers pages of a live mapping that `bytes` borrows; MADV_HUGEPAGE
        // never changes memory contents.
        unsafe { libc::madvise(r.start as *mut libc::c_void, r.len(), libc::MADV_HUGEPAGE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = bytes;
}

/// Joins the background page-mapping thread of [`Prefetch::spawn`] when dropped.
#[derive(Debug)]
pub(crate) struct Prefetch(Option<std::thread::JoinHandle<()>>);

impl Prefetch {
    /// Maps the pages of `ranges` (address ranges inside `owner`) in a background thread
    /// (`MADV_POPULATE_READ`), so the first forward pass does not take thousands of page faults and
    /// that work overlaps with whatever the caller does next. The thread keeps `owner` alive.
    pub(crate) fn spawn(owner: Arc<Bytes>, mut ranges: Vec<Range<usize>>) -> Prefetch {
        let own = owner.as_ptr_range();
        let (lo, hi) = (own.start as usize, own.end as usize);
        // Page-rounded ranges may start up to a page before the bytes; the rest must be inside.
        ranges.retain(|r| r.start + PAGE > lo && r.end <= hi && r.start < r.end);
        ranges.sort_unstable_by_key(|r| r.start);
        #[cfg(target_os = "linux")]
        if !ranges.is_empty() {
            let handle = std::thread::Builder::new()
                .name("sembed-prefetch".into())
                .spawn(move || {
                    let _keep = owner;
                    for r in ranges {
                        // SAFETY: the pages lie in (or, rounded down, at the start of the page of)
                        // `owner`'s bytes, which this thread keeps alive; POPULATE_READ only maps
                        // pages, it never writes them.
                        unsafe {
                            libc::madvise(
                                r.start as *mut libc::c_void,
                                r.len(),
                                libc::MADV_POPULATE_READ,
                            )
                        };
                    }
                });
            return Prefetch(handle.ok());
        }
        let _ = (ranges, owner);
        Prefetch(None)
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_buffer_is_aligned_and_keeps_what_was_written() {
        let Some(mut b) = HugeBufferMut::new(3 * 4096 + 5) else {
            assert!(!huge_pages_available());
            return;
        };
        assert_eq!(b.bytes_mut().as_ptr() as usize % HUGE, 0);
        b.bytes_mut()
            .iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = i as u8);
        let b = b.freeze().unwrap();
        assert_eq!(b.bytes().len(), 3 * 4096 + 5);
        assert!(b.bytes().iter().enumerate().all(|(i, &x)| x == i as u8));
    }

    #[test]
    fn file_mappings_are_told_from_memory() {
        let heap = vec![7u8; 3 * PAGE];
        assert!(!is_file_mapping(&heap));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![1u8; 5 * PAGE]).unwrap();
        let f = std::fs::File::open(&p).unwrap();
        // SAFETY: read-only map of a file this test owns and does not change.
        let map = unsafe { memmap2::Mmap::map(&f) }.unwrap();
        assert!(cfg!(not(target_os = "linux")) || is_file_mapping(&map[PAGE..3 * PAGE]));
        // The executable's read-only data (a string literal lives there).
        let text: &'static str = "a literal in the executable's read-only data";
        assert!(cfg!(not(target_os = "linux")) || is_file_mapping(text.as_bytes()));
    }

    /// Heap bytes of a few pages are not huge-mapped; a huge-page buffer is judged by its own
    /// mapping's `AnonHugePages` (whether the kernel had huge pages to give is up to it).
    #[test]
    fn huge_mappings_are_seen() {
        let small = vec![1u8; 3 * PAGE];
        assert!(!mostly_huge_mapped(&small));
        let Some(mut b) = HugeBufferMut::new(4 * HUGE) else {
            return;
        };
        b.bytes_mut().fill(1);
        let b = b.freeze().unwrap();
        let at = b.bytes().as_ptr() as usize;
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
        let (mut here, mut kb) = (false, 0usize);
        for line in smaps.lines() {
            let first = line.split_ascii_whitespace().next().unwrap_or_default();
            if let Some((a, z)) = mapping_range(first) {
                here = a <= at && at < z;
            } else if here && first == "AnonHugePages:" {
                kb = line
                    .split_ascii_whitespace()
                    .nth(1)
                    .unwrap()
                    .parse()
                    .unwrap();
            }
        }
        assert_eq!(
            mostly_huge_mapped(b.bytes()),
            kb * 1024 >= 4 * HUGE * 9 / 10,
            "{kb} kB"
        );
    }

    #[test]
    fn page_ranges() {
        let buf = vec![0u8; 5 * PAGE];
        let base = buf.as_ptr() as usize;
        let from = (base.next_multiple_of(PAGE) - base) + 10;
        let s = &buf[from..from + 2 * PAGE];
        let inner = inner_pages(s).unwrap();
        assert_eq!(inner.len(), PAGE);
        assert_eq!(inner.start % PAGE, 0);
        let outer = outer_pages(s);
        assert!(outer.start <= s.as_ptr() as usize && outer.end == s.as_ptr() as usize + s.len());
        assert!(inner_pages(&buf[from..from + 100]).is_none());
    }
}
