//! Promotion on a release tag: find the image that was verified for the tag's commit.
//!
//! An image records the commit it was baked from in [`COMMIT_TAG`] and the gate's verdict in
//! [`STATUS_TAG`] (`baked` → `verified` | `rejected` → `promoted`). The release promotes the
//! newest image of the commit that passed every gate, and refuses when the commit's images
//! all failed or were never verified.

use crate::cloud::{Image, Tags, COMMIT_TAG, COPIED_FROM_TAG, STATUS_TAG};
use crate::error::{Error, Result};
use crate::promote::status;

/// The image to promote for `commit`: the newest available image baked from it (and carrying
/// `tags`) whose status is `verified` (or already `promoted`). Regional copies that promotion
/// made carry the commit too, but are not candidates: their source is. Refuses, naming what it
/// found, when none passed every gate.
pub fn image_for_commit(images: &[Image], commit: &str, tags: &Tags) -> Result<Image> {
    let mut candidates: Vec<&Image> = images
        .iter()
        .filter(|i| i.tags.get(COMMIT_TAG).map(String::as_str) == Some(commit))
        .filter(|i| !i.tags.contains_key(COPIED_FROM_TAG))
        .filter(|i| tags.iter().all(|(k, v)| i.tags.get(k) == Some(v)))
        .collect();
    candidates.sort_by(|a, b| (&b.created, &b.id).cmp(&(&a.created, &a.id)));
    let status_of = |i: &Image| {
        i.tags
            .get(STATUS_TAG)
            .cloned()
            .unwrap_or_else(|| "untagged".into())
    };
    if let Some(found) = candidates.iter().find(|i| {
        i.state == "available"
            && matches!(
                i.tags.get(STATUS_TAG).map(String::as_str),
                Some(status::VERIFIED | status::PROMOTED)
            )
    }) {
        return Ok((*found).clone());
    }
    let filter = if tags.is_empty() {
        String::new()
    } else {
        let t: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(" with tags {}", t.join(", "))
    };
    if candidates.is_empty() {
        return Err(Error::Build(format!(
            "no image{filter} was baked from commit {commit} ({COMMIT_TAG}={commit}): bake and verify this commit before tagging a release; nothing was promoted"
        )));
    }
    let listed: Vec<String> = candidates
        .iter()
        .map(|i| {
            format!(
                "{} ({}, {STATUS_TAG}={}, {})",
                i.id,
                i.name,
                status_of(i),
                i.state
            )
        })
        .collect();
    Err(Error::Build(format!(
        "refusing to promote: no image{filter} baked from commit {commit} passed every gate; found {}; only an image with {STATUS_TAG}={} is promoted",
        listed.join("; "),
        status::VERIFIED
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, commit: &str, status: &str, created: &str) -> Image {
        Image {
            id: id.into(),
            name: format!("web-{id}"),
            parent: None,
            tags: Tags::from([
                (COMMIT_TAG.to_string(), commit.to_string()),
                (STATUS_TAG.to_string(), status.to_string()),
                ("app".to_string(), "web".to_string()),
            ]),
            state: "available".into(),
            created: created.into(),
            size_bytes: 0,
        }
    }

    #[test]
    fn picks_the_newest_verified_image_of_the_commit() {
        let images = [
            image("ami-1", "abc", "verified", "2026-11-01T00:00:00Z"),
            image("ami-2", "abc", "verified", "2026-11-02T00:00:00Z"),
            image("ami-3", "abc", "rejected", "2026-11-03T00:00:00Z"),
            image("ami-4", "def", "verified", "2026-11-04T00:00:00Z"),
        ];
        let found = image_for_commit(&images, "abc", &Tags::new()).unwrap();
        assert_eq!(found.id, "ami-2");
    }

    #[test]
    fn a_regional_copy_is_never_the_image_to_promote() {
        let mut copy = image("ami-9", "abc", "promoted", "2026-11-05T00:00:00Z");
        copy.tags.insert(COPIED_FROM_TAG.into(), "ami-1".into());
        let images = [
            image("ami-1", "abc", "promoted", "2026-11-01T00:00:00Z"),
            copy,
        ];
        let found = image_for_commit(&images, "abc", &Tags::new()).unwrap();
        assert_eq!(found.id, "ami-1");
    }

    #[test]
    fn refuses_when_nothing_of_the_commit_passed() {
        let images = [
            image("ami-1", "abc", "rejected", "2026-11-01T00:00:00Z"),
            image("ami-2", "abc", "baked", "2026-11-02T00:00:00Z"),
            image("ami-4", "def", "verified", "2026-11-04T00:00:00Z"),
        ];
        let e = image_for_commit(&images, "abc", &Tags::new()).unwrap_err();
        let m = e.to_string();
        assert_eq!(e.exit_code(), 1);
        assert!(m.contains("refusing to promote"), "{m}");
        assert!(
            m.contains("ami-1 (web-ami-1, bakery:status=rejected"),
            "{m}"
        );
        assert!(m.contains("ami-2 (web-ami-2, bakery:status=baked"), "{m}");
        assert!(!m.contains("ami-4"), "{m}");
    }

    #[test]
    fn other_pipelines_images_do_not_count() {
        let images = [image("ami-1", "abc", "verified", "2026-11-01T00:00:00Z")];
        let tags = Tags::from([("app".to_string(), "db".to_string())]);
        let e = image_for_commit(&images, "abc", &tags).unwrap_err();
        assert!(e.to_string().contains("no image with tags app=db"), "{e}");
        let e = image_for_commit(&images, "0123", &Tags::new()).unwrap_err();
        assert!(e.to_string().contains("bakery:commit=0123"), "{e}");
    }
}
