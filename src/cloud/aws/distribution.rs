//! Distribution: what promotion does in each region (a copy encrypted with the region's key,
//! tags on it and its snapshots, launch and volume permissions, deprecation) and the pointers
//! (SSM parameters) that publish an image.
//!
//! Every step looks before it acts, so running promotion again after a partial failure
//! finishes the job: an earlier copy is found by its `bakery:copied-from` tag (or, if the run
//! died before tagging it, by its name), permissions already granted are left, and a pointer
//! already naming the image is not written again.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::types as ec2t;

use super::{api_error, filter, ssm_code, ssm_error, tag_spec, tags_of, AwsProvider};
use crate::aws::wait::{self, Backoff, OnSignal, Poll};
use crate::cloud::{
    Image, ImageOrigin, RegionOutcome, RegionPlan, Tags, COPIED_FROM_TAG, STATUS_TAG,
};
use crate::config::Share;
use crate::error::{Error, Result};

/// The tag on a copy naming the region of the image it was copied from.
pub const COPIED_FROM_REGION_TAG: &str = "bakery:copied-from-region";

impl AwsProvider {
    /// Publishes `image` (of this provider's region) in `plan.region`.
    pub(super) fn distribute_to(&self, image: &Image, plan: &RegionPlan) -> Result<RegionOutcome> {
        let home = self.clients.region.clone();
        let there = self.regional(&plan.region);
        let (id, origin) = if plan.region == home && plan.kms_key.is_none() {
            (image.id.clone(), ImageOrigin::Source)
        } else {
            there.regional_copy(image, &home, plan)?
        };
        let described = there.describe_image(&id)?.ok_or_else(|| {
            Error::Infra(format!("image {id} in {} has disappeared", plan.region))
        })?;
        let snapshots = snapshots_of(&described);

        // Tags on the image and its snapshots; the status tag comes last, after the pointer:
        // an image is never tagged promoted while no pointer names it.
        let mut tags = plan.tags.clone();
        tags.remove(STATUS_TAG);
        if origin != ImageOrigin::Source {
            tags.insert(COPIED_FROM_TAG.into(), image.id.clone());
            tags.insert(COPIED_FROM_REGION_TAG.into(), home.clone());
        }
        let current = tags_of(described.tags());
        if tags.iter().any(|(k, v)| current.get(k) != Some(v)) {
            let mut ids = vec![id.clone()];
            ids.extend(snapshots.iter().cloned());
            there.tag(&ids, &tags, &format!("the image {id} in {}", plan.region))?;
        }

        let granted = there.share(&described, &snapshots, &plan.share)?;

        let deprecate_at = match plan.deprecate_at {
            Some(at) => Some(there.deprecate(&described, at)?),
            None => None,
        };

        let before = there.get_pointer(&plan.pointer)?;
        let pointer_version = there.put_pointer(&plan.pointer, &id)?;
        let pointer_changed = before.as_deref() != Some(id.as_str());

        let status = &plan.status;
        if current.get(STATUS_TAG) != Some(status) {
            let tag = Tags::from([(STATUS_TAG.to_string(), status.clone())]);
            let mut ids = vec![id.clone()];
            ids.extend(snapshots.iter().cloned());
            there.tag(&ids, &tag, &format!("{STATUS_TAG}={status} on {id}"))?;
        }
        Ok(RegionOutcome {
            region: plan.region.clone(),
            image: id,
            origin,
            granted,
            pointer_version,
            pointer_changed,
            deprecate_at,
        })
    }

