//! How many uncompressed bytes the layers of one image may still unpack.
//!
//! Lifecycle: [`Snapshotter::ensure_layers_within`](super::Snapshotter::ensure_layers_within)
//! makes one [`ImageBudget`] per image from its [`ImageLimits`] (counting
//! the layers already unpacked), hands each layer's unpack a
//! [`LayerBudget`], and the unpacker [`LayerBudget::take`]s every chunk the
//! decompressor yields before the tar parser sees it. The first chunk that
//! would cross a bound is refused with [`Exceeded`], so no more than the
//! bound is ever written; the layer is then discarded. Layers unpack in
//! parallel, so the image's count is shared (atomic) and a layer that
//! crosses the image bound stops the others at their next chunk.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::image::limits::{Bound, ImageLimits};
use crate::manifest::quantity::ByteSize;

/// A bound an unpack crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the uncompressed layer stream goes past {} ({} bound)", ByteSize(*.limit), .bound.option())]
pub struct Exceeded {
    pub bound: Bound,
    pub limit: u64,
}

/// The bytes one image's layers have unpacked, against its limits.
#[derive(Debug)]
pub struct ImageBudget {
    limits: ImageLimits,
    used: AtomicU64,
}

impl ImageBudget {
    /// A budget for an image whose other layers, already unpacked, hold
    /// `committed` bytes.
    pub fn new(limits: ImageLimits, committed: u64) -> Self {
        ImageBudget {
            limits,
            used: AtomicU64::new(committed),
        }
    }

    /// No bound: for unpacks outside an image (tools, tests).
    pub fn unlimited() -> Self {
        Self::new(ImageLimits::unlimited(), 0)
    }

    /// The budget of one of the image's layers, starting at zero.
    pub fn layer(&self) -> LayerBudget<'_> {
        LayerBudget {
            image: self,
            used: 0,
        }
    }

    /// Bytes the image's layers hold so far.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

/// The bytes one layer has unpacked.
#[derive(Debug)]
pub struct LayerBudget<'a> {
    image: &'a ImageBudget,
    used: u64,
}

impl LayerBudget<'_> {
    /// Counts `bytes` more; refuses them when they take the layer or the
    /// image past its bound. Once refused, the unpack must stop: the
    /// refused bytes stay counted against the image, so the other layers
    /// stop too.
    pub fn take(&mut self, bytes: u64) -> Result<(), Exceeded> {
        let limits = self.image.limits;
        self.used = self.used.saturating_add(bytes);
        let image_used = self
            .image
            .used
            .fetch_add(bytes, Ordering::Relaxed)
            .saturating_add(bytes);
        if self.used > limits.max_layer_size {
            return Err(Exceeded {
                bound: Bound::Layer,
                limit: limits.max_layer_size,
            });
        }
        if image_used > limits.max_image_size {
            return Err(Exceeded {
                bound: Bound::Image,
                limit: limits.max_image_size,
            });
        }
        Ok(())
    }

    /// Bytes this layer holds so far.
    pub fn used(&self) -> u64 {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(layer: u64, image: u64) -> ImageLimits {
        ImageLimits {
            max_layer_size: layer,
            max_image_size: image,
        }
    }

    #[test]
    fn a_layer_may_reach_its_bound_but_not_pass_it() {
        let image = ImageBudget::new(limits(100, 1000), 0);
        let mut layer = image.layer();
        assert_eq!(layer.take(60), Ok(()));
        assert_eq!(layer.take(40), Ok(()));
        assert_eq!(
            layer.take(1),
            Err(Exceeded {
                bound: Bound::Layer,
                limit: 100
            })
        );
        assert_eq!(layer.used(), 101);
    }

    #[test]
    fn the_image_bound_counts_every_layer_and_what_was_unpacked_before() {
        let image = ImageBudget::new(limits(100, 250), 100);
        let mut first = image.layer();
        let mut second = image.layer();
        assert_eq!(first.take(80), Ok(()));
        assert_eq!(second.take(70), Ok(()));
        assert_eq!(image.used(), 250);
        let crossed = second.take(1).unwrap_err();
        assert_eq!(crossed.bound, Bound::Image);
        assert_eq!(crossed.limit, 250);
        // The image is over its bound now: the other layer stops too.
        assert_eq!(first.take(1).unwrap_err().bound, Bound::Image);
    }

    #[test]
    fn the_layer_bound_is_reported_before_the_image_bound() {
        let image = ImageBudget::new(limits(10, 10), 0);
        assert_eq!(image.layer().take(11).unwrap_err().bound, Bound::Layer);
    }

    #[test]
    fn an_unlimited_budget_never_refuses() {
        let image = ImageBudget::unlimited();
        let mut layer = image.layer();
        assert_eq!(layer.take(u64::MAX / 2), Ok(()));
        assert_eq!(layer.take(u64::MAX / 2), Ok(()));
        assert_eq!(layer.take(u64::MAX), Ok(()));
    }

    #[test]
    fn the_error_names_the_bound_and_its_option() {
        let exceeded = Exceeded {
            bound: Bound::Layer,
            limit: 1 << 20,
        };
        assert_eq!(
            exceeded.to_string(),
            "the uncompressed layer stream goes past 1Mi (--max-layer-size bound)"
        );
    }
}
