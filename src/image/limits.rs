//! Bounds on what berth reads from an image, so that a hostile image fails
//! with an error naming the bound before it fills the disk or the memory.
//!
//! - **Uncompressed size** of each layer ([`ImageLimits::max_layer_size`])
//!   and of all of an image's layers together
//!   ([`ImageLimits::max_image_size`]): counted by the snapshotter while a
//!   layer unpacks, byte by byte as the decompressor yields them (tar
//!   headers, file contents, padding), so a gzip bomb stops as soon as it
//!   crosses the bound and its half-made layer is discarded.
//! - **Declared (compressed) size** of the layers: checked against the same
//!   bounds before a layer is fetched or copied
//!   ([`ImageLimits::check_declared`]), since a compressed layer is never
//!   much larger than its tar; and a download never takes more bytes than
//!   its descriptor declares (the content store stops it mid-stream).
//! - **JSON documents** (manifests, indexes, configs): at most
//!   [`MAX_JSON_BLOB`](super::store::MAX_JSON_BLOB), refused before they are
//!   read whole.
//!
//! The first two are the user's to set (`--max-layer-size`,
//! `--max-image-size`); the engine passes them down with every import, pull
//! and unpack.

use std::fmt;

use super::digest::Digest;
use super::record::LayerRecord;
use crate::manifest::quantity::ByteSize;

/// The default bound on one layer's uncompressed size. The largest images
/// in common use (CUDA and PyTorch development images, 10 to 20 GiB in all)
/// have single layers of several GiB; 16 GiB leaves them room, while a
/// bomb can take no more than that of the disk before it is stopped.
pub const DEFAULT_MAX_LAYER_SIZE: u64 = 16 << 30;

/// The default bound on an image's uncompressed size, all layers together:
/// four layers at the per-layer bound.
pub const DEFAULT_MAX_IMAGE_SIZE: u64 = 64 << 30;

/// How much larger than its tar a compressed layer may be: gzip's and
/// zstd's worst case on incompressible data is a few bytes per block (well
/// under 1%), plus headers.
fn compressed_allowance(limit: u64) -> u64 {
    limit.saturating_add(limit / 64).saturating_add(1 << 20)
}

/// The bounds one import, pull or unpack works under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Bytes one layer's uncompressed tar stream may hold.
    pub max_layer_size: u64,
    /// Bytes all of an image's layers may hold together, uncompressed
    /// (layers already unpacked for another image count too).
    pub max_image_size: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_layer_size: DEFAULT_MAX_LAYER_SIZE,
            max_image_size: DEFAULT_MAX_IMAGE_SIZE,
        }
    }
}

impl ImageLimits {
    /// No bound at all: for tools and tests that unpack trusted layers.
    pub fn unlimited() -> Self {
        ImageLimits {
            max_layer_size: u64::MAX,
            max_image_size: u64::MAX,
        }
    }

    /// The bound `bound` stands for.
    pub fn limit(&self, bound: Bound) -> u64 {
        match bound {
            Bound::Layer => self.max_layer_size,
            Bound::Image => self.max_image_size,
        }
    }

    /// Refuses an image whose layer descriptors already declare more
    /// (compressed) bytes than the bounds allow uncompressed: checked before
    /// anything is fetched or copied, so such a layer costs no disk at all.
    pub fn check_declared(&self, image: &str, layers: &[LayerRecord]) -> Result<(), TooLarge> {
        let mut total: u64 = 0;
        for layer in layers {
            let refuse = |bound, declared| TooLarge {
                image: image.to_string(),
                layer: layer.digest.clone(),
                bound,
                limit: self.limit(bound),
                declared: Some(declared),
            };
            if layer.size > compressed_allowance(self.max_layer_size) {
                return Err(refuse(Bound::Layer, layer.size));
            }
            total = total.saturating_add(layer.size);
            if total > compressed_allowance(self.max_image_size) {
                return Err(refuse(Bound::Image, total));
            }
        }
        Ok(())
    }
}

/// Which of the [`ImageLimits`] an image crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// One layer's uncompressed size.
    Layer,
    /// The image's uncompressed size, all layers together.
    Image,
}

impl Bound {
    /// The command-line option that sets this bound.
    pub fn option(self) -> &'static str {
        match self {
            Bound::Layer => "--max-layer-size",
            Bound::Image => "--max-image-size",
        }
    }

    /// The environment variable that sets this bound.
    pub fn env(self) -> &'static str {
        match self {
            Bound::Layer => "BERTH_MAX_LAYER_SIZE",
            Bound::Image => "BERTH_MAX_IMAGE_SIZE",
        }
    }
}

