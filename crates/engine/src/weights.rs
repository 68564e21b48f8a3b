//! Safetensors weights used in place: the file is memory-mapped (or, for the built-in model, a static
//! byte slice) and tensors are borrowed from it, never copied to the heap at load. Every accessor checks
//! dtype and shape and names the tensor in its error.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use rustc_hash::FxHashMap;
use safetensors::{Dtype, tensor::TensorInfo};

use crate::error::{Error, Result};
use crate::ops::packed::{self, PanelData, Panels};

/// Raw bytes of a model file: mapped, compiled in, or (when handed over as a slice) copied.
pub(crate) enum Bytes {
    Mmap(memmap2::Mmap),
    Owned(Box<[u8]>),
    #[cfg(feature = "builtin")]
    Static(&'static [u8]),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mmap(m) => m,
            Bytes::Owned(b) => b,
            #[cfg(feature = "builtin")]
            Bytes::Static(s) => s,
        }
    }
}

/// Joins the background page-mapping thread of [`SafeTensors::prefetch`] when dropped.
#[derive(Debug)]
pub(crate) struct Prefetch(Option<std::thread::JoinHandle<()>>);

impl Drop for Prefetch {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

/// An opened safetensors file: its bytes and parsed header.
pub(crate) struct SafeTensors {
    bytes: Bytes,
    /// The mapped file, kept open for [`RowTable`]'s reads.
    file: Option<std::fs::File>,
    /// Tensors stored as packed panels of this width (in a copy made by `copy_to_huge_pages`).
    packed: FxHashMap<String, usize>,
    data_start: usize,
    tensors: FxHashMap<String, TensorInfo>,
    path: PathBuf,
}

/// A 2-D weight matrix `[rows, cols]`, row-major, in its stored dtype — or rearranged into the
/// column panels of [`crate::ops::packed`] (a layer's copy made for a model in frequent use).
#[derive(Debug, Clone)]
pub(crate) enum Mat<'a> {
    F32(Cow<'a, [f32]>),
    F16(Cow<'a, [f16]>),
    BF16(Cow<'a, [bf16]>),
    Packed(Panels<'a>),
}

impl Mat<'_> {
    /// Copies row `r` (of width `cols`) into `out` as f32.
    pub(crate) fn row_into(&self, r: usize, cols: usize, out: &mut [f32]) {
        let span = r * cols..(r + 1) * cols;
        match self {
            Mat::F32(w) => out.copy_from_slice(&w[span]),
            Mat::F16(w) => half::slice::HalfFloatSliceExt::convert_to_f32_slice(&w[span], out),
            Mat::BF16(w) => half::slice::HalfFloatSliceExt::convert_to_f32_slice(&w[span], out),
            Mat::Packed(p) => out[..cols]
                .iter_mut()
                .enumerate()
                .for_each(|(c, o)| *o = p.get(r, c)),
        }
    }

    /// Adds row `r` into `out`.
    pub(crate) fn add_row(&self, r: usize, cols: usize, out: &mut [f32]) {
        let span = r * cols..(r + 1) * cols;
        match self {
            Mat::F32(w) => out.iter_mut().zip(&w[span]).for_each(|(o, x)| *o += x),
            Mat::F16(w) => out
                .iter_mut()
                .zip(&w[span])
                .for_each(|(o, x)| *o += x.to_f32()),
            Mat::BF16(w) => out
                .iter_mut()
                .zip(&w[span])
                .for_each(|(o, x)| *o += x.to_f32()),
            Mat::Packed(p) => out[..cols]
                .iter_mut()
                .enumerate()
                .for_each(|(c, o)| *o += p.get(r, c)),
        }
    }

    pub(crate) fn dtype_name(&self) -> &'static str {
        match self {
            Mat::F32(_) => "f32",
            Mat::F16(_) => "f16",
            Mat::BF16(_) => "bf16",
            Mat::Packed(Panels {
                data: PanelData::F32(_),
                ..
            }) => "f32",
            Mat::Packed(Panels {
                data: PanelData::F16(_),
                ..
            }) => "f16",
        }
    }
}

/// A table of which each pass reads a few scattered rows (the word embeddings: half of a MiniLM
/// file). Rows of an f32 table in a mapped file are read with `pread` instead of through the
/// mapping: a page fault maps its 15 neighbours too ("fault-around", which `madvise` cannot turn
/// off), so a few thousand distinct tokens made nearly the whole 47 MB table resident. Reading
/// them costs a system call per token instead (cheaper than the page fault it replaces).
#[derive(Debug)]
pub(crate) struct RowTable<'a> {
    mat: Mat<'a>, // [rows, cols]
    /// The file and the byte offset of the table in it, when rows are read from the file.
    file: Option<(&'a std::fs::File, u64)>,
}

impl RowTable<'_> {
    /// Copies row `r` (of width `cols`) into `out` as f32.
    pub(crate) fn row_into(&self, r: usize, cols: usize, out: &mut [f32]) {
        #[cfg(all(unix, target_endian = "little"))]
        if let Some((file, start)) = self.file {
            use std::os::unix::fs::FileExt;
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut out[..cols]);
            let at = start + (r * cols * 4) as u64;
            if file.read_exact_at(bytes, at).is_ok() {
                return;
            }
            // A failed read (the file changed under us): the mapping still has the row.
        }
        self.mat.row_into(r, cols, out);
    }

