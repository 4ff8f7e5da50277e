//! The promote stage: tag the verified image, point the pointer at it, apply retention.
//!
//! With a provider that has regions (AWS), promotion publishes the image in its own region and
//! every region of `promote.regions`, in parallel (at most [`MAX_IN_FLIGHT`] at once): a copy
//! encrypted with the region's key, shared, deprecated in time, named by the pointer. One
//! region failing does not stop the others; every region's outcome is collected and reported,
//! then the promotion fails naming what to run again.

use std::sync::Mutex;

use serde::Serialize;

use crate::cloud::{Image, ImageOrigin, Provider, RegionOutcome, RegionPlan, Tags, STATUS_TAG};
use crate::config::Promote;
use crate::error::{Error, Result};
use crate::progress;

/// How many regions are worked on at once (copies in flight).
pub const MAX_IN_FLIGHT: usize = 4;

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
#[derive(Debug, Default, Clone, Serialize)]
pub struct Promotion {
    /// The promoted image.
    pub image: String,
    /// The pointer and the version it now has (in the image's own region).
    pub pointer: Option<(String, u64)>,
    /// Each region's outcome, for a provider with regions; in the order configured.
    pub regions: Vec<RegionResult>,
    /// Older images deleted by retention (`region/ami-…` with regions).
    pub deleted: Vec<String>,
    /// What retention decided in each region (printed before anything is deleted).
    pub retention: Vec<RetentionPlan>,
    /// A dry run: nothing was changed.
    pub dry_run: bool,
    /// Problems that did not stop the promotion (an old image that could not be deleted).
    pub warnings: Vec<String>,
    /// The command that finishes a promotion that failed in some region.
    pub rerun: Option<String>,
}

impl Promotion {
    /// The regions where promotion failed.
    pub fn failed(&self) -> Vec<&RegionResult> {
        self.regions.iter().filter(|r| r.error.is_some()).collect()
    }

    /// Region → image id, for the regions that succeeded.
    pub fn images(&self) -> std::collections::BTreeMap<String, String> {
        self.regions
            .iter()
            .filter_map(|r| Some((r.region.clone(), r.image.clone()?)))
            .collect()
    }

    /// True when promotion changed nothing anywhere (every region was complete already).
    pub fn unchanged(&self) -> bool {
        !self.regions.is_empty()
            && self.regions.iter().all(|r| {
                r.error.is_none()
                    && r.origin != Some(ImageOrigin::Copied)
                    && r.granted.is_empty()
                    && !r.pointer_changed
            })
    }
}

/// What retention does in one region: the images of generations older than the newest `keep`
/// are deleted, unless something still uses them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionPlan {
    pub region: String,
    /// Promoted images kept as the newest `keep`.
    pub newest: Vec<String>,
    /// Older images to delete (deleted, unless this is a dry run).
    pub delete: Vec<String>,
    /// Older images kept because something uses them: image → uses.
    pub in_use: std::collections::BTreeMap<String, Vec<String>>,
}

impl RetentionPlan {
    /// `retention in eu-west-1: newest kept: ami-…; deletes ami-…; keeps ami-… (in use: …)`.
    pub fn line(&self) -> String {
        let mut parts = vec![format!(
            "retention in {}: newest kept: {}",
            self.region,
            if self.newest.is_empty() {
                "none yet".to_string()
            } else {
                self.newest.join(", ")
            }
        )];
        if !self.delete.is_empty() {
            parts.push(format!("deletes {}", self.delete.join(", ")));
        }
        for (image, uses) in &self.in_use {
            parts.push(format!("keeps {image} (in use: {})", uses.join(", ")));
        }
        if self.delete.is_empty() && self.in_use.is_empty() {
            parts.push("nothing older".into());
        }
        parts.join("; ")
    }
}

/// One region's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionResult {
    pub region: String,
    /// `done` or `failed`.
    pub status: &'static str,
    /// The region's image, once it has one.
    pub image: Option<String>,
    /// `source`, `copied` or `reused`.
    pub origin: Option<ImageOrigin>,
    /// Permissions granted by this run.
    pub granted: Vec<String>,
    pub pointer_version: Option<u64>,
    pub pointer_changed: bool,
    pub deprecate_at: Option<String>,
    /// Why the region failed.
    pub error: Option<String>,
}

