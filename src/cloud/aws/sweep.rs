//! `bakery cleanup --provider aws`: find what Bakery runs left behind by their tags, and remove
//! what is older than a given age.
//!
//! Swept: instances, security groups and key pairs tagged `bakery:created-by=bakery`; images
//! tagged `bakery:status=rejected` with their snapshots; snapshots tagged by Bakery whose image
//! no longer exists. Promoted, verified and merely baked images are never swept.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{filter, tags_of, AwsProvider, CREATED_BY, CREATED_BY_TAG, EXPIRES_TAG};
use crate::cloud::{RUN_ID_TAG, STATUS_TAG};
use crate::error::Result;
use crate::ledger::Resource;

/// One resource the sweep found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// `instance`, `security-group`, `key-pair`, `image`, `snapshot`.
    pub kind: String,
    pub id: String,
    pub run_id: String,
    /// When it was created, if known.
    pub created: Option<DateTime<Utc>>,
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} (run {}, created {})",
            self.kind,
            self.id,
            if self.run_id.is_empty() {
                "?"
            } else {
                &self.run_id
            },
            self.created
                .map(|c| c.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_else(|| "?".into())
        )
    }
}

/// What a sweep did.
#[derive(Debug, Default)]
pub struct SweepReport {
    /// Old enough and removed (or, in a dry run, to be removed).
    pub removed: Vec<Leftover>,
    /// Found but younger than the threshold.
    pub kept: Vec<Leftover>,
    /// Removals that failed.
    pub errors: Vec<String>,
}

/// The creation time encoded in a run id (`run-20261122T031500-abcdef`).
pub fn run_started(run_id: &str) -> Option<DateTime<Utc>> {
    let stamp = run_id.strip_prefix("run-")?.get(..15)?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S")
        .ok()
        .map(|n| n.and_utc())
}

fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s?)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn smithy_time(t: Option<&aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    let t = t?;
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// Lists Bakery's leftovers and removes those created more than `older_than` ago (or whose
/// `bakery:expires` has passed). With `dry_run`, only lists.
pub fn sweep(provider: &AwsProvider, older_than: Duration, dry_run: bool) -> Result<SweepReport> {
    let now = Utc::now();
    let limit = now - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::zero());
    let found = find(provider)?;
    let mut report = SweepReport::default();
    let mut due = Vec::new();
    for (item, expires) in found {
        let old = item.created.is_some_and(|c| c <= limit)
            || (item.created.is_none() && run_started(&item.run_id).is_some_and(|c| c <= limit))
            || expires.is_some_and(|e| e <= now);
        if old {
            due.push(item);
        } else {
            report.kept.push(item);
        }
    }
    // Instances first (their groups and keys are in use until they are gone), images before
    // their orphaned snapshots.
    let order = [
        "instance",
        "security-group",
        "key-pair",
        "image",
        "snapshot",
    ];
    due.sort_by_key(|l| order.iter().position(|k| *k == l.kind).unwrap_or(9));
    for item in due {
        if !dry_run {
            let resource = Resource::Cloud {
                provider: "aws".into(),
                kind: item.kind.clone(),
                id: item.id.clone(),
                region: Some(provider.region().to_string()),
            };
            if let Err(e) = crate::ledger::Release::release(provider, &resource) {
                report.errors.push(format!("{item}: {e}"));
                continue;
            }
        }
        report.removed.push(item);
    }
    Ok(report)
}

/// Everything Bakery's tags mark in the provider's region, with its `bakery:expires`.
pub fn find(provider: &AwsProvider) -> Result<Vec<(Leftover, Option<DateTime<Utc>>)>> {
    let c = provider.clients();
    let by_tag = || filter(&format!("tag:{CREATED_BY_TAG}"), [CREATED_BY]);
    let mut found = Vec::new();
    let item = |kind: &str, id: String, tags: &crate::cloud::Tags, created| {
        (
            Leftover {
                kind: kind.into(),
                id,
                run_id: tags.get(RUN_ID_TAG).cloned().unwrap_or_default(),
                created,
            },
            parse_time(tags.get(EXPIRES_TAG).map(String::as_str)),
        )
    };

    let out = c
        .block(c.ec2.describe_instances().filters(by_tag()).send())
        .map_err(|e| super::api_error("ec2:DescribeInstances", e))?;
    for i in out.reservations().iter().flat_map(|r| r.instances()) {
        if AwsProvider::state_of(i) == "terminated" {
            continue;
        }
        let tags = tags_of(i.tags());
        found.push(item(
            "instance",
            i.instance_id.clone().unwrap_or_default(),
            &tags,
            smithy_time(i.launch_time.as_ref()),
        ));
    }

    let out = c
        .block(c.ec2.describe_security_groups().filters(by_tag()).send())
        .map_err(|e| super::api_error("ec2:DescribeSecurityGroups", e))?;
    for g in out.security_groups() {
        let tags = tags_of(g.tags());
        let started = tags.get(RUN_ID_TAG).and_then(|r| run_started(r));
        found.push(item(
            "security-group",
            g.group_id.clone().unwrap_or_default(),
            &tags,
            started,
        ));
    }

    let out = c
        .block(c.ec2.describe_key_pairs().filters(by_tag()).send())
        .map_err(|e| super::api_error("ec2:DescribeKeyPairs", e))?;
    for k in out.key_pairs() {
        let tags = tags_of(k.tags());
        let created = smithy_time(k.create_time.as_ref())
            .or_else(|| tags.get(RUN_ID_TAG).and_then(|r| run_started(r)));
        found.push(item(
            "key-pair",
            k.key_name.clone().unwrap_or_default(),
            &tags,
            created,
        ));
    }

    let out = c
        .block(
            c.ec2
                .describe_images()
                .owners("self")
                .filters(by_tag())
                .send(),
        )
        .map_err(|e| super::api_error("ec2:DescribeImages", e))?;
    for i in out.images() {
        let tags = tags_of(i.tags());
        if tags.get(STATUS_TAG).map(String::as_str) != Some("rejected") {
            continue;
        }
        found.push(item(
            "image",
            i.image_id.clone().unwrap_or_default(),
            &tags,
            parse_time(i.creation_date.as_deref()),
        ));
    }

    let out = c.block(
        c.ec2
            .describe_snapshots()
            .owner_ids("self")
            .filters(by_tag())
            .send(),
    );
    let snapshots = match out {
        Ok(o) => o.snapshots.unwrap_or_default(),
        Err(e) => return Err(super::api_error("ec2:DescribeSnapshots", e)),
    };
    // A snapshot of an image that still exists goes with its image (or stays with it).
    let owned = c
        .block(c.ec2.describe_images().owners("self").send())
        .map_err(|e| super::api_error("ec2:DescribeImages", e))?;
    let in_use: Vec<String> = owned
        .images()
        .iter()
        .flat_map(|i| i.block_device_mappings())
        .filter_map(|m| m.ebs.as_ref()?.snapshot_id.clone())
        .collect();
    for s in snapshots {
        if s.snapshot_id.as_ref().is_some_and(|id| in_use.contains(id)) {
            continue;
        }
        let tags = tags_of(s.tags());
        found.push(item(
            "snapshot",
            s.snapshot_id.clone().unwrap_or_default(),
            &tags,
            smithy_time(s.start_time.as_ref()),
        ));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_carry_their_start_time() {
        let t = run_started("run-20261122T031500-abcdef").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-22T03:15:00+00:00");
        assert!(run_started("bootstrap-x").is_none());
    }
}
