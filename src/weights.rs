//! Safetensors weights used in place: the file is memory-mapped (or, for the built-in model, a static
//! byte slice) and tensors are borrowed from it, never copied to the heap at load. Every accessor checks
//! dtype and shape and names the tensor in its error.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use rustc_hash::FxHashMap;
use safetensors::{Dtype, tensor::TensorInfo};

use crate::error::{Error, Result};

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
    data_start: usize,
    tensors: FxHashMap<String, TensorInfo>,
    path: PathBuf,
}

/// A 2-D weight matrix `[rows, cols]`, row-major, in its stored dtype.
#[derive(Debug, Clone)]
pub(crate) enum Mat<'a> {
    F32(Cow<'a, [f32]>),
    F16(Cow<'a, [f16]>),
    BF16(Cow<'a, [bf16]>),
}

impl Mat<'_> {
    /// Copies row `r` (of width `cols`) into `out` as f32.
    pub(crate) fn row_into(&self, r: usize, cols: usize, out: &mut [f32]) {
        let span = r * cols..(r + 1) * cols;
        match self {
            Mat::F32(w) => out.copy_from_slice(&w[span]),
            Mat::F16(w) => half::slice::HalfFloatSliceExt::convert_to_f32_slice(&w[span], out),
            Mat::BF16(w) => half::slice::HalfFloatSliceExt::convert_to_f32_slice(&w[span], out),
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
        }
    }

    pub(crate) fn dtype_name(&self) -> &'static str {
        match self {
            Mat::F32(_) => "f32",
            Mat::F16(_) => "f16",
            Mat::BF16(_) => "bf16",
        }
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
        Self::from_bytes(Bytes::Mmap(mmap), path.to_path_buf())
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
            data_start: 8 + header_len,
            tensors,
            path,
        })
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