impl RegionResult {
    fn done(o: RegionOutcome) -> RegionResult {
        RegionResult {
            region: o.region,
            status: "done",
            image: Some(o.image),
            origin: Some(o.origin),
            granted: o.granted,
            pointer_version: Some(o.pointer_version),
            pointer_changed: o.pointer_changed,
            deprecate_at: o.deprecate_at,
            error: None,
        }
    }

    fn failed(region: &str, e: &Error) -> RegionResult {
        RegionResult {
            region: region.to_string(),
            status: "failed",
            image: None,
            origin: None,
            granted: Vec::new(),
            pointer_version: None,
            pointer_changed: false,
            deprecate_at: None,
            error: Some(e.to_string()),
        }
    }

    /// One line for the terminal: `eu-west-1: copied ami-… ; 2 permissions granted; pointer
    /// /golden/web version 3`.
    pub fn line(&self, pointer: &str) -> String {
        if let Some(e) = &self.error {
            return format!("{}: FAILED: {e}", self.region);
        }
        let image = self.image.as_deref().unwrap_or("?");
        let origin = match self.origin {
            Some(ImageOrigin::Source) => format!("{image} (the image itself)"),
            Some(ImageOrigin::Copied) => format!("copied to {image}"),
            Some(ImageOrigin::Reused) => format!("{image} (copied before, reused)"),
            None => image.to_string(),
        };
        let granted = match self.granted.len() {
            0 => String::new(),
            n => format!("; {n} permission{} granted", if n == 1 { "" } else { "s" }),
        };
        let pointer = match (self.pointer_version, self.pointer_changed) {
            (Some(v), true) => format!("; pointer {pointer} -> version {v}"),
            (Some(v), false) => format!("; pointer {pointer} unchanged (version {v})"),
            _ => String::new(),
        };
        let deprecation = self
            .deprecate_at
            .as_ref()
            .map(|t| format!("; deprecated from {t}"))
            .unwrap_or_default();
        format!("{}: {origin}{granted}{pointer}{deprecation}", self.region)
    }
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
    dry_run: bool,
) -> Result<Promotion> {
    let image = provider.image(&image.id)?;
    let current = image
        .tags
        .get(STATUS_TAG)
        .map(String::as_str)
        .unwrap_or("untagged");
    if let Some(source) = image.tags.get(crate::cloud::COPIED_FROM_TAG) {
        return Err(Error::Config(format!(
            "image {} is a copy that promotion made of {source}; promote {source} instead (`bakery promote --image {source}`), which publishes it in every region",
            image.id
        )));
    }
    if current != status::VERIFIED && current != status::PROMOTED {
        return Err(Error::Build(format!(
            "image {} has {STATUS_TAG}={current}: only an image that passed every gate is promoted; run `bakery verify --image {}` first",
            image.id, image.id
        )));
    }
    let mut tags = Tags::from([(STATUS_TAG.to_string(), status::PROMOTED.to_string())]);
    let mut outcome = Promotion {
        image: image.id.clone(),
        dry_run,
        ..Promotion::default()
    };
    if dry_run {
        return dry_run_plan(provider, &image, config, outcome);
    }
    let Some(config) = config else {
        provider.tag_image(&image.id, &tags)?;
        progress::note(&format!("{} promoted (no pointer configured)", image.id));
        return Ok(outcome);
    };
    tags.insert(POINTER_TAG.into(), config.pointer.clone());
    if let Some(home) = provider.home_region() {
        distribute(provider, &image, config, &home, &mut outcome)?;
        if !outcome.failed().is_empty() {
            return Ok(outcome);
        }
        provider.tag_image(&image.id, &tags)?;
        let regions: Vec<String> = outcome.regions.iter().map(|r| r.region.clone()).collect();
        outcome.retention = retention_plans(provider, config, &regions, &image.id)?;
        apply_regional_retention(provider, &mut outcome);
        return Ok(outcome);
    }
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

/// Publishes the image in its own region and every configured one, at most [`MAX_IN_FLIGHT`]
/// regions at a time, and records each region's outcome. Refuses before anything starts when
/// the image would be shared while encrypted with a key other accounts cannot use.
fn distribute(
    provider: &dyn Provider,
    image: &Image,
    config: &Promote,
    home: &str,
    outcome: &mut Promotion,
) -> Result<()> {
    let plans = plans(image, config, home)?;
    let queue = Mutex::new(plans.iter().enumerate());
    let results: Mutex<Vec<(usize, RegionResult)>> = Mutex::new(Vec::new());
    let workers = MAX_IN_FLIGHT.min(plans.len());
    progress::note(&format!(
        "promoting {} to {} region{} ({} at a time)",
        image.id,
        plans.len(),
        if plans.len() == 1 { "" } else { "s" },
        workers
    ));
    progress::announce("promote-copies");
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let Some((i, plan)) = queue.lock().unwrap_or_else(|p| p.into_inner()).next() else {
                    return;
                };
                let result = match provider.distribute(image, plan) {
                    Ok(o) => RegionResult::done(o),
                    Err(e) => RegionResult::failed(&plan.region, &e),
                };
                progress::note(&result.line(&config.pointer));
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((i, result));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(i, _)| *i);
    outcome.regions = results.into_iter().map(|(_, r)| r).collect();
    if let Some(home_result) = outcome.regions.iter().find(|r| r.region == home) {
        if let Some(v) = home_result.pointer_version {
            outcome.pointer = Some((config.pointer.clone(), v));
        }
    }
    crate::signals::check()
}

