//! Putting an index on transparent huge pages (Linux), now rather than
//! when the kernel gets round to it.
//!
//! A lookup's ~16,000 probes land at random in hundreds of MB: on 4 KB
//! pages nearly every one misses the TLB as well as the caches, and after
//! a pause the page walk misses the caches too. On 2 MB pages a 40M-frame
//! lookup takes about 30 % less. The allocator gives the index huge pages
//! where the host allows it, but every write frees memory (merges rewrite
//! partitions), and the allocator's purging of freed memory splits the
//! huge page around it: right after a build most of the index is on small
//! pages, and the kernel's `khugepaged` joins them again only minutes after
//! writes stop. [`collapse`] asks the kernel to join one 2 MB region at
//! once (`MADV_COLLAPSE`, Linux 6.1 and later): it copies the region into
//! a huge page, contents unchanged, whoever owns the memory.
//!
//! [`regions`] picks the regions worth it from an index's heap blocks
//! (`Index::heap_blocks`): those at least half covered by the index. The
//! rest of such a region is memory the allocator holds free, which the
//! collapse makes resident again: resident memory grows by at most what
//! the index itself covers, the allocator's accounting (Redis's
//! `used_memory`) not at all.

#![allow(unsafe_code)]

/// `MADV_COLLAPSE` (Linux `include/uapi/asm-generic/mman-common.h`; the
/// `libc` crate defines it for glibc targets only).
#[cfg(target_os = "linux")]
const MADV_COLLAPSE: libc::c_int = 25;

const THP_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/enabled";
const THP_SIZE: &str = "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size";

/// The size of a huge page when the host lets processes have them: THP
/// `always` or `madvise`; `None` with `never` or no THP at all (and off
/// Linux). `MADV_COLLAPSE` ignores the `enabled` setting, so this is what
/// keeps an operator's `never` a `never`.
pub fn huge_page_size() -> Option<usize> {
    let enabled = std::fs::read_to_string(THP_ENABLED).ok()?;
    if !enabled.contains("[always]") && !enabled.contains("[madvise]") {
        return None;
    }
    let size = std::fs::read_to_string(THP_SIZE)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (cfg!(target_os = "linux") && usize::is_power_of_two(size)).then_some(size)
}

/// The starts of the `page`-aligned regions (`page` a power of two) at
/// least half covered by `blocks` (`(address, bytes)`, disjoint, in any
/// order; sorted by this call), in increasing order.
pub fn regions(blocks: &mut [(usize, usize)], page: usize) -> Vec<usize> {
    blocks.sort_unstable();
    let mask = !(page - 1);
    let mut out = Vec::new();
    // The region being summed and how much of it is covered so far.
    let mut current: Option<(usize, usize)> = None;
    let close = |region: (usize, usize), out: &mut Vec<usize>| {
        if 2 * region.1 >= page {
            out.push(region.0);
        }
    };
    for &(at, bytes) in blocks.iter() {
        let end = at.saturating_add(bytes);
        let mut pos = at;
        while pos < end {
            let start = pos & mask;
            let upto = end.min(start.saturating_add(page));
            match &mut current {
                Some((r, covered)) if *r == start => *covered += upto - pos,
                _ => {
                    if let Some(done) = current.take() {
                        close(done, &mut out);
                    }
                    current = Some((start, upto - pos));
                }
            }
            if upto == pos {
                break;
            }
            pos = upto;
        }
    }
    if let Some(done) = current {
        close(done, &mut out);
    }
    out
}

