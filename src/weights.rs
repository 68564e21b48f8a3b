//! Safetensors weights used in place: the file is memory-mapped (or, for the built-in model, a static
//! byte slice) and tensors are borrowed from it, never copied to the heap at load. Every accessor checks
//! dtype and shape and names the tensor in its error.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use rustc_hash::FxHashMap;
use safetensors::{Dtype, tensor::TensorInfo};

use crate::error::{Error, Result};

/// Raw bytes of a weights file.
pub(crate) enum Bytes {
    Mmap(memmap2::Mmap),
    #[cfg(feature = "builtin")]
    Static(&'static [u8]),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mmap(m) => m,
            #[cfg(feature = "builtin")]
            Bytes::Static(s) => s,
        }
    }
}

/// Access-pattern hints for [`SafeTensors::advise`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Advice {
    /// Map every page now.
    PopulateRead,
    /// Read sparsely: no read-around.
    Random,
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

    /// Tells the kernel how a tensor will be read (Linux `madvise`; a no-op elsewhere and on failure,
    /// since advice never changes results). Used to map the encoder's pages in one go
    /// (`MADV_POPULATE_READ`: thousands of page faults become one call) and to stop read-around on the
    /// large, sparsely read embedding table (`MADV_RANDOM`: only the rows' own pages become resident).
    pub(crate) fn advise(&self, name: &str, advice: Advice) {
        #[cfg(target_os = "linux")]
        if let Some(info) = self.tensors.get(name) {
            let raw = self.raw(info);
            let page = 4096;
            let start = raw.as_ptr() as usize / page * page;
            let end = raw.as_ptr() as usize + raw.len();
            let flag = match advice {
                Advice::PopulateRead => libc::MADV_POPULATE_READ,
                Advice::Random => libc::MADV_RANDOM,
            };
            // SAFETY: the range covers pages of a live, read-only mapping we own (the mmap or the
            // executable's own data); madvise with these flags never changes the memory's contents.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, flag) };
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (name, advice);
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
