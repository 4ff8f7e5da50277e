//! Images: capture a builder as an AMI, find, describe, tag and delete AMIs and their snapshots.

use std::time::Duration;

use aws_sdk_ec2::types as ec2t;

use super::{
    api_error, code_of, filter, ssm_code, ssm_error, tag_spec, AwsProvider, Deletion, CREATED_BY,
    CREATED_BY_TAG, STOP_TIMEOUT,
};
use crate::aws::wait::{self, Backoff, OnSignal, Poll};
use crate::cloud::{Image, Instance, Tags, RUN_ID_TAG, SOURCE_TAG, STATUS_TAG};
use crate::config::Source;
use crate::error::{Error, Result};
use crate::ledger::Ledger;

impl AwsProvider {
    pub(super) fn describe_image(&self, id: &str) -> Result<Option<ec2t::Image>> {
        let out = self.block(self.clients.ec2.describe_images().image_ids(id).send());
        match out {
            Ok(o) => Ok(o.images.unwrap_or_default().into_iter().next()),
            Err(e) if code_of(&e).starts_with("InvalidAMIID") => Ok(None),
            Err(e) => Err(api_error("ec2:DescribeImages", e)),
        }
    }

    pub(super) fn image_by_name(&self, name: &str) -> Result<Option<ec2t::Image>> {
        Ok(self.described_own("name", name)?.into_iter().next())
    }

    /// The images this account owns whose `key` (a DescribeImages filter name) is `value`.
    fn described_own(&self, key: &str, value: &str) -> Result<Vec<ec2t::Image>> {
        let out = self
            .block(
                self.clients
                    .ec2
                    .describe_images()
                    .owners("self")
                    .filters(filter(key, [value]))
                    .send(),
            )
            .map_err(|e| api_error("ec2:DescribeImages", e))?;
        Ok(out.images.unwrap_or_default())
    }

    /// The images this account owns that Bakery created (tagged with the created-by tag).
    pub(super) fn described_bakery_images(&self) -> Result<Vec<ec2t::Image>> {
        self.described_own(&format!("tag:{CREATED_BY_TAG}"), CREATED_BY)
    }

    pub(super) fn resolve_filter(&self, f: &crate::config::ImageFilter) -> Result<Image> {
        let mut req = self
            .clients
            .ec2
            .describe_images()
            .filters(filter("name", [f.name.as_str()]))
            .filters(filter("architecture", [f.architecture.as_str()]))
            .filters(filter("state", ["available"]));
        for o in &f.owners {
            req = req.owners(o);
        }
        let out = self
            .block(req.send())
            .map_err(|e| api_error("ec2:DescribeImages", e))?;
        let mut images = out.images.unwrap_or_default();
        images.sort_by(|a, b| b.creation_date.cmp(&a.creation_date));
        match images.into_iter().next() {
            Some(i) => Ok(to_image(&i)),
            None => Err(Error::Config(format!(
                "{}: source.filter: no available image named `{}` owned by [{}] for architecture `{}` in region {}",
                self.file,
                f.name,
                f.owners.join(", "),
                f.architecture,
                self.clients.region
            ))),
        }
    }

