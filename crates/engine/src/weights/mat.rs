//! Borrowed views of tensors: 2-D matrices in their stored float dtype, and the row table the
//! word embeddings are read from.

use std::borrow::Cow;

use half::{bf16, f16};

/// A 2-D weight matrix `[rows, cols]`, row-major, in its stored dtype (borrowed from the file, or
/// copied when the file placed it misaligned).
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
            Mat::F32(w) => out[..cols].copy_from_slice(&w[span]),
            Mat::F16(w) => {
                half::slice::HalfFloatSliceExt::convert_to_f32_slice(&w[span], &mut out[..cols])
            }
            Mat::BF16(w) => {
                half::slice::HalfFloatSliceExt::convert_to_f32_slice(&w[span], &mut out[..cols])
            }
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

    /// The stored dtype's name (`f32`, `f16`, `bf16`).
    pub(crate) fn dtype_name(&self) -> &'static str {
        match self {
            Mat::F32(_) => "f32",
            Mat::F16(_) => "f16",
            Mat::BF16(_) => "bf16",
        }
    }

    /// The stored bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Mat::F32(w) => bytemuck::cast_slice(w),
            Mat::F16(w) => bytemuck::cast_slice(w),
            Mat::BF16(w) => bytemuck::cast_slice(w),
        }
    }

    /// Whether the data is borrowed from the file (not a copy).
    pub(crate) fn is_borrowed(&self) -> bool {
        matches!(
            self,
            Mat::F32(Cow::Borrowed(_)) | Mat::F16(Cow::Borrowed(_)) | Mat::BF16(Cow::Borrowed(_))
        )
    }
}

/// A table of which each pass reads a few scattered rows (the word embeddings: half of a MiniLM
/// file). Rows of an f32 table in a mapped file are read with `pread` instead of through the
/// mapping: a page fault maps its 15 neighbours too ("fault-around", which `madvise` cannot turn
/// off), so a few thousand distinct tokens made nearly the whole 47 MB table resident. Reading
/// them costs a system call per token instead (cheaper than the page fault it replaces).
#[derive(Debug)]
pub(crate) struct RowTable<'a> {
    pub(super) mat: Mat<'a>, // [rows, cols]
    /// The file and the byte offset of the table in it, when rows are read from the file.
    #[cfg_attr(not(all(unix, target_endian = "little")), allow(dead_code))]
    pub(super) file: Option<(&'a std::fs::File, u64)>,
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

    /// The stored dtype's name.
    pub(crate) fn dtype_name(&self) -> &'static str {
        self.mat.dtype_name()
    }
}

/// `bytes` as a slice of `T`: borrowed when aligned, else copied (a tensor placed at an odd offset
/// by the tensors before it).
pub(crate) fn cast<T: bytemuck::Pod>(bytes: &[u8]) -> Cow<'_, [T]> {
    match bytemuck::try_cast_slice(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(bytemuck::pod_collect_to_vec(bytes)),
    }
}
