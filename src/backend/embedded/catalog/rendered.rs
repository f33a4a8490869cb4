//! Response bodies drawn from a catalogue's images, kept while the catalogue
//! is current. A catalogue never changes (a commit makes the store read a
//! new one, which starts with none), so a body kept here is the drawing of
//! the image as it is now. The set is bounded in bytes (`embedded.response_cache_mib`);
//! quick_cache evicts the bodies used least (CLOCK-Pro) and takes a shard's
//! lock only for the lookup or the insert, never while a body is drawn.

use bytes::Bytes;
use quick_cache::sync::Cache;
use quick_cache::{Equivalent, Weighter};

/// An image (its position in the catalogue) and what was drawn of it.
#[derive(Hash, PartialEq, Eq)]
struct Key {
    index: u32,
    drawing: Box<str>,
}

/// A [`Key`] looked up without copying the drawing's name (hashes alike:
/// `Box<str>` and `&str` hash as `str`).
#[derive(Hash)]
struct Probe<'a> {
    index: u32,
    drawing: &'a str,
}

impl Equivalent<Key> for Probe<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.index == key.index && self.drawing == &*key.drawing
    }
}

/// What a kept body costs: its bytes, its key's, and about as much again
/// for the entry's bookkeeping.
#[derive(Clone)]
struct Size;

const ENTRY_OVERHEAD: u64 = 96;

impl Weighter<Key, Bytes> for Size {
    fn weight(&self, key: &Key, body: &Bytes) -> u64 {
        (key.drawing.len() + body.len()) as u64 + ENTRY_OVERHEAD
    }
}

pub struct Rendered {
    cache: Option<Cache<Key, Bytes, Size>>,
}

impl Default for Rendered {
    fn default() -> Self {
        Rendered::new(0)
    }
}

impl Rendered {
    /// At most `capacity` bytes of bodies; 0 keeps none.
    pub fn new(capacity: u64) -> Rendered {
        // Tables grow as bodies come: nothing is allocated for an idle catalogue.
        let estimated = usize::try_from(capacity / 2048).unwrap_or(usize::MAX).clamp(1, 1 << 16);
        Rendered {
            cache: (capacity > 0).then(|| Cache::with_weighter(estimated, capacity, Size)),
        }
    }

    /// The body `drawing` makes of image `index`: the one kept, else `draw()`'s, kept.
    pub fn get_or_draw(&self, index: usize, drawing: &str, draw: impl FnOnce() -> Vec<u8>) -> Bytes {
        let (Some(cache), Ok(index)) = (&self.cache, u32::try_from(index)) else {
            return Bytes::from(draw());
        };
        if let Some(body) = cache.get(&Probe { index, drawing }) {
            return body;
        }
        let body = Bytes::from(draw());
        cache.insert(
            Key {
                index,
                drawing: drawing.into(),
            },
            body.clone(),
        );
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_body_is_drawn_once_per_image_and_drawing() {
        let kept = Rendered::new(1 << 20);
        let draws = Cell::new(0);
        let draw = |s: &str| {
            draws.set(draws.get() + 1);
            s.as_bytes().to_vec()
        };
        assert_eq!(kept.get_or_draw(0, "show a", || draw("zero a")), "zero a");
        assert_eq!(kept.get_or_draw(0, "show a", || draw("again")), "zero a");
        assert_eq!(kept.get_or_draw(0, "show b", || draw("zero b")), "zero b");
        assert_eq!(kept.get_or_draw(1, "show a", || draw("one a")), "one a");
        assert_eq!(draws.get(), 3);
    }

    #[test]
    fn no_capacity_draws_every_time() {
        let kept = Rendered::new(0);
        assert_eq!(kept.get_or_draw(0, "k", || b"1".to_vec()), "1");
        assert_eq!(kept.get_or_draw(0, "k", || b"2".to_vec()), "2");
    }

    #[test]
    fn the_bytes_kept_stay_under_the_capacity() {
        let kept = Rendered::new(64 * 1024);
        for i in 0..1000 {
            kept.get_or_draw(i, "k", || vec![b'x'; 1024]);
        }
        let cache = kept.cache.as_ref().unwrap();
        assert!(cache.weight() <= 64 * 1024, "{} bytes kept", cache.weight());
        assert!(cache.len() > 10, "{} bodies kept", cache.len());
    }
}
