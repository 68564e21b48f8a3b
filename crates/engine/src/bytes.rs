//! The bytes of one model file, wherever they live: a read-only memory map, the executable's data
//! (the built-in model), or memory handed over by the caller. The tokenizer borrows its vocabulary
//! from them and the weights their tensors, so neither copies what it reads.

use std::sync::Arc;

/// Raw bytes of a model file.
pub(crate) enum Bytes {
    /// A read-only map of a file on disk.
    Mmap(memmap2::Mmap),
    /// Owned by this process (a small file read whole).
    Owned(Box<[u8]>),
    /// Shared with the caller (a model loaded from memory).
    Shared(Arc<[u8]>),
    /// Compiled into the executable.
    #[cfg(feature = "builtin")]
    Static(&'static [u8]),
}

impl Bytes {
    /// Whether these bytes come from a file (on disk or the executable), so pages dropped from
    /// this process (`MADV_DONTNEED`) read back unchanged. Heap bytes would read back as zeros, and
    /// so would the executable's data if a packer had unpacked it into anonymous memory: for those,
    /// the kernel's map of this process says.
    pub(crate) fn is_file_backed(&self) -> bool {
        match self {
            Bytes::Mmap(_) => true,
            #[cfg(feature = "builtin")]
            Bytes::Static(s) => crate::memory::is_file_mapping(s),
            Bytes::Owned(_) | Bytes::Shared(_) => false,
        }
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mmap(m) => m,
            Bytes::Owned(b) => b,
            Bytes::Shared(b) => b,
            #[cfg(feature = "builtin")]
            Bytes::Static(s) => s,
        }
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Bytes::Mmap(_) => "mapped",
            Bytes::Owned(_) => "owned",
            Bytes::Shared(_) => "shared",
            #[cfg(feature = "builtin")]
            Bytes::Static(_) => "static",
        };
        write!(f, "Bytes({kind}, {} bytes)", self.len())
    }
}
