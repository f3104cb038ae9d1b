//! Where an index's memory is: the addresses the Redis module hands to
//! the kernel to keep on huge pages (see `crate::hugepages`).

use super::{Index, Slot};

impl Index {
    /// The heap blocks a lookup reads, each as `(address, bytes)`: the
    /// tracks' hashes and the postings (see `hugepages`). Addresses only;
    /// they are stale as soon as the index changes.
    pub fn heap_blocks(&self, f: &mut dyn FnMut(usize, usize)) {
        f(
            self.slots.as_ptr() as usize,
            self.slots.len() * std::mem::size_of::<Slot>(),
        );
        for s in &self.slots {
            if !s.hashes.is_empty() {
                f(s.hashes.as_ptr() as usize, s.hashes.len() * 4);
            }
        }
        self.postings.heap_blocks(f);
    }
}
