//! The promote stage: tag the verified image, point the pointer at it, apply retention.

use crate::cloud::{Image, Provider, Tags, STATUS_TAG};
use crate::config::Promote;
use crate::error::{Error, Result};
use crate::progress;

/// The tag naming the pointer an image was promoted through.
pub const POINTER_TAG: &str = "bakery:pointer";

/// An image's status as recorded in its [`STATUS_TAG`].
pub mod status {
    /// Baked, not yet verified.
    pub const BAKED: &str = "baked";
    /// Every gate passed.
    pub const VERIFIED: &str = "verified";
    /// A gate failed.
    pub const REJECTED: &str = "rejected";
    /// Verified and published.
    pub const PROMOTED: &str = "promoted";
}

/// What promotion did.
#[derive(Debug, Default)]
pub struct Promotion {
    /// The pointer and the version it now has.
    pub pointer: Option<(String, u64)>,
    /// Older images deleted by retention.
    pub deleted: Vec<String>,
    /// Problems that did not stop the promotion (an old image that could not be deleted).
    pub warnings: Vec<String>,
}

/// Records the gate's verdict on the image.
pub fn mark(provider: &dyn Provider, image: &Image, status: &str) -> Result<()> {
    provider.tag_image(
        &image.id,
        &Tags::from([(STATUS_TAG.to_string(), status.to_string())]),
    )
}

/// Promotes `image`, which must have passed verification.
pub fn promote(
    provider: &dyn Provider,
    image: &Image,
    config: Option<&Promote>,
) -> Result<Promotion> {
    let image = provider.image(&image.id)?;
    let current = image
        .tags
        .get(STATUS_TAG)
        .map(String::as_str)
        .unwrap_or("untagged");
    if current != status::VERIFIED && current != status::PROMOTED {
        return Err(Error::Build(format!(
            "image {} has {STATUS_TAG}={current}: only an image that passed every gate is promoted; run `bakery verify --image {}` first",
            image.id, image.id
        )));
    }
    let mut tags = Tags::from([(STATUS_TAG.to_string(), status::PROMOTED.to_string())]);
    let mut outcome = Promotion::default();
    let Some(config) = config else {
        provider.tag_image(&image.id, &tags)?;
        progress::note(&format!("{} promoted (no pointer configured)", image.id));
        return Ok(outcome);
    };
    tags.insert(POINTER_TAG.into(), config.pointer.clone());
    // The pointer moves first: an image is never tagged promoted while no pointer names it.
    // Both steps are idempotent, so running promote again finishes a half-done promotion.
    let version = provider.set_pointer(&config.pointer, &image.id)?;
    provider.tag_image(&image.id, &tags)?;
    progress::note(&format!(
        "pointer {} -> {} (version {version})",
        config.pointer, image.id
    ));
    outcome.pointer = Some((config.pointer.clone(), version));
    apply_retention(provider, config, &mut outcome)?;
    Ok(outcome)
}

/// Keeps the newest `keep` images promoted through the pointer; deletes older ones unless a
/// pointer still names them or another image is built on them.
fn apply_retention(
    provider: &dyn Provider,
    config: &Promote,
    outcome: &mut Promotion,
) -> Result<()> {
    let referenced: Vec<String> = provider.pointers()?.into_values().collect();
    let mut promoted: Vec<Image> = provider
        .images()?
        .into_iter()
        .filter(|i| {
            i.tags.get(STATUS_TAG).map(String::as_str) == Some(status::PROMOTED)
                && i.tags.get(POINTER_TAG) == Some(&config.pointer)
        })
        .collect();
    promoted.sort_by(|a, b| (&b.created, &b.id).cmp(&(&a.created, &a.id)));
    for old in promoted.iter().skip(config.keep) {
        if referenced.contains(&old.id) {
            continue;
        }
        match provider.delete_image(&old.id) {
            Ok(()) => {
                progress::note(&format!("retention: deleted {} ({})", old.id, old.name));
                outcome.deleted.push(old.id.clone());
            }
            Err(e) => {
                let warning = format!("retention: kept {}: {e}", old.id);
                progress::note(&warning);
                outcome.warnings.push(warning);
            }
        }
    }
    Ok(())
}
