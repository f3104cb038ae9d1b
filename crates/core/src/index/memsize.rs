//! What an allocation of `n` bytes really costs, so `mem_usage` matches the
//! allocator's figure: Redis uses jemalloc, whose size classes are spaced four
//! per power of two (8, 16, 32, 48, 64, 80, 96, 112, 128, 160, …); glibc's
//! large allocations round similarly or better.

pub(crate) fn alloc_size(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    if n <= 8 {
        return 8;
    }
    if n <= 16 {
        return 16;
    }
    let top = usize::BITS - 1 - (n - 1).leading_zeros();
    let step = (1usize << top.saturating_sub(2)).max(16);
    n.div_ceil(step).saturating_mul(step)
}

#[cfg(test)]
mod tests {
    use super::alloc_size;

    #[test]
    fn rounds_up_to_jemalloc_size_classes() {
        let classes: Vec<usize> = [1, 9, 17, 33, 49, 65, 100, 129, 200, 1000, 5000, 40_000]
            .iter()
            .map(|&n| alloc_size(n))
            .collect();
        assert_eq!(
            classes,
            vec![8, 16, 32, 48, 64, 80, 112, 160, 224, 1024, 5120, 40_960]
        );
        assert_eq!(alloc_size(0), 0);
        assert_eq!(alloc_size(1 << 20), 1 << 20);
        assert_eq!(alloc_size((1 << 20) + 1), (1 << 20) + (1 << 18));
    }
}