/// What a promotion would do, printed, with nothing changed: the regions and keys, and the
/// retention plan as things stand.
fn dry_run_plan(
    provider: &dyn Provider,
    image: &Image,
    config: Option<&Promote>,
    mut outcome: Promotion,
) -> Result<Promotion> {
    let Some(config) = config else {
        progress::note(&format!(
            "dry run: would tag {} {STATUS_TAG}=promoted (no pointer configured)",
            image.id
        ));
        return Ok(outcome);
    };
    let Some(home) = provider.home_region() else {
        progress::note(&format!(
            "dry run: would point {} at {}, then keep the newest {} promoted images",
            config.pointer, image.id, config.keep
        ));
        return Ok(outcome);
    };
    let plans = plans(image, config, &home)?;
    for p in &plans {
        let how = match (&p.kms_key, p.region == home) {
            (None, true) => format!("{} itself", image.id),
            (None, false) => format!("a copy of {} with the region's default EBS key", image.id),
            (Some(k), _) => format!("a copy of {} encrypted with {k}", image.id),
        };
        progress::note(&format!(
            "dry run: {}: would publish {how} (an earlier copy is reused), share it with {} account(s), {} organisation(s), {} OU(s), point {} at it",
            p.region,
            config.share.accounts.len(),
            config.share.organizations.len(),
            config.share.organizational_units.len(),
            config.pointer
        ));
    }
    let regions: Vec<String> = plans.iter().map(|p| p.region.clone()).collect();
    outcome.retention = retention_plans(provider, config, &regions, &image.id)?;
    for plan in &outcome.retention {
        progress::note(&format!("dry run: {}", plan.line()));
    }
    progress::note("dry run: nothing was changed");
    Ok(outcome)
}

