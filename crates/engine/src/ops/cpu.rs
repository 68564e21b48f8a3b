//! Which instruction set the hand-written kernels use. Chosen per model at load time (from the
//! caller's cap and what the CPU has) and passed down to every kernel call, so two models in one
//! process may use different levels; nothing here reads the environment.

/// The widest vector instruction set a model's kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum CpuLevel {
    /// Plain Rust loops (and `matrixmultiply`'s own kernels).
    Portable,
    /// AVX2 + FMA + F16C.
    Avx2,
    /// AVX-512F on top of the AVX2 level.
    Avx512,
}

impl CpuLevel {
    /// The best level this CPU supports, at most `cap`.
    pub(crate) fn detect(cap: CpuLevel) -> CpuLevel {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("f16c");
            let best = if avx2 && std::is_x86_feature_detected!("avx512f") {
                CpuLevel::Avx512
            } else if avx2 {
                CpuLevel::Avx2
            } else {
                CpuLevel::Portable
            };
            best.min(cap)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = cap;
            CpuLevel::Portable
        }
    }

    /// Its name as `sembed info` shows it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            CpuLevel::Portable => "portable",
            CpuLevel::Avx2 => "avx2",
            CpuLevel::Avx512 => "avx512",
        }
    }

    /// Whether the AVX2 + FMA + F16C kernels may run (every level above portable has them).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn has_avx2(self) -> bool {
        self >= CpuLevel::Avx2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_is_never_exceeded() {
        assert_eq!(CpuLevel::detect(CpuLevel::Portable), CpuLevel::Portable);
        assert!(CpuLevel::detect(CpuLevel::Avx2) <= CpuLevel::Avx2);
        assert!(CpuLevel::detect(CpuLevel::Avx512) >= CpuLevel::detect(CpuLevel::Avx2));
    }
}