    pub(super) fn delete_image_and_snapshots(&self, image: &ec2t::Image) -> Result<()> {
        let id = image.image_id.clone().unwrap_or_default();
        let snapshots: Vec<String> = image
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs.as_ref()?.snapshot_id.clone())
            .collect();
        match self.block(self.clients.ec2.deregister_image().image_id(&id).send()) {
            Ok(_) => {}
            Err(e) if code_of(&e).starts_with("InvalidAMIID") => {}
            Err(e) => return Err(api_error("ec2:DeregisterImage", e)),
        }
        for snap in snapshots {
            self.delete_snapshot(&snap)?;
        }
        Ok(())
    }

    pub(super) fn delete_snapshot(&self, id: &str) -> Result<()> {
        // A snapshot stays "in use" for a little while after its image is deregistered.
        self.delete_when_free(
            &Deletion {
                what: format!("snapshot {id}"),
                action: "ec2:DeleteSnapshot",
                gone: "InvalidSnapshot.NotFound",
                busy: "InvalidSnapshot.InUse",
                timeout: Duration::from_secs(120),
                backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(10)),
            },
            || self.clients.ec2.delete_snapshot().snapshot_id(id).send(),
        )
    }

    /// The image's root device name and the size of its root snapshot in GiB.
    pub(super) fn root_device(&self, image_id: &str) -> Result<(String, Option<i32>)> {
        let image = self
            .describe_image(image_id)?
            .ok_or_else(|| Error::Infra(format!("image {image_id} does not exist")))?;
        let root = image
            .root_device_name
            .clone()
            .unwrap_or_else(|| "/dev/xvda".into());
        let size = image
            .block_device_mappings()
            .iter()
            .find(|m| m.device_name.as_deref() == Some(root.as_str()))
            .and_then(|m| m.ebs.as_ref()?.volume_size);
        Ok((root, size))
    }

    pub(super) fn resolve_source_image(&self, source: &Source) -> Result<Image> {
        let image = match source {
            Source::Image(id) => self.image_by_id(id)?,
            Source::SsmParameter(name) => {
                let out = self.block(self.clients.ssm.get_parameter().name(name).send());
                let value = match out {
                    Ok(o) => o.parameter.and_then(|p| p.value).unwrap_or_default(),
                    Err(e) if ssm_code(&e) == "ParameterNotFound" => {
                        return Err(Error::Config(format!(
                            "{}: source.ssm_parameter: no parameter `{name}` in region {}",
                            self.file, self.clients.region
                        )))
                    }
                    Err(e) => return Err(ssm_error("ssm:GetParameter", e)),
                };
                self.describe_image(&value)?
                    .map(|i| to_image(&i))
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "{}: source.ssm_parameter: `{name}` names `{value}`, which is not an image in region {}",
                            self.file, self.clients.region
                        ))
                    })?
            }
            Source::Filter(f) => self.resolve_filter(f)?,
            other => {
                return Err(Error::Config(format!(
                    "{}: source.{}: not available with `provider: aws`; use `image`, `ssm_parameter` or `filter`",
                    self.file,
                    other.key()
                )))
            }
        };
        if image.state != "available" {
            return Err(Error::Config(format!(
                "{}: source: image {} is {}, not available",
                self.file, image.id, image.state
            )));
        }
        Ok(image)
    }

    pub(super) fn capture_image(
        &self,
        instance: &Instance,
        name: &str,
        tags: &Tags,
        ledger: &Ledger,
    ) -> Result<Image> {
        if let Some(existing) = self.image_by_name(name)? {
            return Err(Error::Config(format!(
                "{}: image.name: an image named `{name}` exists already ({}); names are unique, so put `{{{{timestamp}}}}` or `{{{{git.sha}}}}` in the template",
                self.file,
                existing.image_id.unwrap_or_default()
            )));
        }
        let ec2 = &self.clients.ec2;
        if !self.settings.no_reboot {
            self.block(ec2.stop_instances().instance_ids(&instance.id).send())
                .map_err(|e| api_error("ec2:StopInstances", e))?;
            self.wait_instance(&instance.id, "stopped", STOP_TIMEOUT, OnSignal::Stop)?;
        }
        let mut tags = self.resource_tags(tags);
        tags.insert("Name".into(), name.into());
        tags.entry(RUN_ID_TAG.into())
            .or_insert_with(|| ledger.run_id());
        let token = ledger.record(
            self.cloud("image", &format!("name:{name}")),
            &format!("image {name} being created"),
        )?;
        let out = self
            .block(
                ec2.create_image()
                    .instance_id(&instance.id)
                    .name(name)
                    .description(format!("Baked by Bakery from {}", instance.image_id))
                    .no_reboot(self.settings.no_reboot)
                    .tag_specifications(tag_spec(ec2t::ResourceType::Image, &tags))
                    .send(),
            )
            .map_err(|e| api_error("ec2:CreateImage", e))?;
        let id = out
            .image_id
            .ok_or_else(|| Error::Infra("ec2:CreateImage returned no image id".into()))?;
        ledger.update(token, self.cloud("image", &id))?;
        let image = wait::until(
            &format!("image {id} to be available"),
            self.settings.image_timeout.0,
            Backoff::new(Duration::from_secs(2), Duration::from_secs(30)),
            OnSignal::Stop,
            || {
                let Some(i) = self.describe_image(&id)? else {
                    return Ok(Poll::Pending("not visible yet".into()));
                };
                let state = i.state.as_ref().map(|s| s.as_str()).unwrap_or("unknown");
                match state {
                    "available" => Ok(Poll::Ready(i)),
                    "failed" | "error" | "invalid" | "deregistered" => Err(Error::Infra(format!(
                        "image {id} is {state}: {}",
                        i.state_reason
                            .as_ref()
                            .and_then(|r| r.message.clone())
                            .unwrap_or_else(|| "no reason given".into())
                    ))),
                    other => Ok(Poll::Pending(other.to_string())),
                }
            },
            || {
                format!(
                    "builder {}: {}",
                    instance.id,
                    self.console_text(&instance.id)
                )
            },
        )?;
        // Snapshots are tagged afterwards: a snapshot TagSpecification in CreateImage is not
        // accepted everywhere (moto refuses it), CreateTags is.
        let snapshots: Vec<String> = image
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs.as_ref()?.snapshot_id.clone())
            .collect();
        self.tag(&snapshots, &tags, "snapshots of the new image")?;
        ledger.forget(token)?;
        Ok(to_image(&self.describe_image(&id)?.unwrap_or(image)))
    }

    pub(super) fn image_by_id(&self, id: &str) -> Result<Image> {
        if !crate::cloud::is_id("ami", id) {
            return Err(Error::Config(format!(
                "`{id}` is not an image id; ids look like ami-0123456789abcdef0"
            )));
        }
        self.describe_image(id)?
            .map(|i| to_image(&i))
            .ok_or_else(|| {
                Error::Config(format!(
                    "no image {id} in region {} (or this account may not use it)",
                    self.clients.region
                ))
            })
    }

    pub(super) fn own_images(&self) -> Result<Vec<Image>> {
        let described = self.described_bakery_images()?;
        let mut images: Vec<Image> = described.iter().map(to_image).collect();
        images.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
        Ok(images)
    }

    pub(super) fn tag_image_and_snapshots(&self, id: &str, tags: &Tags) -> Result<()> {
        let image = self
            .describe_image(id)?
            .ok_or_else(|| Error::Infra(format!("no image {id}")))?;
        let mut ids = vec![id.to_string()];
        ids.extend(
            image
                .block_device_mappings()
                .iter()
                .filter_map(|m| m.ebs.as_ref()?.snapshot_id.clone()),
        );
        let what = match tags.get(STATUS_TAG) {
            Some(s) => format!("{STATUS_TAG}={s} on {id}"),
            None => format!("image {id}"),
        };
        self.tag(&ids, tags, &what)
    }

    pub(super) fn delete_image_by_id(&self, id: &str) -> Result<()> {
        match self.describe_image(id)? {
            Some(i) => self.delete_image_and_snapshots(&i),
            None => Ok(()),
        }
    }
}

pub fn tags_of(tags: &[ec2t::Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key.clone()?, t.value.clone().unwrap_or_default())))
        .collect()
}

/// Bakery's view of an EC2 image.
pub fn to_image(i: &ec2t::Image) -> Image {
    let tags = tags_of(i.tags());
    let size: i64 = i
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs.as_ref()?.volume_size)
        .map(i64::from)
        .sum();
    Image {
        id: i.image_id.clone().unwrap_or_default(),
        name: i.name.clone().unwrap_or_default(),
        parent: tags.get(SOURCE_TAG).cloned(),
        state: i
            .state
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "unknown".into()),
        created: i.creation_date.clone().unwrap_or_default(),
        size_bytes: (size.max(0) as u64) << 30,
        tags,
    }
}