/// Per region: the promoted images of this pointer grouped by the image they were copied
/// from (one generation per promoted image); the generation being promoted and the newest
/// `keep` are kept; older images are deleted unless something uses them.
fn retention_plans(
    provider: &dyn Provider,
    config: &Promote,
    regions: &[String],
    current: &str,
) -> Result<Vec<RetentionPlan>> {
    let mut plans = Vec::new();
    for region in regions {
        let promoted: Vec<Image> = provider
            .images_in(region)?
            .into_iter()
            .filter(|i| {
                i.tags.get(STATUS_TAG).map(String::as_str) == Some(status::PROMOTED)
                    && i.tags.get(POINTER_TAG) == Some(&config.pointer)
            })
            .collect();
        let generation = |i: &Image| {
            i.tags
                .get(crate::cloud::COPIED_FROM_TAG)
                .cloned()
                .unwrap_or_else(|| i.id.clone())
        };
        // Generations, newest first (by their newest image). The one being promoted takes
        // one of the `keep` places even where it has no image yet (a dry run, a region it
        // is still being copied to), so that the plan is the same before and after.
        let mut generations: Vec<(String, String)> = Vec::new();
        for i in &promoted {
            let g = generation(i);
            match generations.iter_mut().find(|(k, _)| *k == g) {
                Some((_, newest)) if *newest < i.created => *newest = i.created.clone(),
                Some(_) => {}
                None => generations.push((g, i.created.clone())),
            }
        }
        generations.retain(|(g, _)| g != current);
        generations.sort_by(|a, b| (&b.1, &b.0).cmp(&(&a.1, &a.0)));
        let mut kept: Vec<&str> = vec![current];
        kept.extend(
            generations
                .iter()
                .take(config.keep.saturating_sub(1))
                .map(|(g, _)| g.as_str()),
        );
        let (newest, older): (Vec<&Image>, Vec<&Image>) = promoted
            .iter()
            .partition(|i| kept.contains(&generation(i).as_str()));
        let older: Vec<Image> = older.into_iter().cloned().collect();
        let uses = if older.is_empty() {
            Default::default()
        } else {
            provider.uses_in(region, &older)?
        };
        let mut plan = RetentionPlan {
            region: region.clone(),
            newest: newest.iter().map(|i| i.id.clone()).collect(),
            ..RetentionPlan::default()
        };
        for i in older {
            match uses.get(&i.id) {
                Some(u) if !u.is_empty() => {
                    plan.in_use.insert(i.id.clone(), u.clone());
                }
                _ => plan.delete.push(i.id.clone()),
            }
        }
        plans.push(plan);
    }
    Ok(plans)
}

/// Prints every region's retention plan, then deletes what the plans say.
fn apply_regional_retention(provider: &dyn Provider, outcome: &mut Promotion) {
    for plan in &outcome.retention {
        progress::note(&plan.line());
    }
    for plan in outcome.retention.clone() {
        for id in &plan.delete {
            match provider.delete_image_in(&plan.region, id) {
                Ok(()) => {
                    progress::note(&format!("retention: deleted {id} in {}", plan.region));
                    outcome.deleted.push(format!("{}/{id}", plan.region));
                }
                Err(e) => {
                    let warning = format!("retention: kept {id} in {}: {e}", plan.region);
                    progress::note(&warning);
                    outcome.warnings.push(warning);
                }
            }
        }
    }
}

/// One plan per region: the image's own region first, then the configured ones.
fn plans(image: &Image, config: &Promote, home: &str) -> Result<Vec<RegionPlan>> {
    let mut tags = image.tags.clone();
    tags.insert(POINTER_TAG.into(), config.pointer.clone());
    let deprecate_at = match config.deprecate_after {
        Some(after) => Some(deprecation_time(&image.created, after.0)?),
        None => None,
    };
    let plan = |region: &str, kms_key: Option<String>| RegionPlan {
        region: region.to_string(),
        kms_key,
        share: config.share.clone(),
        pointer: config.pointer.clone(),
        deprecate_at,
        tags: tags.clone(),
        status: status::PROMOTED.into(),
    };
    let home_key = config
        .regions
        .iter()
        .find(|r| r.region.0 == home)
        .and_then(|r| r.kms_key.as_ref().map(|k| k.0.clone()));
    if !config.share.is_empty() && home_key.is_none() {
        return Err(Error::Config(format!(
            "promote.share: the image {} is in {home}, encrypted with the key it was baked with (by default the AWS-managed `aws/ebs` key, which other accounts cannot use), and promote.regions gives {home} no `kms_key`; add `- {{region: {home}, kms_key: <a customer-managed key of {home}>}}` to promote.regions so that the image shared there is a copy encrypted with it. Nothing was promoted",
            image.id
        )));
    }
    let mut plans = vec![plan(home, home_key)];
    for r in config.regions.iter().filter(|r| r.region.0 != home) {
        plans.push(plan(&r.region.0, r.kms_key.as_ref().map(|k| k.0.clone())));
    }
    Ok(plans)
}