    /// This region's copy of `source`: an earlier one if there is one (waiting for it if it is
    /// still being copied), else a new one.
    fn regional_copy(
        &self,
        source: &Image,
        source_region: &str,
        plan: &RegionPlan,
    ) -> Result<(String, ImageOrigin)> {
        let name = copy_name(source, source_region == plan.region);
        if let Some(found) = self.earlier_copy(source, &name)? {
            let id = found.image_id.clone().unwrap_or_default();
            match found.state.as_ref().map(|s| s.as_str()).unwrap_or("") {
                "available" => return Ok((id, ImageOrigin::Reused)),
                "pending" => {
                    self.wait_copy(&id, &plan.region)?;
                    return Ok((id, ImageOrigin::Reused));
                }
                _ => {
                    // A failed copy is removed, so that the new one can take its name.
                    self.delete_image_and_snapshots(&found)?;
                }
            }
        }
        // The copy starts with the source's status; it is promoted last, like the source.
        let mut tags = plan.tags.clone();
        tags.insert(COPIED_FROM_TAG.into(), source.id.clone());
        tags.insert(COPIED_FROM_REGION_TAG.into(), source_region.to_string());
        let mut req = self
            .clients
            .ec2
            .copy_image()
            .source_image_id(&source.id)
            .source_region(source_region)
            .name(&name)
            .description(format!("Copy of {} ({source_region}) by Bakery", source.id))
            // The same token for the same image and region: a retried call returns the same
            // copy instead of starting a second one.
            .client_token(format!("bakery-{}-{}", source.id, plan.region))
            .tag_specifications(tag_spec(ec2t::ResourceType::Image, &tags))
            .tag_specifications(tag_spec(ec2t::ResourceType::Snapshot, &tags));
        if let Some(key) = &plan.kms_key {
            req = req.encrypted(true).kms_key_id(key);
        }
        let out = self
            .block(req.send())
            .map_err(|e| api_error(&format!("ec2:CopyImage to {}", plan.region), e))?;
        let id = out.image_id.ok_or_else(|| {
            Error::Infra(format!(
                "ec2:CopyImage to {} returned no image id",
                plan.region
            ))
        })?;
        self.wait_copy(&id, &plan.region)?;
        Ok((id, ImageOrigin::Copied))
    }

    /// An image of this account in this region copied from `source`: by its tag, else by the
    /// name a copy of it gets (a copy whose run died before its tags were set).
    fn earlier_copy(&self, source: &Image, name: &str) -> Result<Option<ec2t::Image>> {
        let by_tag = self
            .block(
                self.clients
                    .ec2
                    .describe_images()
                    .owners("self")
                    .filters(filter(
                        &format!("tag:{COPIED_FROM_TAG}"),
                        [source.id.as_str()],
                    ))
                    .send(),
            )
            .map_err(|e| api_error("ec2:DescribeImages", e))?;
        let mut found: Vec<ec2t::Image> = by_tag.images.unwrap_or_default();
        if found.is_empty() {
            found.extend(self.image_by_name(name)?.filter(|i| {
                i.description
                    .as_deref()
                    .is_some_and(|d| d.contains(&source.id))
            }));
        }
        // An available copy wins over a pending one, a pending one over a failed one.
        found.sort_by_key(|i| match i.state.as_ref().map(|s| s.as_str()) {
            Some("available") => 0,
            Some("pending") => 1,
            _ => 2,
        });
        Ok(found.into_iter().next())
    }

    /// Waits with backoff until the copy is available, within `aws.image_timeout`.
    fn wait_copy(&self, id: &str, region: &str) -> Result<()> {
        wait::until(
            &format!("the copy {id} in {region} to be available"),
            self.settings.image_timeout.0,
            Backoff::new(Duration::from_secs(2), Duration::from_secs(30)),
            OnSignal::Stop,
            || {
                let Some(i) = self.describe_image(id)? else {
                    return Ok(Poll::Pending("not visible yet".into()));
                };
                match i.state.as_ref().map(|s| s.as_str()).unwrap_or("unknown") {
                    "available" => Ok(Poll::Ready(())),
                    "pending" => Ok(Poll::Pending("pending".into())),
                    other => Err(Error::Infra(format!(
                        "the copy {id} in {region} is {other}: {}",
                        i.state_reason
                            .as_ref()
                            .and_then(|r| r.message.clone())
                            .unwrap_or_else(|| "no reason given".into())
                    ))),
                }
            },
            String::new,
        )
    }