/// An image refused for its size: which image, at which layer, which
/// bound, and how to raise it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TooLarge {
    /// The image's name, as it would be recorded.
    pub image: String,
    /// The layer that crossed the bound (for [`Bound::Image`], the one at
    /// which the total crossed it).
    pub layer: Digest,
    pub bound: Bound,
    pub limit: u64,
    /// `Some(bytes)` when the descriptors' compressed sizes crossed the
    /// bound before anything was fetched; `None` when the bound was crossed
    /// while unpacking.
    pub declared: Option<u64>,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let TooLarge {
            image,
            layer,
            bound,
            limit,
            declared,
        } = self;
        let limit = ByteSize(*limit);
        match (bound, declared) {
            (Bound::Layer, None) => write!(f, "layer {layer} of {image} exceeds {limit} uncompressed")?,
            (Bound::Image, None) => write!(
                f,
                "image {image} exceeds {limit} uncompressed in all (crossed while unpacking layer {layer})"
            )?,
            (Bound::Layer, Some(bytes)) => write!(
                f,
                "layer {layer} of {image} is {bytes} bytes compressed, more than {limit} uncompressed could hold"
            )?,
            (Bound::Image, Some(bytes)) => write!(
                f,
                "the layers of {image} are {bytes} bytes compressed (up to layer {layer}), more than {limit} uncompressed could hold"
            )?,
        }
        write!(
            f,
            " (raise the bound with {} or {})",
            bound.option(),
            bound.env()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(name: &str, size: u64) -> LayerRecord {
        LayerRecord {
            digest: Digest::of(name.as_bytes()),
            media_type: super::super::oci::OCI_LAYER_GZIP.into(),
            size,
            diff_id: Digest::of(b"diff"),
            chain_id: Digest::of(b"chain"),
        }
    }

    #[test]
    fn defaults_hold_real_images_and_bound_the_whole_image_at_four_layers() {
        let limits = ImageLimits::default();
        assert_eq!(limits.max_layer_size, 16 << 30);
        assert_eq!(limits.max_image_size, 4 * limits.max_layer_size);
        let big_but_real = [layer("a", 6 << 30), layer("b", 9 << 30)];
        assert_eq!(limits.check_declared("cuda", &big_but_real), Ok(()));
    }

    #[test]
    fn a_layer_declaring_more_than_the_layer_bound_is_refused_before_fetching() {
        let limits = ImageLimits {
            max_layer_size: 1 << 20,
            max_image_size: 1 << 30,
        };
        // A compressed layer may be a little larger than its tar.
        assert_eq!(limits.check_declared("x", &[layer("ok", 1 << 20)]), Ok(()));
        let error = limits
            .check_declared("x", &[layer("ok", 10), layer("huge", 4 << 20)])
            .unwrap_err();
        assert_eq!(error.layer, Digest::of(b"huge"));
        assert_eq!(error.bound, Bound::Layer);
        assert_eq!(error.declared, Some(4 << 20));
    }

    #[test]
    fn layers_declaring_more_than_the_image_bound_together_are_refused() {
        let limits = ImageLimits {
            max_layer_size: 8 << 20,
            max_image_size: 12 << 20,
        };
        let layers = [
            layer("a", 6 << 20),
            layer("b", 6 << 20),
            layer("c", 6 << 20),
        ];
        let error = limits.check_declared("x", &layers).unwrap_err();
        assert_eq!((error.bound, error.layer), (Bound::Image, Digest::of(b"c")));
    }

    #[test]
    fn the_message_names_image_layer_bound_and_how_to_raise_it() {
        let error = TooLarge {
            image: "example.com/bomb:1".into(),
            layer: Digest::of(b"bomb"),
            bound: Bound::Layer,
            limit: 1 << 20,
            declared: None,
        };
        assert_eq!(
            error.to_string(),
            format!(
                "layer {} of example.com/bomb:1 exceeds 1Mi uncompressed \
                 (raise the bound with --max-layer-size or BERTH_MAX_LAYER_SIZE)",
                Digest::of(b"bomb")
            )
        );
        let image = TooLarge {
            bound: Bound::Image,
            limit: 64 << 30,
            ..error
        };
        let message = image.to_string();
        assert!(message.starts_with("image example.com/bomb:1 exceeds 64Gi uncompressed in all"));
        assert!(message.ends_with("--max-image-size or BERTH_MAX_IMAGE_SIZE)"));
    }
}