/// The deprecation time of an image created at `created` (RFC 3339): `after` later, rounded
/// up to a whole minute as EC2 stores it, so that a later run computes the same time.
fn deprecation_time(
    created: &str,
    after: std::time::Duration,
) -> Result<chrono::DateTime<chrono::Utc>> {
    let created = chrono::DateTime::parse_from_rfc3339(created)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            Error::Infra(format!(
                "the image's creation time `{created}` is not RFC 3339 ({e}); cannot compute its deprecation time"
            ))
        })?;
    let after = chrono::Duration::from_std(after)
        .map_err(|_| Error::Config("promote.deprecate_after: too long a duration".into()))?;
    let at = created + after;
    let secs = at.timestamp();
    let rounded = (secs + 59).div_euclid(60) * 60;
    chrono::DateTime::from_timestamp(rounded, 0)
        .ok_or_else(|| Error::Config("promote.deprecate_after: too long a duration".into()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{KmsKey, Region, RegionTarget};

    fn image() -> Image {
        Image {
            id: "ami-0123456789abcdef0".into(),
            name: "golden-1".into(),
            parent: None,
            tags: Tags::from([("app".to_string(), "web".to_string())]),
            state: "available".into(),
            created: "2026-01-01T10:00:30.000Z".into(),
            size_bytes: 0,
        }
    }

    fn config(yaml: &str) -> Promote {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn the_home_region_comes_first_and_carries_its_key_when_listed() {
        let c = config(
            "pointer: /p\nregions:\n  - eu-west-1\n  - {region: us-east-1, kms_key: alias/k}\n",
        );
        let p = plans(&image(), &c, "us-east-1").unwrap();
        let regions: Vec<_> = p.iter().map(|p| p.region.as_str()).collect();
        assert_eq!(regions, ["us-east-1", "eu-west-1"]);
        assert_eq!(p[0].kms_key.as_deref(), Some("alias/k"));
        assert_eq!(p[1].kms_key, None);
        assert_eq!(p[1].tags.get("app").map(String::as_str), Some("web"));
        assert_eq!(p[1].tags.get(POINTER_TAG).map(String::as_str), Some("/p"));
        // The copies start with the source's status (none here); promoted comes last.
        assert_eq!(p[1].tags.get(STATUS_TAG), None);
        assert_eq!(p[1].status, "promoted");
    }

    #[test]
    fn sharing_from_a_home_region_without_a_key_is_refused_before_anything() {
        let mut c = config("pointer: /p\nregions: [{region: eu-west-1, kms_key: alias/k}]\nshare: {accounts: ['111122223333']}\n");
        let e = plans(&image(), &c, "us-east-1").unwrap_err().to_string();
        assert!(
            e.contains("us-east-1") && e.contains("aws/ebs") && e.contains("kms_key"),
            "{e}"
        );
        c.regions.push(RegionTarget {
            region: Region("us-east-1".into()),
            kms_key: Some(KmsKey("alias/k".into())),
        });
        assert_eq!(plans(&image(), &c, "us-east-1").unwrap().len(), 2);
    }

    #[test]
    fn the_deprecation_time_follows_the_creation_time_to_the_minute() {
        let c = config("pointer: /p\ndeprecate_after: 90d\n");
        let p = plans(&image(), &c, "us-east-1").unwrap();
        assert_eq!(
            p[0].deprecate_at
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "2026-04-01T10:01:00Z"
        );
    }

    #[test]
    fn a_failed_region_says_why_and_the_images_map_leaves_it_out() {
        let done = RegionResult::done(RegionOutcome {
            region: "eu-west-1".into(),
            image: "ami-1".into(),
            origin: ImageOrigin::Copied,
            granted: vec!["launch: account 111122223333".into()],
            pointer_version: 2,
            pointer_changed: true,
            deprecate_at: None,
        });
        let failed = RegionResult::failed("us-west-2", &Error::Infra("AWS refused it".into()));
        assert_eq!(
            done.line("/p"),
            "eu-west-1: copied to ami-1; 1 permission granted; pointer /p -> version 2"
        );
        assert_eq!(failed.line("/p"), "us-west-2: FAILED: AWS refused it");
        let p = Promotion {
            regions: vec![done, failed],
            ..Promotion::default()
        };
        assert_eq!(p.failed().len(), 1);
        assert_eq!(
            p.images(),
            std::collections::BTreeMap::from([("eu-west-1".to_string(), "ami-1".to_string())])
        );
        assert!(!p.unchanged());
    }
}