    /// Grants what `share` asks that is not granted yet: launch permission to accounts,
    /// organisations and OUs, and createVolumePermission on the snapshots to the accounts.
    /// Returns what it granted.
    fn share(
        &self,
        image: &ec2t::Image,
        snapshots: &[String],
        share: &Share,
    ) -> Result<Vec<String>> {
        let mut granted = Vec::new();
        if share.is_empty() {
            return Ok(granted);
        }
        let id = image.image_id.clone().unwrap_or_default();
        let out = self
            .block(
                self.clients
                    .ec2
                    .describe_image_attribute()
                    .image_id(&id)
                    .attribute(ec2t::ImageAttributeName::LaunchPermission)
                    .send(),
            )
            .map_err(|e| api_error("ec2:DescribeImageAttribute", e))?;
        let existing = out.launch_permissions.unwrap_or_default();
        let has = |f: &dyn Fn(&ec2t::LaunchPermission) -> Option<&str>, v: &str| {
            existing.iter().any(|p| f(p) == Some(v))
        };
        let mut add = Vec::new();
        for a in &share.accounts {
            if !has(&|p| p.user_id(), &a.0) {
                add.push(ec2t::LaunchPermission::builder().user_id(&a.0).build());
                granted.push(format!("launch: account {a}"));
            }
        }
        for o in &share.organizations {
            if !has(&|p| p.organization_arn(), &o.0) {
                add.push(
                    ec2t::LaunchPermission::builder()
                        .organization_arn(&o.0)
                        .build(),
                );
                granted.push(format!("launch: organization {o}"));
            }
        }
        for u in &share.organizational_units {
            if !has(&|p| p.organizational_unit_arn(), &u.0) {
                add.push(
                    ec2t::LaunchPermission::builder()
                        .organizational_unit_arn(&u.0)
                        .build(),
                );
                granted.push(format!("launch: organizational unit {u}"));
            }
        }
        if !add.is_empty() {
            self.block(
                self.clients
                    .ec2
                    .modify_image_attribute()
                    .image_id(&id)
                    .launch_permission(
                        ec2t::LaunchPermissionModifications::builder()
                            .set_add(Some(add))
                            .build(),
                    )
                    .send(),
            )
            .map_err(|e| api_error(&format!("ec2:ModifyImageAttribute (sharing {id})"), e))?;
        }
        if share.accounts.is_empty() {
            return Ok(granted);
        }
        for snap in snapshots {
            let out = self
                .block(
                    self.clients
                        .ec2
                        .describe_snapshot_attribute()
                        .snapshot_id(snap)
                        .attribute(ec2t::SnapshotAttributeName::CreateVolumePermission)
                        .send(),
                )
                .map_err(|e| api_error("ec2:DescribeSnapshotAttribute", e))?;
            let existing = out.create_volume_permissions.unwrap_or_default();
            let missing: Vec<&str> = share
                .accounts
                .iter()
                .map(|a| a.0.as_str())
                .filter(|a| !existing.iter().any(|p| p.user_id() == Some(*a)))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let mut req = self
                .clients
                .ec2
                .modify_snapshot_attribute()
                .snapshot_id(snap)
                .attribute(ec2t::SnapshotAttributeName::CreateVolumePermission)
                .operation_type(ec2t::OperationType::Add);
            for a in &missing {
                req = req.user_ids(*a);
            }
            self.block(req.send()).map_err(|e| {
                api_error(&format!("ec2:ModifySnapshotAttribute (sharing {snap})"), e)
            })?;
            for a in missing {
                granted.push(format!("volumes: snapshot {snap} to account {a}"));
            }
        }
        Ok(granted)
    }

