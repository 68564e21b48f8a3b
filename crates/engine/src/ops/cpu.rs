//! Which instruction set the hand-written kernels use. Chosen per model at load time (from the
//! caller's cap and what the CPU has) and passed down to every kernel call, so two models in one
//! process may use different levels; nothing here reads the environment.

/// An instruction set, as a cap or a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Isa {
    /// Plain Rust loops (and `matrixmultiply`'s own kernels).
    Portable,
    /// WebAssembly 128-bit SIMD (a build with `+simd128`; no F16 conversion; FMA only in a build
    /// with relaxed SIMD too).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    Simd128,
    /// AVX2 + FMA + F16C.
    Avx2,
    /// AVX-512F on top of the AVX2 level.
    Avx512,
    /// AMX-BF16 tiles for the packed products (`amx.rs`), the AVX-512 level for the rest.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Amx,
}

/// An instruction set this CPU has: only [`detect`](Self::detect) makes one above portable, so
/// the kernels may rely on it (their `unsafe` dispatch does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpuLevel(Isa);

impl CpuLevel {
    /// The best level this CPU supports, at most `cap`.
    pub(crate) fn detect(cap: Isa) -> CpuLevel {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("f16c");
            let avx512 = avx2 && std::is_x86_feature_detected!("avx512f");
            // AMX only when asked for: detecting it asks the kernel for the tile state.
            let best = if avx512 && cap >= Isa::Amx && amx_usable() {
                Isa::Amx
            } else if avx512 {
                Isa::Avx512
            } else if avx2 {
                Isa::Avx2
            } else {
                Isa::Portable
            };
            CpuLevel(best.min(cap))
        }
        // wasm has no run-time detection: a module built with simd128 fails to instantiate
        // where it is missing, so the build decides.
        #[cfg(target_arch = "wasm32")]
        {
            let best = if cfg!(target_feature = "simd128") {
                Isa::Simd128
            } else {
                Isa::Portable
            };
            CpuLevel(best.min(cap))
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "wasm32")))]
        {
            let _ = cap;
            CpuLevel(Isa::Portable)
        }
    }

    /// The best level this CPU supports.
    #[cfg(test)]
    pub(crate) fn best() -> CpuLevel {
        Self::detect(Isa::Amx)
    }

    /// Plain loops: every CPU has them.
    pub(crate) fn portable() -> CpuLevel {
        CpuLevel(Isa::Portable)
    }

    /// Every level this CPU supports, portable first (for tests of each kernel).
    #[cfg(test)]
    pub(crate) fn available() -> Vec<CpuLevel> {
        let mut v = vec![Self::portable()];
        for isa in [Isa::Avx2, Isa::Avx512, Isa::Amx] {
            let l = Self::detect(isa);
            if l.0 == isa {
                v.push(l);
            }
        }
        v
    }

    /// The instruction set.
    pub(crate) fn isa(self) -> Isa {
        self.0
    }

    /// Its name as `sembed info` shows it.
    pub(crate) fn name(self) -> &'static str {
        match self.0 {
            Isa::Portable => "portable",
            Isa::Simd128 if cfg!(target_feature = "relaxed-simd") => "simd128-relaxed",
            Isa::Simd128 => "simd128",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Amx => "amx",
        }
    }

    /// Whether the AVX2 + FMA + F16C kernels may run (every level above portable has them).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn has_avx2(self) -> bool {
        self.0 >= Isa::Avx2
    }
}

/// Whether AMX tiles can run here (x86-64 Linux only: the tile state must be asked of the kernel).
#[cfg(target_arch = "x86_64")]
fn amx_usable() -> bool {
    #[cfg(target_os = "linux")]
    {
        super::amx::available()
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_is_never_exceeded() {
        assert_eq!(CpuLevel::detect(Isa::Portable).isa(), Isa::Portable);
        assert!(CpuLevel::detect(Isa::Avx2).isa() <= Isa::Avx2);
        assert!(CpuLevel::best().isa() >= CpuLevel::detect(Isa::Avx2).isa());
        assert_eq!(CpuLevel::available()[0], CpuLevel::portable());
    }
}
