//! Safetensors weights used in place: the file is memory-mapped (or, for the built-in model, a static
//! byte slice; for a model loaded from memory, the caller's bytes) and tensors are borrowed from it,
//! never copied to the heap at load. Every accessor checks dtype and shape and names the tensor in
//! its error. How those pages are managed (prefetch, release) is `crate::memory`'s business. A file
//! may store its linear weights in the kernels' panel layout already ([`panels_file`]: the built-in
//! model, a [`prepared`] copy); the encoder then borrows them as panels.

mod mat;
pub(crate) mod panels_file;
pub(crate) mod prepared;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use half::{bf16, f16};
use rustc_hash::FxHashMap;
use safetensors::{Dtype, tensor::TensorInfo};

use crate::bytes::Bytes;
use crate::error::{Error, Result};
use crate::ops::{Floats, packed::PANEL};
pub(crate) use mat::{Mat, RowTable, cast};

/// An opened safetensors file: its bytes and parsed header.
pub(crate) struct SafeTensors {
    bytes: Arc<Bytes>,
    /// The mapped file, kept open for [`RowTable`]'s reads.
    file: Option<std::fs::File>,
    data_start: usize,
    tensors: FxHashMap<String, TensorInfo>,
    path: PathBuf,
    /// The header says its linear weights are stored as kernel panels ([`panels_file`]).
    panels: bool,
    /// The header says its linear weights are stored as AMX tiles ([`panels_file::TILES_LAYOUT`]).
    tiles: bool,
    metadata: FxHashMap<String, String>,
}

/// Longest safetensors header sembed parses, in bytes. The `safetensors` crate allows 100 MB, and
/// parsing that much (1.2 million tensor entries) took 1.4–3.3 GB and 7 s of CPU here; real
/// headers are kilobytes (all-MiniLM-L6-v2: 11 KB, all-mpnet-base-v2: 22 KB).
pub(crate) const MAX_HEADER_BYTES: u64 = 16 << 20;

const _: () = assert!(
    panels_file::PANEL == PANEL,
    "the file's panels are the kernel's"
);

