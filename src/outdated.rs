//! `bakery outdated`: does the newest source image differ from the one the last promoted image
//! was baked from? A scheduled workflow bakes only when it does.

use std::path::Path;

use crate::bake::SOURCE_TAG;
use crate::cloud::{self, Image, STATUS_TAG};
use crate::config::LoadedPipeline;
use crate::error::Result;
use crate::ledger::Ledger;
use crate::pipeline;
use crate::promote::status;

/// The answer, with what it was based on.
#[derive(Debug, Clone)]
pub struct Staleness {
    /// True when a bake would start from a different source than the last promoted image did
    /// (or when nothing was promoted yet).
    pub outdated: bool,
    /// The source a bake would start from now.
    pub newest_source: Image,
    /// The last promoted image: the one the pointer names, else the newest promoted image
    /// carrying the pipeline's fixed tags.
    pub promoted: Option<Image>,
    /// One sentence explaining the answer.
    pub reason: String,
}

/// Resolves the pipeline's source as a bake would and compares it with the `bakery:source` tag
/// of the last promoted image.
pub fn check(loaded: &LoadedPipeline, data_dir: &Path) -> Result<Staleness> {
    let provider = cloud::open_for(loaded, data_dir)?;
    let run_id = format!(
        "outdated-{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S"),
        &cloud::new_id("r")[2..8]
    );
    // Resolving a source may create something (a local base image is bootstrapped on first
    // use), so it runs under a ledger like any stage.
    let ledger = Ledger::create(&pipeline::ledger_dir(data_dir), &run_id)?;
    {
        let (ledger, provider) = (ledger.clone(), provider.clone());
        crate::signals::set_emergency_cleanup(move || {
            ledger.unwind(Some(provider.as_ref()));
        });
    }
    let resolved = provider.resolve_source(&loaded.pipeline.source, &ledger);
    let errors = ledger.unwind(Some(provider.as_ref()));
    crate::signals::clear_emergency_cleanup();
    let newest_source = resolved?;
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }

    let promoted = match &loaded.pipeline.promote {
        Some(p) => match provider.pointer(&p.pointer)? {
            Some(id) => Some(provider.image(&id)?),
            None => None,
        },
        None => {
            let tags = loaded.fixed_image_tags();
            provider
                .images()?
                .into_iter()
                .filter(|i| i.tags.get(STATUS_TAG).map(String::as_str) == Some(status::PROMOTED))
                .filter(|i| tags.iter().all(|(k, v)| i.tags.get(k) == Some(v)))
                .max_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)))
        }
    };
    Ok(judge(newest_source, promoted))
}

/// Compares the newest source with the last promoted image's `bakery:source` tag.
pub fn judge(newest_source: Image, promoted: Option<Image>) -> Staleness {
    let (outdated, reason) = match &promoted {
        None => (
            true,
            format!(
                "no image has been promoted yet; the newest source is {} ({})",
                newest_source.id, newest_source.name
            ),
        ),
        Some(p) => match p.tags.get(SOURCE_TAG) {
            None => (
                true,
                format!(
                    "the last promoted image {} has no {SOURCE_TAG} tag; the newest source is {} ({})",
                    p.id, newest_source.id, newest_source.name
                ),
            ),
            Some(from) if *from == newest_source.id => (
                false,
                format!(
                    "the last promoted image {} was baked from {}, which is still the newest source",
                    p.id, newest_source.id
                ),
            ),
            Some(from) => (
                true,
                format!(
                    "the last promoted image {} was baked from {from}; the newest source is now {} ({})",
                    p.id, newest_source.id, newest_source.name
                ),
            ),
        },
    };
    Staleness {
        outdated,
        newest_source,
        promoted,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Tags;

    fn image(id: &str, source: Option<&str>) -> Image {
        let mut tags = Tags::new();
        if let Some(s) = source {
            tags.insert(SOURCE_TAG.into(), s.into());
        }
        Image {
            id: id.into(),
            name: id.into(),
            parent: None,
            tags,
            state: "available".into(),
            created: "2026-11-01T00:00:00Z".into(),
            size_bytes: 0,
        }
    }

    #[test]
    fn compares_the_source_tag() {
        let src = image("ami-src2", None);
        assert!(judge(src.clone(), None).outdated);
        let s = judge(src.clone(), Some(image("ami-p", Some("ami-src1"))));
        assert!(s.outdated);
        assert!(s.reason.contains("baked from ami-src1"), "{}", s.reason);
        let s = judge(src.clone(), Some(image("ami-p", Some("ami-src2"))));
        assert!(!s.outdated, "{}", s.reason);
        assert!(judge(src, Some(image("ami-p", None))).outdated);
    }
}
