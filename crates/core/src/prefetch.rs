//! A cache prefetch hint: with the SIMD dispatch of `matcher/verify.rs`, the
//! engine's only `unsafe`.
//!
//! Probing the index is a stream of independent random reads. Issuing them
//! as prefetches lets the CPU overlap their cache and TLB misses without
//! holding its reorder window, which plain loads do (see `Postings::probe`).

#![allow(unsafe_code)]

/// Asks the CPU to bring the cache line holding `p` into L1. A hint only:
/// it never faults, whatever the address, and does nothing on targets
/// without the instruction.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` reads nothing architecturally and cannot fault,
    // even for a dangling or out-of-bounds address.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_mm_prefetch(p.cast::<i8>(), core::arch::x86_64::_MM_HINT_T0)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