    pub(crate) fn dtype_name(&self) -> &'static str {
        self.mat.dtype_name()
    }
}

fn cast<'a, T: bytemuck::Pod>(bytes: &'a [u8]) -> Cow<'a, [T]> {
    match bytemuck::try_cast_slice(bytes) {
        Ok(s) => Cow::Borrowed(s),
        // Misaligned inside the file (odd-sized tensors before it): copy this one tensor.
        Err(_) => Cow::Owned(bytemuck::pod_collect_to_vec(bytes)),
    }
}

impl SafeTensors {
    /// Memory-maps and validates a safetensors file.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only; as with every mmap-based loader (candle, safetensors), a file
        // truncated by another process while mapped is outside what we can defend against.
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let mut st = Self::from_bytes(Bytes::Mmap(mmap), path.to_path_buf())?;
        st.file = Some(file);
        Ok(st)
    }

    /// Wraps static bytes (the built-in model).
    #[cfg(feature = "builtin")]
    pub(crate) fn from_static(bytes: &'static [u8], label: PathBuf) -> Result<Self> {
        Self::from_bytes(Bytes::Static(bytes), label)
    }

    fn from_bytes(bytes: Bytes, path: PathBuf) -> Result<Self> {
        let (header_len, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| Error::invalid(&path, format!("not a valid safetensors file ({e})")))?;
        let tensors = meta
            .tensors()
            .into_iter()
            .map(|(k, v)| (k, v.clone()))
            .collect();
        Ok(SafeTensors {
            bytes,
            file: None,
            packed: FxHashMap::default(),
            data_start: 8 + header_len,
            tensors,
            path,
        })
    }

    /// The tensors matching `wanted`, copied into anonymous memory backed by transparent huge pages,
    /// as a `SafeTensors` of their own — 2-D float tensors rearranged into the column panels of
    /// [`packed`] (which [`mat`](Self::mat) then returns as [`Mat::Packed`]); `None` where that is
    /// unavailable (THP switched off, not Linux, out of memory), in which case callers keep using
    /// `self`.
    ///
    /// Why huge pages: a forward pass over few tokens streams every weight once, and in a VM each
    /// 4 KiB page costs a two-level page walk. Measured on a 9-row product streaming 37 MB of f32
    /// weights: 40–45 GFLOP/s from 4 KiB pages, 87 from huge pages. The copied ranges of the file
    /// mapping are then dropped from this process (`MADV_DONTNEED`: the file's pages stay in the
    /// page cache and would simply be faulted in again), so resident memory does not double.
    #[cfg(target_os = "linux")]
    pub(crate) fn copy_to_huge_pages(&self, wanted: &dyn Fn(&str) -> bool) -> Option<SafeTensors> {
        const HUGE: usize = 2 << 20;
        const ALIGN: usize = 64;
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok()?;
        if thp.contains("[never]") {
            return None;
        }
        let mut names: Vec<&String> = self.tensors.keys().filter(|n| wanted(n)).collect();
        if names.is_empty() {
            return None;
        }
        names.sort_unstable_by_key(|n| self.tensors[*n].data_offsets.0);
        let nr = packed::panel_width();
        let packable = |i: &TensorInfo| {
            packed::worth_packing()
                && i.shape.len() == 2
                && matches!(i.dtype, Dtype::F32 | Dtype::F16)
        };
        let mut tensors = FxHashMap::default();
        let mut packed = FxHashMap::default();
        let mut end = 0usize;
        for name in &names {
            let info = &self.tensors[*name];
            let start = end.next_multiple_of(ALIGN);
            let len = if packable(info) {
                packed.insert((*name).clone(), nr);
                let elem = if info.dtype == Dtype::F32 { 4 } else { 2 };
                packed::packed_len(info.shape[0], info.shape[1], nr) * elem
            } else {
                info.data_offsets.1 - info.data_offsets.0
            };
            end = start + len;
            let data_offsets = (start, end);
            tensors.insert(
                (*name).clone(),
                TensorInfo {
                    data_offsets,
                    ..info.clone()
                },
            );
        }
        // One extra huge page so the data can start on a huge-page boundary whatever address the
        // kernel picks; the untouched slack is never resident.
        let mut map = memmap2::MmapMut::map_anon(end + HUGE).ok()?;
        let _ = map.advise(memmap2::Advice::HugePage);
        let data_start = (HUGE - map.as_ptr() as usize % HUGE) % HUGE;
        for name in &names {
            let (a, b) = tensors[*name].data_offsets;
            let info = &self.tensors[*name];
            let (src, dst) = (self.raw(info), &mut map[data_start + a..data_start + b]);
            if packed.contains_key(*name) {
                let (n, k) = (info.shape[0], info.shape[1]);
                // The destination is aligned by construction; `cast` copies a misaligned source.
                if info.dtype == Dtype::F32 {
                    let out: &mut [f32] = bytemuck::cast_slice_mut(dst);
                    packed::pack(&cast::<f32>(src), n, k, nr, out);
                } else {
                    let out: &mut [f16] = bytemuck::cast_slice_mut(dst);
                    packed::pack(&cast::<f16>(src), n, k, nr, out);
                }
            } else {
                dst.copy_from_slice(src);
            }
            // Tensor by tensor, so the copy and the mapped pages never both hold all of it.
            self.release(info);
        }
        Some(SafeTensors {
            bytes: Bytes::Mmap(map.make_read_only().ok()?),
            file: None,
            packed,
            data_start,
            tensors,
            path: self.path.clone(),
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub(crate) fn copy_to_huge_pages(&self, _wanted: &dyn Fn(&str) -> bool) -> Option<SafeTensors> {
        None
    }

    /// Drops the whole pages of a tensor of a mapped file (or of the executable) from this process.
    #[cfg(target_os = "linux")]
    fn release(&self, info: &TensorInfo) {
        const PAGE: usize = 4096;
        if matches!(self.bytes, Bytes::Owned(_)) {
            return;
        }
        let raw = self.raw(info);
        let start = (raw.as_ptr() as usize).next_multiple_of(PAGE);
        let end = (raw.as_ptr() as usize + raw.len()) / PAGE * PAGE;
        if end > start {
            // SAFETY: the range lies within a read-only, file-backed mapping we own (the mmap or the
            // executable's data). Such pages are never modified, so MADV_DONTNEED cannot change what
            // a later read sees: it only unmaps them until the next access faults them back in.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        }
    }

    /// The file's name as used in messages.
    pub(crate) fn label(&self) -> &Path {
        &self.path
    }

    /// Whether a tensor of that name exists.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Tensor names (for diagnostics and prefix detection).
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    fn err(&self, tensor: &str, reason: impl Into<String>) -> Error {
        Error::Tensor {
            path: self.path.clone(),
            tensor: tensor.to_string(),
            reason: reason.into(),
        }
    }

    fn info(&self, name: &str, shape: &[usize]) -> Result<&TensorInfo> {
        let info = self
            .tensors
            .get(name)
            .ok_or_else(|| self.err(name, "missing"))?;
        if info.shape != shape {
            return Err(self.err(
                name,
                format!("shape {:?}, expected {:?}", info.shape, shape),
            ));
        }
        Ok(info)
    }

    fn raw(&self, info: &TensorInfo) -> &[u8] {
        let (a, b) = info.data_offsets;
        &self.bytes[self.data_start + a..self.data_start + b]
    }

    /// Page-aligned address range of a tensor's bytes.
    fn page_range(&self, info: &TensorInfo) -> (usize, usize) {
        const PAGE: usize = 4096;
        let raw = self.raw(info);
        let start = raw.as_ptr() as usize / PAGE * PAGE;
        (start, raw.as_ptr() as usize + raw.len())
    }

    /// Marks a large, sparsely read tensor (the word-embedding table) `MADV_RANDOM`, so reading a row
    /// does not make its neighbours' pages resident. Advice only: failures are ignored.
    pub(crate) fn read_sparsely(&self, name: &str) {
        #[cfg(target_os = "linux")]
        if let Some(info) = self.tensors.get(name) {
            let (start, end) = self.page_range(info);
            // SAFETY: the range lies within a live read-only mapping we own (the mmap or the
            // executable's data); MADV_RANDOM never changes memory contents.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_RANDOM) };
        }
        #[cfg(not(target_os = "linux"))]
        let _ = name;
    }

    /// Maps the pages of every tensor matching `wanted` in the background (`MADV_POPULATE_READ`), so
    /// the first forward pass does not take thousands of page faults, and that work overlaps with
    /// parsing the tokenizer. The returned guard joins the thread; drop it before the mapping.
    pub(crate) fn prefetch(&self, wanted: impl Fn(&str) -> bool) -> Prefetch {
        let mut ranges: Vec<(usize, usize)> = self
            .tensors
            .iter()
            .filter(|(n, _)| wanted(n))
            .map(|(_, i)| self.page_range(i))
            .collect();
        ranges.sort_unstable();
        #[cfg(target_os = "linux")]
        if !ranges.is_empty() {
            let handle = std::thread::Builder::new()
                .name("sembed-prefetch".into())
                .spawn(move || {
                    for (start, end) in ranges {
                        // SAFETY: the ranges lie within a read-only mapping that outlives this thread (the
                        // guard joins it before the mapping is dropped); POPULATE_READ only maps pages.
                        unsafe {
                            libc::madvise(
                                start as *mut libc::c_void,
                                end - start,
                                libc::MADV_POPULATE_READ,
                            )
                        };
                    }
                });
            return Prefetch(handle.ok());
        }
        let _ = ranges;
        Prefetch(None)
    }

    /// A large table read one row at a time (the word embeddings); see [`RowTable`].
    pub(crate) fn row_table(&self, name: &str, rows: usize, cols: usize) -> Result<RowTable<'_>> {
        let mat = self.mat(name, rows, cols)?;
        let file = match (&self.file, &mat) {
            (Some(file), Mat::F32(_)) => {
                let start = self.data_start + self.tensors[name].data_offsets.0;
                Some((file, start as u64))
            }
            _ => None,
        };
        Ok(RowTable { mat, file })
    }

    /// A matrix of the given shape, borrowed in its stored float dtype.
    pub(crate) fn mat(&self, name: &str, rows: usize, cols: usize) -> Result<Mat<'_>> {
        let info = self.info(name, &[rows, cols])?;
        let raw = self.raw(info);
        if let Some(&nr) = self.packed.get(name) {
            let data = match info.dtype {
                Dtype::F16 => PanelData::F16(bytemuck::cast_slice(raw)),
                _ => PanelData::F32(bytemuck::cast_slice(raw)),
            };
            return Ok(Mat::Packed(Panels {
                data,
                n: rows,
                k: cols,
                nr,
            }));
        }
        Ok(match info.dtype {
            Dtype::F32 => Mat::F32(cast(raw)),
            Dtype::F16 => Mat::F16(cast(raw)),
            Dtype::BF16 => Mat::BF16(cast(raw)),
            d => {
                return Err(self.err(
                    name,
                    format!("dtype {d:?} is not a float type sembed reads"),
                ));
            }
        })
    }

    /// Dtype and shape of a tensor, if present.
    pub(crate) fn shape(&self, name: &str) -> Option<(Dtype, &[usize])> {
        self.tensors
            .get(name)
            .map(|i| (i.dtype, i.shape.as_slice()))
    }

    /// A 2-D int8 table (Model2Vec's quantized embeddings), borrowed.
    pub(crate) fn i8_mat(&self, name: &str, rows: usize, cols: usize) -> Result<Cow<'_, [i8]>> {
        let info = self.info(name, &[rows, cols])?;
        if info.dtype != Dtype::I8 {
            return Err(self.err(name, format!("dtype {:?}, expected I8", info.dtype)));
        }
        Ok(cast(self.raw(info)))
    }

    /// A vector of `len` integers (I32 or I64) as indices.
    pub(crate) fn indices(&self, name: &str, len: usize) -> Result<Vec<usize>> {
        let info = self.info(name, &[len])?;
        let raw = self.raw(info);
        let out: Vec<i64> = match info.dtype {
            Dtype::I32 => cast::<i32>(raw).iter().map(|&v| v as i64).collect(),
            Dtype::I64 => cast::<i64>(raw).into_owned(),
            d => return Err(self.err(name, format!("dtype {d:?}, expected I32 or I64"))),
        };
        out.into_iter()
            .map(|v| usize::try_from(v).map_err(|_| self.err(name, format!("negative index {v}"))))
            .collect()
    }

    /// A vector of `len` values as f64 (F64, F32 or F16 stored).
    pub(crate) fn vector_f64(&self, name: &str, len: usize) -> Result<Vec<f64>> {
        let info = self.info(name, &[len])?;
        let raw = self.raw(info);
        Ok(match info.dtype {
            Dtype::F64 => cast::<f64>(raw).into_owned(),
            Dtype::F32 => cast::<f32>(raw).iter().map(|&v| v as f64).collect(),
            Dtype::F16 => cast::<f16>(raw).iter().map(|v| v.to_f64()).collect(),
            d => {
                return Err(self.err(
                    name,
                    format!("dtype {d:?} is not a float type sembed reads"),
                ));
            }
        })
    }

    /// A vector of `len` values as f32 (converted when stored as f16/bf16; vectors are small).
    pub(crate) fn vector(&self, name: &str, len: usize) -> Result<Cow<'_, [f32]>> {
        let info = self.info(name, &[len])?;
        let raw = self.raw(info);
        Ok(match info.dtype {
            Dtype::F32 => cast(raw),
            Dtype::F16 => Cow::Owned(cast::<f16>(raw).iter().map(|x| x.to_f32()).collect()),
            Dtype::BF16 => Cow::Owned(cast::<bf16>(raw).iter().map(|x| x.to_f32()).collect()),
            d => {
                return Err(self.err(
                    name,
                    format!("dtype {d:?} is not a float type sembed reads"),
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    /// The copy holds exactly the wanted tensors: 2-D float ones packed (every element where
    /// the panels put it), others byte for byte, each 64-byte aligned; the original reads the same
    /// afterwards.
    #[cfg(target_os = "linux")]
    #[test]
    fn huge_page_copy_keeps_wanted_tensors_exactly() {
        let a: Vec<u8> = (0..3 * 5 * 4).map(|i| i as u8).collect(); // f32 [3, 5]
        let b: Vec<u8> = (0..7 * 2).map(|i| (i * 3) as u8).collect(); // f16 [7]
        let h: Vec<u8> = (0..40 * 3 * 2).map(|i| (i % 61) as u8).collect(); // f16 [40, 3]
        let c: Vec<u8> = vec![9; 4 * 4]; // f32 [4]
        let views = [
            (
                "layer.a",
                TensorView::new(Dtype::F32, vec![3, 5], &a).unwrap(),
            ),
            ("layer.b", TensorView::new(Dtype::F16, vec![7], &b).unwrap()),
            (
                "layer.h",
                TensorView::new(Dtype::F16, vec![40, 3], &h).unwrap(),
            ),
            ("other.c", TensorView::new(Dtype::F32, vec![4], &c).unwrap()),
        ];
        let bytes = safetensors::serialize(views, None).unwrap();
        let st =
            SafeTensors::from_bytes(Bytes::Owned(bytes.into()), "t.safetensors".into()).unwrap();
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .is_ok_and(|s| !s.contains("[never]"));
        let Some(copy) = st.copy_to_huge_pages(&|n| n.starts_with("layer.")) else {
            assert!(
                !thp,
                "no copy although transparent huge pages are available"
            );
            return;
        };
        let mut names: Vec<&str> = copy.names().collect();
        names.sort_unstable();
        assert_eq!(names, ["layer.a", "layer.b", "layer.h"]);
        for name in names {
            let raw = copy.raw(&copy.tensors[name]);
            assert_eq!(raw.as_ptr() as usize % 64, 0, "{name} alignment");
            assert_eq!(copy.tensors[name].shape, st.tensors[name].shape);
        }
        assert_eq!(copy.raw(&copy.tensors["layer.b"]), &b[..]);
        assert_eq!(st.raw(&st.tensors["layer.b"]), &b[..]);
        for (name, rows, cols) in [("layer.a", 3, 5), ("layer.h", 40, 3)] {
            let (copied, original) = (
                copy.mat(name, rows, cols).unwrap(),
                st.mat(name, rows, cols).unwrap(),
            );
            assert_eq!(
                matches!(copied, Mat::Packed(_)),
                packed::worth_packing(),
                "{name}"
            );
            let (mut got, mut want) = (vec![0f32; cols], vec![0f32; cols]);
            for r in 0..rows {
                copied.row_into(r, cols, &mut got);
                original.row_into(r, cols, &mut want);
                assert_eq!(got, want, "{name} row {r}");
            }
        }
    }

    /// Rows read from the file (`pread`) equal rows read through the mapping.
    #[test]
    fn row_table_reads_the_same_rows_as_the_mapping() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/fixtures/tiny-bert-cls/model.safetensors");
        let st = SafeTensors::open(&path).unwrap();
        let name = "embeddings.word_embeddings.weight";
        let (_, shape) = st.shape(name).unwrap();
        let (rows, cols) = (shape[0], shape[1]);
        let table = st.row_table(name, rows, cols).unwrap();
        assert!(
            cfg!(not(unix)) || table.file.is_some(),
            "f32 rows of a mapped file use pread"
        );
        let mat = st.mat(name, rows, cols).unwrap();
        let (mut a, mut b) = (vec![0f32; cols], vec![0f32; cols]);
        for r in [0, 1, rows / 2, rows - 1] {
            table.row_into(r, cols, &mut a);
            mat.row_into(r, cols, &mut b);
            assert_eq!(a, b, "row {r}");
        }
    }
}