impl SafeTensors {
    /// Memory-maps and validates a safetensors file.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        Self::map(path, false)
    }

    /// [`open`](Self::open) for a prepared copy: pages read from disk (the copy evicted from the
    /// page cache) are read as 2 MiB folios, which map as huge pages (`weights::prepared`).
    pub(crate) fn open_prepared(path: &Path) -> Result<Self> {
        Self::map(path, true)
    }

    fn map(path: &Path, huge: bool) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only; as with every mmap-based loader (candle, safetensors), a file
        // truncated by another process while mapped is outside what we can defend against.
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        if huge {
            // Before anything is read (the header), so every page comes in under the advice.
            crate::memory::advise_huge(&mmap);
        }
        let mut st = Self::from_shared(Arc::new(Bytes::Mmap(mmap)), path.to_path_buf())?;
        st.file = Some(file);
        Ok(st)
    }

    /// The open file a mapped model reads from (`None` for bytes in memory).
    pub(crate) fn file(&self) -> Option<&std::fs::File> {
        self.file.as_ref()
    }

    /// Validates a safetensors file held in `bytes` (compiled in, or handed over by the caller);
    /// `path` names it in messages.
    pub(crate) fn from_shared(bytes: Arc<Bytes>, path: PathBuf) -> Result<Self> {
        // The length prefix; shorter files are left to the crate's own error.
        if let Some(prefix) = bytes.first_chunk::<8>()
            && u64::from_le_bytes(*prefix) > MAX_HEADER_BYTES
        {
            return Err(Error::invalid(
                &path,
                format!(
                    "not a valid safetensors file (its header claims {} bytes, over the limit of \
                     {MAX_HEADER_BYTES})",
                    u64::from_le_bytes(*prefix)
                ),
            ));
        }
        let (header_len, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| Error::invalid(&path, format!("not a valid safetensors file ({e})")))?;
        let tensors = meta
            .tensors()
            .into_iter()
            .map(|(k, v)| (k, v.clone()))
            .collect();
        let metadata: FxHashMap<String, String> = meta
            .metadata()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let layout = metadata.get(panels_file::LAYOUT_KEY).map(String::as_str);
        let panels = layout == Some(panels_file::LAYOUT);
        let tiles = layout == Some(panels_file::TILES_LAYOUT);
        Ok(SafeTensors {
            bytes,
            file: None,
            data_start: 8 + header_len,
            tensors,
            path,
            panels,
            tiles,
            metadata,
        })
    }

    /// Whether `bytes` lie in this file and the file is backed by disk or the executable, so its
    /// pages may be dropped from the process and read back unchanged
    /// (`crate::memory::release_file_pages`).
    pub(crate) fn holds_file_bytes(&self, bytes: &[u8]) -> bool {
        let own = self.bytes.as_ptr_range();
        let b = bytes.as_ptr_range();
        self.bytes.is_file_backed() && own.start <= b.start && b.end <= own.end
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

    /// `n` default values to copy tensor `name` into: an error, not an abort, when the memory is
    /// not there (a sparse file can hold tensors far larger than the machine's memory).
    pub(crate) fn buffer<T: Clone + Default>(&self, name: &str, n: usize) -> Result<Vec<T>> {
        let mut v = Vec::new();
        v.try_reserve_exact(n).map_err(|_| {
            let bytes = n as u128 * std::mem::size_of::<T>() as u128;
            self.err(name, format!("cannot allocate {bytes} bytes for it"))
        })?;
        v.resize(n, T::default());
        Ok(v)
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

    /// The bytes of a tensor, if present.
    pub(crate) fn tensor_bytes(&self, name: &str) -> Option<&[u8]> {
        self.tensors.get(name).map(|i| self.raw(i))
    }

    /// Maps the pages of the tensors matching `wanted` in a background thread (see
    /// [`Prefetch`](crate::memory::Prefetch)); the thread keeps the bytes alive.
    pub(crate) fn prefetch(&self, wanted: impl Fn(&str) -> bool) -> crate::memory::Prefetch {
        let ranges = self
            .tensors
            .iter()
            .filter(|(n, _)| wanted(n))
            .map(|(_, i)| crate::memory::outer_pages(self.raw(i)))
            .collect();
        if !self.bytes.is_file_backed() {
            // Bytes in memory already: nothing to map.
            return crate::memory::Prefetch::spawn(self.bytes.clone(), Vec::new());
        }
        crate::memory::Prefetch::spawn(self.bytes.clone(), ranges)
    }

    /// The bytes from the first to the end of the last tensor matching `wanted` (its name and
    /// shape; empty if none).
    pub(crate) fn span(&self, wanted: impl Fn(&str, &[usize]) -> bool) -> &[u8] {
        let (lo, hi) = self
            .tensors
            .iter()
            .filter(|(n, i)| wanted(n, &i.shape))
            .map(|(_, i)| i.data_offsets)
            .fold((usize::MAX, 0), |(lo, hi), (a, b)| (lo.min(a), hi.max(b)));
        if lo >= hi {
            return &[];
        }
        &self.bytes[self.data_start + lo..self.data_start + hi]
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

    /// The whole file.
    pub(crate) fn file_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A metadata value of the header.
    pub(crate) fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// Whether the file stores its linear weights as panels ([`panels_file`]).
    pub(crate) fn has_panels(&self) -> bool {
        self.panels
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file's encoder linear weights are all 2-D f32 (and there are some): what a
    /// tile copy is made from.
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    pub(crate) fn linears_all_f32(&self) -> bool {
        let mut linears = self
            .tensors
            .iter()
            .filter(|(name, info)| info.shape.len() == 2 && panels_file::is_encoder_linear(name));
        let first = linears.next();
        first.is_some()
            && first
                .into_iter()
                .chain(linears)
                .all(|(_, i)| i.dtype == Dtype::F32)
    }

    /// Whether the file stores its linear weights as AMX tiles (a prepared copy made for them).
    pub(crate) fn has_tiles(&self) -> bool {
        self.tiles
    }

    /// The `[n, k]` linear weight `name` as AMX tiles, borrowed, if this file stores it so;
    /// `None` otherwise (and on a CPU build without the tile kernel), an error when its shape or
    /// alignment is not that of tiles.
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    pub(crate) fn tiles(
        &self,
        name: &str,
        n: usize,
        k: usize,
    ) -> Result<Option<crate::ops::Tiles<'_>>> {
        if !self.tiles || !self.tensors.contains_key(name) {
            return Ok(None);
        }
        let shape = [n.div_ceil(PANEL), 2 * k.div_ceil(32) * 32, PANEL];
        let info = self.info(name, &shape)?;
        if info.dtype != Dtype::BF16 {
            return Err(self.err(name, format!("tiles of dtype {:?}", info.dtype)));
        }
        crate::ops::Tiles::new(self.raw(info), n, k)
            .map(Some)
            .ok_or_else(|| self.err(name, "tiles not aligned in the file"))
    }

    /// The `[n, k]` linear weight `name` as 32-wide panels, borrowed, if this file stores it so
    /// (f32 or f16, aligned); `None` when the file keeps it as stored, and an error when it claims
    /// panels of another shape.
    pub(crate) fn panels(&self, name: &str, n: usize, k: usize) -> Result<Option<Floats<'_>>> {
        if !self.panels {
            return Ok(None);
        }
        let Some(info) = self.tensors.get(name) else {
            return Ok(None);
        };
        let shape = [n.div_ceil(PANEL), k, PANEL];
        if info.shape.len() != 3 {
            return Ok(None);
        }
        let info = self.info(name, &shape)?;
        let raw = self.raw(info);
        let data = match info.dtype {
            Dtype::F32 => bytemuck::try_cast_slice(raw).ok().map(Floats::F32),
            Dtype::F16 => bytemuck::try_cast_slice(raw).ok().map(Floats::F16),
            d => return Err(self.err(name, format!("panels of dtype {d:?}"))),
        };
        data.map(Some)
            .ok_or_else(|| self.err(name, "panels not aligned in the file"))
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
        let mut out: Vec<usize> = self.buffer(name, len)?;
        let index =
            |v: i64| usize::try_from(v).map_err(|_| self.err(name, format!("negative index {v}")));
        match info.dtype {
            Dtype::I32 => {
                for (o, &v) in out.iter_mut().zip(cast::<i32>(raw).iter()) {
                    *o = index(v.into())?;
                }
            }
            Dtype::I64 => {
                for (o, &v) in out.iter_mut().zip(cast::<i64>(raw).iter()) {
                    *o = index(v)?;
                }
            }
            d => return Err(self.err(name, format!("dtype {d:?}, expected I32 or I64"))),
        }
        Ok(out)
    }

    /// A vector of `len` values as f64 (F64, F32 or F16 stored).
    pub(crate) fn vector_f64(&self, name: &str, len: usize) -> Result<Vec<f64>> {
        let info = self.info(name, &[len])?;
        let raw = self.raw(info);
        let mut out: Vec<f64> = self.buffer(name, len)?;
        match info.dtype {
            Dtype::F64 => out.copy_from_slice(&cast::<f64>(raw)),
            Dtype::F32 => out
                .iter_mut()
                .zip(cast::<f32>(raw).iter())
                .for_each(|(o, &v)| *o = v.into()),
            Dtype::F16 => out
                .iter_mut()
                .zip(cast::<f16>(raw).iter())
                .for_each(|(o, v)| *o = v.to_f64()),
            d => {
                return Err(self.err(
                    name,
                    format!("dtype {d:?} is not a float type sembed reads"),
                ));
            }
        }
        Ok(out)
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
