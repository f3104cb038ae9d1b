//! What the monitor needs from an index: lookups and a track's hashes.
//! [`StoreCatalog`] serves them from Redis through `auscout-client`.

use auscout_client::{LookupOptions, Store};

use crate::MonitorError;

/// One track a lookup window matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub id: u64,
    pub descr: String,
    /// Track frame aligned with the window's first frame.
    pub position: i64,
    pub score: f64,
}

/// An index to monitor against.
pub trait Catalog {
    /// Every track matching the window (`auscout.lookup`).
    fn lookup(&self, hashes: &[u32], toggles: &[u32]) -> Result<Vec<Found>, MonitorError>;
    /// A track's whole hash sequence (`auscout.hashes`).
    fn track_hashes(&self, id: u64) -> Result<Vec<u32>, MonitorError>;
    /// Most toggle bits a query frame may carry.
    fn max_toggle_bits(&self) -> u32;
}

/// Frames read per `auscout.hashes` call.
const PAGE: u64 = 1 << 20;

/// A [`Store`] as a catalog, with the lookup options to send.
pub struct StoreCatalog<'a> {
    store: &'a Store,
    options: LookupOptions,
    max_toggle_bits: u32,
}

impl<'a> StoreCatalog<'a> {
    /// Asks the server for its toggle cap once (the module's default when
    /// it will not say).
    pub fn new(store: &'a Store, options: LookupOptions) -> Self {
        let max_toggle_bits = store
            .max_toggle_bits()
            .unwrap_or(auscout_core::defaults::MAX_TOGGLE_BITS);
        StoreCatalog {
            store,
            options,
            max_toggle_bits,
        }
    }
}

impl Catalog for StoreCatalog<'_> {
    fn lookup(&self, hashes: &[u32], toggles: &[u32]) -> Result<Vec<Found>, MonitorError> {
        let (found, _) = self.store.lookup(hashes, toggles, self.options)?;
        Ok(found
            .into_iter()
            .map(|m| Found {
                id: m.id,
                descr: m.descr,
                position: m.position,
                score: m.score,
            })
            .collect())
    }

    fn track_hashes(&self, id: u64) -> Result<Vec<u32>, MonitorError> {
        let mut all = Vec::new();
        loop {
            let (frames, page) = self.store.track_hashes(id, all.len() as u64, PAGE)?;
            let done = page.is_empty();
            all.extend(page);
            if done || all.len() as u64 >= frames {
                return Ok(all);
            }
        }
    }

    fn max_toggle_bits(&self) -> u32 {
        self.max_toggle_bits
    }
}
