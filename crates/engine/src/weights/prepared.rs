//! Prepared copies: a weights file rewritten once into the kernels' panel layout
//! ([`panels_file`](super::panels_file)) and kept in a folder
//! ([`LoadOptions::prepared`](crate::LoadOptions::prepared)), so later loads map it and pack
//! nothing (packing MiniLM's f32 layers at load costs ~20 ms here, more than the rest of a cold
//! start). For a model at the AMX level with f32 weights the copy holds AMX tiles instead
//! ([`Layout::Tiles`]: what `ops::amx` would split the panels into on every call).
//!
//! A copy is named by the sha256 of the file it was made from and the layout version, and
//! records that sha256 in its header, which is checked: a copy never stands in for other weights.
//! It is written to a temporary file and renamed into place, so a crash, a full disk or a second
//! process writing the same copy at once leaves either no copy or a complete one. Best effort:
//! when the folder cannot be written, the model packs in memory as without one.
//!
//! Every copy is written in 2 MiB writes at 2 MiB offsets, which leaves it in the page cache as
//! 2 MiB folios (ext4 and other filesystems with large folios), so a mapping of it is made of
//! 2 MiB page-table entries — one fault per 2 MiB instead of 512 page entries. On the AMD EPYC
//! host of BENCHMARKS.md, mapping MiniLM's 86 MB of f32 panels through 4 KiB entries took ~12 ms
//! of system time per cold start. That is also why the built-in model gets a copy (its
//! compiled-in panels as they are, the source named in the header): the executable's own pages
//! are 4 KiB ones.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::SafeTensors;
use super::panels_file::{self, LAYOUT};
use crate::fingerprint::hex;

/// Metadata key of the sha256 of the file a copy was made from.
const SOURCE_KEY: &str = "sembed.source-sha256";

/// What a prepared copy holds its linear weights as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// The kernels' panels (f32 or f16 as stored).
    Panels,
    /// AMX tiles (f32 weights, for a model loaded at the AMX level: nothing split per call).
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    Tiles,
}

/// Where the copy of weights with this sha256 lives in `dir`.
fn copy_path(dir: &Path, sha256: &[u8; 32], layout: Layout) -> PathBuf {
    let name = match layout {
        Layout::Panels => LAYOUT,
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        Layout::Tiles => panels_file::TILES_LAYOUT,
    };
    dir.join(format!("{}-{name}.safetensors", hex(sha256)))
}

/// The prepared copy of `original` (whose sha256 is `sha256`) from `dir`, made now if it is not
/// there yet; `None` when it can be neither read nor made (the caller keeps `original`).
pub(crate) fn open_or_make(
    original: &SafeTensors,
    sha256: &[u8; 32],
    dir: &Path,
    layout: Layout,
) -> Option<SafeTensors> {
    let path = copy_path(dir, sha256, layout);
    let want = hex(sha256);
    let valid = |st: &SafeTensors| {
        let laid_out = match layout {
            Layout::Panels => st.has_panels(),
            #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
            Layout::Tiles => st.has_tiles(),
        };
        laid_out && st.metadata(SOURCE_KEY) == Some(&want)
    };
    // A damaged or foreign copy is replaced below.
    if let Ok(st) = SafeTensors::open_prepared(&path)
        && valid(&st)
    {
        return Some(st);
    }
    std::fs::create_dir_all(dir).ok()?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{:?}",
        want,
        std::process::id(),
        std::thread::current().id()
    ));
    let written = (|| -> std::io::Result<()> {
        let mut out = HugeChunks::new(std::fs::File::create(&tmp)?);
        // Panels stay as they are (a 3-D tensor is not packed again): the built-in model's
        // compiled-in file is copied with the source named in its metadata.
        let (src, linear, extra) = (
            original.file_bytes(),
            &panels_file::is_encoder_linear,
            &[(SOURCE_KEY, want.as_str())],
        );
        match layout {
            Layout::Panels => panels_file::write_panels(src, linear, extra, &mut out)?,
            #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
            Layout::Tiles => {
                // SAFETY: a tile copy is asked for only at the AMX level (`amx::available`).
                let tiles = |p: &[u8], n, k, out: &mut Vec<u8>| unsafe {
                    crate::ops::tiles_from_panels(p, n, k, out)
                };
                panels_file::write_tiles(src, linear, extra, &tiles, &mut out)?
            }
        }
        out.finish()?.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return None;
    }
    SafeTensors::open_prepared(&path).ok().filter(valid)
}