    /// Bakery's images in this region, with the parameters naming them, who may launch them
    /// and when they are deprecated.
    pub(super) fn catalog_here(&self) -> Result<Vec<crate::cloud::CatalogEntry>> {
        let described = self.described_bakery_images()?;
        let images: Vec<Image> = described.iter().map(super::to_image).collect();
        let uses = self.uses_of(&images)?;
        let mut entries = Vec::new();
        for (d, image) in described.iter().zip(images) {
            let out = self
                .block(
                    self.clients
                        .ec2
                        .describe_image_attribute()
                        .image_id(&image.id)
                        .attribute(ec2t::ImageAttributeName::LaunchPermission)
                        .send(),
                )
                .map_err(|e| api_error("ec2:DescribeImageAttribute", e))?;
            let shared_with = out
                .launch_permissions()
                .iter()
                .filter_map(|p| {
                    if let Some(a) = p.user_id() {
                        Some(format!("account {a}"))
                    } else if let Some(o) = p.organization_arn() {
                        Some(format!("organization {o}"))
                    } else if let Some(u) = p.organizational_unit_arn() {
                        Some(format!("ou {u}"))
                    } else {
                        p.group().map(|g| g.as_str().to_string())
                    }
                })
                .collect();
            let pointers = uses
                .get(&image.id)
                .map(|u| {
                    u.iter()
                        .filter_map(|x| x.strip_prefix("parameter ").map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            entries.push(crate::cloud::CatalogEntry {
                region: self.clients.region.clone(),
                pointers,
                shared_with,
                deprecation: d.deprecation_time.clone(),
                image,
            });
        }
        entries
            .sort_by(|a, b| (&a.image.created, &a.image.id).cmp(&(&b.image.created, &b.image.id)));
        Ok(entries)
    }

    /// Sets the image's deprecation time unless it has that time already; returns it (RFC 3339).
    fn deprecate(&self, image: &ec2t::Image, at: chrono::DateTime<chrono::Utc>) -> Result<String> {
        let want = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let has = image
            .deprecation_time
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp());
        if has == Some(at.timestamp()) {
            return Ok(want);
        }
        let id = image.image_id.clone().unwrap_or_default();
        self.block(
            self.clients
                .ec2
                .enable_image_deprecation()
                .image_id(&id)
                .deprecate_at(aws_smithy_types::DateTime::from_secs(at.timestamp()))
                .send(),
        )
        .map_err(|e| api_error(&format!("ec2:EnableImageDeprecation ({id})"), e))?;
        Ok(want)
    }

    /// Every version a pointer has had, oldest first: (version, image id).
    pub fn pointer_history(&self, name: &str) -> Result<Vec<(u64, String)>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..100 {
            let r = self.block(
                self.clients
                    .ssm
                    .get_parameter_history()
                    .name(name)
                    .set_next_token(token.clone())
                    .send(),
            );
            let r = match r {
                Ok(r) => r,
                Err(e) if ssm_code(&e) == "ParameterNotFound" => return Ok(Vec::new()),
                Err(e) => return Err(ssm_error("ssm:GetParameterHistory", e)),
            };
            for p in r.parameters() {
                out.push((p.version.max(0) as u64, p.value.clone().unwrap_or_default()));
            }
            token = r.next_token.clone();
            if token.is_none() {
                break;
            }
        }
        out.sort();
        Ok(out)
    }

    pub(super) fn get_pointer(&self, name: &str) -> Result<Option<String>> {
        match self.block(self.clients.ssm.get_parameter().name(name).send()) {
            Ok(o) => Ok(o.parameter.and_then(|p| p.value)),
            Err(e) if ssm_code(&e) == "ParameterNotFound" => Ok(None),
            Err(e) => Err(ssm_error("ssm:GetParameter", e)),
        }
    }

    pub(super) fn put_pointer(&self, name: &str, image_id: &str) -> Result<u64> {
        if let Ok(o) = self.block(self.clients.ssm.get_parameter().name(name).send()) {
            if let Some(p) = o.parameter {
                if p.value.as_deref() == Some(image_id) {
                    return Ok(p.version.max(0) as u64);
                }
            }
        }
        let out = self
            .block(
                self.clients
                    .ssm
                    .put_parameter()
                    .name(name)
                    .value(image_id)
                    .r#type(aws_sdk_ssm::types::ParameterType::String)
                    .data_type("aws:ec2:image")
                    .description("Published by Bakery")
                    .overwrite(true)
                    .send(),
            )
            .map_err(|e| ssm_error("ssm:PutParameter", e))?;
        Ok(out.version.max(0) as u64)
    }

    pub(super) fn all_pointers(&self) -> Result<BTreeMap<String, String>> {
        let pointers = self.ssm_parameters(|p| p.data_type.as_deref() == Some("aws:ec2:image"))?;
        Ok(pointers.into_iter().collect())
    }

    /// The name and value of every SSM parameter of the account in this region that `listed`
    /// keeps, as DescribeParameters lists them (at most 200 pages of 50), values read by
    /// GetParameters ten names at a time.
    pub(super) fn ssm_parameters(
        &self,
        listed: impl Fn(&aws_sdk_ssm::types::ParameterMetadata) -> bool,
    ) -> Result<Vec<(String, String)>> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..200 {
            let out = self
                .block(
                    self.clients
                        .ssm
                        .describe_parameters()
                        .set_next_token(token.clone())
                        .max_results(50)
                        .send(),
                )
                .map_err(|e| ssm_error("ssm:DescribeParameters", e))?;
            names.extend(
                out.parameters()
                    .iter()
                    .filter(|p| listed(p))
                    .filter_map(|p| p.name.clone()),
            );
            token = out.next_token.clone();
            if token.is_none() {
                break;
            }
        }
        let mut found = Vec::new();
        for chunk in names.chunks(10) {
            let out = self
                .block(
                    self.clients
                        .ssm
                        .get_parameters()
                        .set_names(Some(chunk.to_vec()))
                        .send(),
                )
                .map_err(|e| ssm_error("ssm:GetParameters", e))?;
            for p in out.parameters() {
                if let (Some(n), Some(v)) = (p.name.clone(), p.value.clone()) {
                    found.push((n, v));
                }
            }
        }
        Ok(found)
    }
}

/// The name of a copy: the source's name, or in the source's own region (a re-encrypted
/// copy) the name with `-encrypted`, since names are unique in a region.
fn copy_name(source: &Image, same_region: bool) -> String {
    if same_region {
        format!("{}-encrypted", source.name)
    } else {
        source.name.clone()
    }
}

fn snapshots_of(image: &ec2t::Image) -> Vec<String> {
    image
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs.as_ref()?.snapshot_id.clone())
        .collect()
}
