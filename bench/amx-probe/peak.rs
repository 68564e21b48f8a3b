//! AMX probe (issue #17): how fast this host's AMX tiles multiply bf16 (TDPBF16PS, f32
//! accumulation), against the 185 GFLOP/s of sembed's f32 AVX-512 kernel on one core. Operands stay
//! in tile registers (4 independent accumulators), so this is the instruction's peak, not a GEMM's.
//! Not part of the product: the measurement behind BENCHMARKS.md's note on a bf16 three-product
//! kernel. Linux on a CPU with AMX only (`arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA)` first).
//!
//!   rustc -O --edition 2024 bench/amx-probe/peak.rs -o /tmp/amx-peak && /tmp/amx-peak
use std::arch::asm;
unsafe extern "C" {
    fn syscall(n: i64, a: i64, b: i64) -> i64;
}
#[repr(C, align(64))]
struct Cfg([u8; 64]);
fn main() {
    // SAFETY: arch_prctl(ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18) asks the kernel for
    // the tile state; the tile instructions below run only after it said yes, on buffers of the
    // sizes the tile configuration names (16 rows of 64 bytes).
    unsafe {
        assert_eq!(
            syscall(158, 0x1023, 18),
            0,
            "the kernel refused AMX tile state"
        );
        let mut c = Cfg([0u8; 64]);
        c.0[0] = 1;
        // Palette 1, eight tiles of 16 rows × 64 bytes (bytes per row at 16 + 2t, rows at 48 + t).
        for t in 0..8 {
            c.0[16 + 2 * t] = 64;
            c.0[48 + t] = 16;
        }
        asm!("ldtilecfg [{0}]", in(reg) c.0.as_ptr());
        let buf = vec![0x3f80u16; 16 * 32 * 4]; // bf16 1.0
        let p = buf.as_ptr() as *const u8;
        asm!("tileloadd tmm4, [{0} + {1}*1]", "tileloadd tmm5, [{0} + {1}*1]",
             "tileloadd tmm6, [{0} + {1}*1]", "tileloadd tmm7, [{0} + {1}*1]",
             "tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3",
             in(reg) p, in(reg) 64usize);
        let iters: u64 = 20_000_000;
        let t = std::time::Instant::now();
        for _ in 0..iters / 4 {
            asm!(
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tdpbf16ps tmm3, tmm5, tmm7"
            );
        }
        let dt = t.elapsed().as_secs_f64();
        let mut out = vec![0f32; 256];
        asm!("tilestored [{0} + {1}*1], tmm0", in(reg) out.as_mut_ptr(), in(reg) 64usize);
        asm!("tilerelease");
        let flop = iters as f64 * 16.0 * 16.0 * 32.0 * 2.0;
        println!("{:.1} GFLOP/s bf16 (out {} )", flop / dt / 1e9, out[0]);
    }
}