/// Whether this process may collapse memory into huge pages: tried on a
/// mapping of its own. False on kernels before 6.1, when THP is disabled
/// for the process (`prctl(PR_SET_THP_DISABLE)`, which Redis's
/// `disable-thp` does on hosts with THP `always`), and off Linux.
pub fn collapse_supported(page: usize) -> bool {
    #[cfg(target_os = "linux")]
    {
        let len = 2 * page;
        // SAFETY: a fresh private anonymous mapping no Rust object points
        // into; unmapped below whatever happens.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return false;
        }
        let start = (map as usize + page - 1) & !(page - 1);
        // SAFETY: `start` is inside the mapping (it spans two pages), and
        // writing one byte there touches nothing else.
        unsafe { (start as *mut u8).write_volatile(1) };
        // SAFETY: the range lies in the mapping made above, which is ours.
        let ok = unsafe { libc::madvise(start as *mut libc::c_void, page, MADV_COLLAPSE) } == 0;
        // SAFETY: the mapping made above, no longer used.
        unsafe { libc::munmap(map, len) };
        ok
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = page;
        false
    }
}

/// Asks the kernel to put the `page`-aligned region at `start` (`page` of
/// [`huge_page_size`]) on one huge page now; true when it is (it may have
/// been already). It may not be: the region no longer mapped, or not all
/// in memory the kernel would give huge pages (another mapping's edge), or
/// no huge page free. Blocks the calling thread for the copy (about
/// 0.1–0.2 ms per 2 MB): call it from a background thread. Any address is
/// safe to pass: the call never changes what memory holds.
pub fn collapse(start: usize, page: usize) -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: MADV_COLLAPSE keeps the contents of the range (it copies
        // the small pages into a huge one, or leaves them), so no memory
        // visible to Rust changes; an unmapped range only makes it fail.
        unsafe { libc::madvise(start as *mut libc::c_void, page, MADV_COLLAPSE) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (start, page);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 1 << 21;

    #[test]
    fn keeps_the_regions_at_least_half_covered() {
        let mut blocks = vec![
            // Region 3: two blocks, half of it together.
            (3 * PAGE + PAGE / 2, PAGE / 4),
            (3 * PAGE, PAGE / 4),
            // Regions 10..13 whole, 13 a quarter: a block spanning regions.
            (10 * PAGE, 3 * PAGE + PAGE / 4),
            // Region 20: less than half.
            (20 * PAGE + 100, PAGE / 2 - 101),
            // Region 30: the end of one block and the start of the next.
            (30 * PAGE - 10, PAGE / 4 + 10),
            (30 * PAGE + PAGE / 4, PAGE / 4),
        ];
        assert_eq!(
            regions(&mut blocks, PAGE),
            vec![3 * PAGE, 10 * PAGE, 11 * PAGE, 12 * PAGE, 30 * PAGE]
        );
        assert!(regions(&mut [], PAGE).is_empty());
        assert!(regions(&mut [(5 * PAGE, 0)], PAGE).is_empty());
    }

    #[test]
    fn collapsing_keeps_the_contents() {
        // A buffer spanning several huge pages: whatever the kernel and the
        // host allow, the collapse leaves every byte as it was.
        let data: Vec<u64> = (0..(3 * PAGE / 8) as u64).map(|i| i * 7 + 1).collect();
        let mut blocks = vec![(data.as_ptr() as usize, data.len() * 8)];
        let found = regions(&mut blocks, PAGE);
        assert!(found.len() >= 2);
        let supported = collapse_supported(PAGE);
        let (lo, hi) = (blocks[0].0, blocks[0].0 + blocks[0].1);
        let inside = found.iter().filter(|&&r| lo <= r && r + PAGE <= hi).count();
        let done = found.iter().filter(|&&start| collapse(start, PAGE)).count();
        assert!(data.iter().enumerate().all(|(i, &v)| v == i as u64 * 7 + 1));
        // Where the kernel collapses at all, it does at least the regions
        // wholly inside the buffer (a region reaching past the mapping's
        // end may fail).
        assert!(
            inside >= 1 && (!supported || done >= inside),
            "{done} of {inside}"
        );
        // Memory that is not mapped: refused, nothing happens.
        assert!(!collapse(PAGE, PAGE));
    }
}