/// Writes in 2 MiB writes at 2 MiB-aligned offsets (the last one shorter), so the page cache
/// keeps the file in 2 MiB folios that a mapping can use as huge pages (ext4 and other
/// filesystems with large folios size a folio by the write that made it).
struct HugeChunks<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> HugeChunks<W> {
    const CHUNK: usize = 2 << 20;

    fn new(inner: W) -> Self {
        HugeChunks {
            inner,
            buf: Vec::with_capacity(Self::CHUNK),
        }
    }

    /// Writes what is buffered and returns the writer.
    fn finish(mut self) -> std::io::Result<W> {
        self.inner.write_all(&self.buf)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for HugeChunks<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(Self::CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == Self::CHUNK {
            self.inner.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Only whole chunks go out before `finish`: a short write here would misalign the rest.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> SafeTensors {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/fixtures/tiny-bert-cls/model.safetensors");
        SafeTensors::open_prepared(&path).unwrap()
    }

    /// Made once, then read back; a damaged or foreign copy is replaced; every tensor keeps
    /// its values; an unwritable folder gives `None`.
    #[test]
    fn a_copy_is_made_once_checked_and_replaced_when_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let original = fixture();
        let sha = [7u8; 32];
        let made = open_or_make(&original, &sha, dir.path(), Layout::Panels).expect("made");
        let path = copy_path(dir.path(), &sha, Layout::Panels);
        let stamp = std::fs::metadata(&path).unwrap().modified().unwrap();
        for name in original.names() {
            let (_, shape) = original.shape(name).unwrap();
            if shape.len() == 2 && panels_file::is_encoder_linear(name) {
                let (n, k) = (shape[0], shape[1]);
                let panels = made.panels(name, n, k).unwrap().expect("panels");
                let mut want = Vec::new();
                let bytes = original.tensor_bytes(name).unwrap();
                panels_file::pack_bytes(bytes, n, k, 4, &mut want);
                assert_eq!(panels.as_bytes(), want.as_slice(), "{name}");
            } else {
                assert_eq!(
                    made.tensor_bytes(name),
                    original.tensor_bytes(name),
                    "{name}"
                );
            }
        }
        drop(made);
        // Read back, not rewritten.
        assert!(open_or_make(&original, &sha, dir.path(), Layout::Panels).is_some());
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), stamp);
        // Another file's copy under this name (or a truncated one) is not used: remade.
        std::fs::copy(
            copy_path(dir.path(), &sha, Layout::Panels),
            copy_path(dir.path(), &[8u8; 32], Layout::Panels),
        )
        .unwrap();
        let st = open_or_make(&original, &[8u8; 32], dir.path(), Layout::Panels).unwrap();
        assert_eq!(st.metadata(SOURCE_KEY), Some(hex(&[8u8; 32]).as_str()));
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len / 2).unwrap();
        drop(f);
        assert!(open_or_make(&original, &sha, dir.path(), Layout::Panels).is_some());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        // No temporary files left.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
        // Written in 2 MiB pieces (and only whole ones before the end).
        let mut sizes = Vec::new();
        struct Sizes<'a>(&'a mut Vec<usize>);
        impl Write for Sizes<'_> {
            fn write(&mut self, d: &[u8]) -> std::io::Result<usize> {
                self.0.push(d.len());
                Ok(d.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut w = HugeChunks::new(Sizes(&mut sizes));
        for piece in [1000, 3 << 20, 5, 2 << 20, 77] {
            w.write_all(&vec![1u8; piece]).unwrap();
            w.flush().unwrap();
        }
        w.finish().unwrap();
        let total = 1000 + (3 << 20) + 5 + (2 << 20) + 77;
        assert_eq!(sizes, [2 << 20, 2 << 20, total - (4 << 20)]);
        // A folder that cannot be made.
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        assert!(open_or_make(&original, &sha, &file.join("sub"), Layout::Panels).is_none());
    }
}
