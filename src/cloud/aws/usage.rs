//! What still uses an image, so that retention never deletes one something launches from:
//! SSM parameters naming it (pointers and any other parameter whose value is the image id),
//! instances in any state but terminated, launch templates whose default or latest version
//! names it, and Auto Scaling groups (through a launch configuration, a launch template
//! version, or a mixed instances policy).

use std::collections::{BTreeMap, BTreeSet};

use super::{api_error, filter, AwsProvider};
use crate::cloud::Image;
use crate::error::Result;

/// Image id → what uses it, in words (`parameter /golden/web`, `instance i-… (stopped)`).
pub type Uses = BTreeMap<String, Vec<String>>;

impl AwsProvider {
    /// What uses each of `images` in this provider's region.
    pub fn uses_of(&self, images: &[Image]) -> Result<Uses> {
        let wanted: BTreeSet<&str> = images.iter().map(|i| i.id.as_str()).collect();
        let mut uses = Uses::new();
        let mut add = |image: &str, what: String| {
            if wanted.contains(image) {
                uses.entry(image.to_string()).or_default().push(what);
            }
        };
        for (name, value) in self.parameters()? {
            add(&value, format!("parameter {name}"));
        }
        for (image, what) in self.instances_using(&wanted)? {
            add(&image, what);
        }
        for (image, what) in self.launch_templates_using()? {
            add(&image, what);
        }
        for (image, what) in self.auto_scaling_groups_using()? {
            add(&image, what);
        }
        Ok(uses)
    }

    /// Every SSM parameter of the account in this region whose value is an image id.
    fn parameters(&self) -> Result<Vec<(String, String)>> {
        let mut found = self.ssm_parameters(|_| true)?;
        found.retain(|(_, v)| crate::cloud::is_id("ami", v));
        Ok(found)
    }

    /// Instances launched from one of `images` that are not terminated.
    fn instances_using(&self, images: &BTreeSet<&str>) -> Result<Vec<(String, String)>> {
        let mut found = Vec::new();
        let ids: Vec<&str> = images.iter().copied().collect();
        for chunk in ids.chunks(100) {
            let out = self
                .block(
                    self.clients
                        .ec2
                        .describe_instances()
                        .filters(filter("image-id", chunk.iter().copied()))
                        .send(),
                )
                .map_err(|e| api_error("ec2:DescribeInstances", e))?;
            for i in out.reservations().iter().flat_map(|r| r.instances()) {
                let state = Self::state_of(i);
                if state == "terminated" {
                    continue;
                }
                if let (Some(image), Some(id)) = (i.image_id.clone(), i.instance_id.clone()) {
                    found.push((image, format!("instance {id} ({state})")));
                }
            }
        }
        Ok(found)
    }

    /// The image of each launch template's default and latest version.
    fn launch_templates_using(&self) -> Result<Vec<(String, String)>> {
        let mut templates = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..100 {
            let out = self
                .block(
                    self.clients
                        .ec2
                        .describe_launch_templates()
                        .set_next_token(token.clone())
                        .send(),
                )
                .map_err(|e| api_error("ec2:DescribeLaunchTemplates", e))?;
            templates.extend(out.launch_templates().iter().filter_map(|t| {
                Some((
                    t.launch_template_id.clone()?,
                    t.launch_template_name.clone().unwrap_or_default(),
                ))
            }));
            token = out.next_token.clone();
            if token.is_none() {
                break;
            }
        }
        let mut found = Vec::new();
        for (id, name) in templates {
            for version in ["$Default", "$Latest"] {
                if let Some(image) = self.template_image(&id, version)? {
                    found.push((
                        image,
                        format!("launch template {name} ({id}) {version} version"),
                    ));
                }
            }
        }
        Ok(found)
    }

    /// The image id a launch template version names, if it names one directly.
    fn template_image(&self, template: &str, version: &str) -> Result<Option<String>> {
        let req = self
            .clients
            .ec2
            .describe_launch_template_versions()
            .versions(version);
        let req = if template.starts_with("lt-") {
            req.launch_template_id(template)
        } else {
            req.launch_template_name(template)
        };
        let out = self
            .block(req.send())
            .map_err(|e| api_error("ec2:DescribeLaunchTemplateVersions", e))?;
        Ok(out
            .launch_template_versions()
            .iter()
            .filter_map(|v| v.launch_template_data.as_ref()?.image_id.clone())
            .find(|i| crate::cloud::is_id("ami", i)))
    }

    /// The images Auto Scaling groups launch: from their launch configuration, launch
    /// template version, or mixed instances policy's template.
    fn auto_scaling_groups_using(&self) -> Result<Vec<(String, String)>> {
        let asg = aws_sdk_autoscaling::Client::new(&self.clients.conf);
        let mut groups = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..100 {
            let out = self
                .block(
                    asg.describe_auto_scaling_groups()
                        .set_next_token(token.clone())
                        .send(),
                )
                .map_err(|e| api_error("autoscaling:DescribeAutoScalingGroups", e))?;
            groups.extend(out.auto_scaling_groups().iter().cloned());
            token = out.next_token.clone();
            if token.is_none() {
                break;
            }
        }
        let mut found = Vec::new();
        for g in groups {
            let name = g.auto_scaling_group_name.clone().unwrap_or_default();
            let what = format!("Auto Scaling group {name}");
            if let Some(lc) = &g.launch_configuration_name {
                let out = self
                    .block(
                        asg.describe_launch_configurations()
                            .launch_configuration_names(lc)
                            .send(),
                    )
                    .map_err(|e| api_error("autoscaling:DescribeLaunchConfigurations", e))?;
                for c in out.launch_configurations() {
                    if let Some(image) = &c.image_id {
                        found.push((image.clone(), format!("{what} (launch configuration {lc})")));
                    }
                }
            }
            let templates = g.launch_template.iter().chain(
                g.mixed_instances_policy
                    .as_ref()
                    .and_then(|m| m.launch_template.as_ref())
                    .and_then(|t| t.launch_template_specification.as_ref()),
            );
            for t in templates {
                let Some(template) = t
                    .launch_template_id
                    .clone()
                    .or_else(|| t.launch_template_name.clone())
                else {
                    continue;
                };
                let version = t.version.clone().unwrap_or_else(|| "$Default".into());
                if let Some(image) = self.template_image(&template, &version)? {
                    found.push((
                        image,
                        format!("{what} (launch template {template} version {version})"),
                    ));
                }
            }
        }
        Ok(found)
    }
}
