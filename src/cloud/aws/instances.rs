//! Instances: launch builders and probes (key pair, security group, instance), connect to
//! them over SSH or SSM, wait for their states, read their consoles, terminate them.

use std::time::Duration;

use aws_sdk_ec2::types as ec2t;

use super::{
    api_error, code_of, console, filter, tag_spec, AwsProvider, Deletion, Launched, LAUNCH_TAG,
    RELEASE_TIMEOUT,
};
use crate::aws::wait::{self, Backoff, OnSignal, Poll};
use crate::cloud::{Instance, LaunchRequest, RUN_ID_TAG};
use crate::config::{AwsTransport, InstanceSettings};
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::transport::ssh::{self, KeyPair, SshTarget};
use crate::transport::ssm::{SsmOptions, SsmTransport};
use crate::transport::Transport;

impl AwsProvider {
    pub(super) fn describe_instance(&self, id: &str) -> Result<Option<ec2t::Instance>> {
        match self.block(
            self.clients
                .ec2
                .describe_instances()
                .instance_ids(id)
                .send(),
        ) {
            Ok(o) => Ok(o
                .reservations
                .unwrap_or_default()
                .into_iter()
                .flat_map(|r| r.instances.unwrap_or_default())
                .next()),
            Err(e) if code_of(&e).starts_with("InvalidInstanceID") => Ok(None),
            Err(e) => Err(api_error("ec2:DescribeInstances", e)),
        }
    }

    pub(super) fn instances_tagged(&self, key: &str, value: &str) -> Result<Vec<ec2t::Instance>> {
        let out = self
            .block(
                self.clients
                    .ec2
                    .describe_instances()
                    .filters(filter(&format!("tag:{key}"), [value]))
                    .send(),
            )
            .map_err(|e| api_error("ec2:DescribeInstances", e))?;
        Ok(out
            .reservations
            .unwrap_or_default()
            .into_iter()
            .flat_map(|r| r.instances.unwrap_or_default())
            .collect())
    }

    pub(super) fn state_of(i: &ec2t::Instance) -> String {
        i.state
            .as_ref()
            .and_then(|s| s.name.as_ref())
            .map(|n| n.as_str().to_string())
            .unwrap_or_else(|| "unknown".into())
    }

    pub(super) fn describe_state(i: &ec2t::Instance) -> String {
        let state = Self::state_of(i);
        match i.state_reason.as_ref().and_then(|r| r.message.clone()) {
            Some(reason) => format!("{state} ({reason})"),
            None => state,
        }
    }

    /// Waits until the instance is in state `target`; an instance that ends up terminated on the
    /// way is an error naming its state reason.
    pub(super) fn wait_instance(
        &self,
        id: &str,
        target: &str,
        timeout: Duration,
        on_signal: OnSignal,
    ) -> Result<()> {
        wait::until(
            &format!("instance {id} to be {target}"),
            timeout,
            Backoff::new(Duration::from_secs(1), Duration::from_secs(15)),
            on_signal,
            || {
                let Some(i) = self.describe_instance(id)? else {
                    return if target == "terminated" {
                        Ok(Poll::Ready(()))
                    } else {
                        Err(Error::Infra(format!("instance {id} has disappeared")))
                    };
                };
                let state = Self::state_of(&i);
                if state == target {
                    return Ok(Poll::Ready(()));
                }
                if target != "terminated" && (state == "terminated" || state == "shutting-down") {
                    return Err(Error::Infra(format!(
                        "instance {id} is {} while Bakery waited for it to be {target}; last console lines:\n{}",
                        Self::describe_state(&i),
                        self.console_text(id)
                    )));
                }
                Ok(Poll::Pending(Self::describe_state(&i)))
            },
            || format!("last console lines:\n{}", self.console_text(id)),
        )
    }

    pub(super) fn console_text(&self, id: &str) -> String {
        let out = self.block(
            self.clients
                .ec2
                .get_console_output()
                .instance_id(id)
                .latest(true)
                .send(),
        );
        match out {
            Ok(o) => {
                let text =
                    crate::cloud::console_tail(&console::decode(o.output().unwrap_or("")), 30);
                if text.is_empty() {
                    "(the console is empty)".into()
                } else {
                    text
                }
            }
            Err(e) => format!(
                "(no console output: {})",
                api_error("ec2:GetConsoleOutput", e)
            ),
        }
    }

    pub(super) fn terminate_ids(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut req = self.clients.ec2.terminate_instances();
        for id in ids {
            req = req.instance_ids(id);
        }
        match self.block(req.send()) {
            Ok(_) => {}
            Err(e) if code_of(&e).starts_with("InvalidInstanceID") => {}
            Err(e) => return Err(api_error("ec2:TerminateInstances", e)),
        }
        for id in ids {
            self.wait_instance(id, "terminated", RELEASE_TIMEOUT, OnSignal::Continue)?;
        }
        Ok(())
    }

    pub(super) fn default_vpc(&self) -> Result<String> {
        let out = self
            .block(
                self.clients
                    .ec2
                    .describe_vpcs()
                    .filters(filter("is-default", ["true"]))
                    .send(),
            )
            .map_err(|e| api_error("ec2:DescribeVpcs", e))?;
        out.vpcs
            .unwrap_or_default()
            .into_iter()
            .find_map(|v| v.vpc_id)
            .ok_or_else(|| {
                Error::Config(format!(
                    "{}: aws.subnet: region {} has no default VPC; name a subnet",
                    self.file, self.clients.region
                ))
            })
    }

    pub(super) fn vpc_of_subnet(&self, subnet: &str) -> Result<String> {
        let out = self
            .block(
                self.clients
                    .ec2
                    .describe_subnets()
                    .subnet_ids(subnet)
                    .send(),
            )
            .map_err(|e| match code_of(&e).as_str() {
                "InvalidSubnetID.NotFound" => Error::Config(format!(
                    "{}: aws.subnet: no subnet `{subnet}` in region {}",
                    self.file, self.clients.region
                )),
                _ => api_error("ec2:DescribeSubnets", e),
            })?;
        out.subnets
            .unwrap_or_default()
            .into_iter()
            .find_map(|s| s.vpc_id)
            .ok_or_else(|| Error::Infra(format!("subnet {subnet} has no VPC")))
    }

    pub(super) fn ssh_cidr(&self) -> Result<String> {
        if let Some(c) = &self.settings.ssh_cidr {
            return Ok(c.clone());
        }
        discover_public_ip()
            .map(|ip| format!("{ip}/32"))
            .map_err(|e| {
                Error::Config(format!(
                    "{}: aws.ssh_cidr: not set, and this runner's public address could not be discovered ({e}); set it, or use `aws.transport: ssm`",
                    self.file
                ))
            })
    }

    pub(super) fn security_groups_named(&self, name: &str) -> Result<Vec<String>> {
        let out = self
            .block(
                self.clients
                    .ec2
                    .describe_security_groups()
                    .filters(filter("group-name", [name]))
                    .send(),
            )
            .map_err(|e| api_error("ec2:DescribeSecurityGroups", e))?;
        Ok(out
            .security_groups
            .unwrap_or_default()
            .into_iter()
            .filter_map(|g| g.group_id)
            .collect())
    }

    pub(super) fn delete_security_group(&self, id: &str) -> Result<()> {
        // An instance's network interface lingers a little after it is terminated.
        self.delete_when_free(
            &Deletion {
                what: format!("security group {id}"),
                action: "ec2:DeleteSecurityGroup",
                gone: "InvalidGroup.NotFound",
                busy: "DependencyViolation",
                timeout: RELEASE_TIMEOUT,
                backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(15)),
            },
            || self.clients.ec2.delete_security_group().group_id(id).send(),
        )
    }

    pub(super) fn delete_key_pair(&self, name: &str) -> Result<()> {
        match self.block(self.clients.ec2.delete_key_pair().key_name(name).send()) {
            Ok(_) => Ok(()),
            Err(e) if code_of(&e) == "InvalidKeyPair.NotFound" => Ok(()),
            Err(e) => Err(api_error("ec2:DeleteKeyPair", e)),
        }
    }

    pub(super) fn launch_instance(
        &self,
        request: &LaunchRequest,
        ledger: &Ledger,
    ) -> Result<Instance> {
        let role = request.role.as_str();
        let run_id = ledger.run_id();
        let name = format!("bakery-{run_id}-{role}-{}", new_suffix());
        let tags = {
            let mut t = self.resource_tags(&request.tags);
            t.insert(RUN_ID_TAG.into(), run_id.clone());
            t.insert("Name".into(), name.clone());
            t
        };
        let ec2 = &self.clients.ec2;

        // The key pair: the run's ed25519 public key; the private half never leaves Bakery.
        let key_pair = ledger.record(
            self.cloud("key-pair", &name),
            &format!("{role} key pair {name}"),
        )?;
        self.block(
            ec2.import_key_pair()
                .key_name(&name)
                .public_key_material(aws_smithy_types::Blob::new(
                    request.key.public_openssh().into_bytes(),
                ))
                .tag_specifications(tag_spec(ec2t::ResourceType::KeyPair, &tags))
                .send(),
        )
        .map_err(|e| api_error("ec2:ImportKeyPair", e))?;

        // The security group: SSH from the runner only, or nothing at all for SSM.
        let vpc = match &self.settings.subnet {
            Some(s) => self.vpc_of_subnet(s)?,
            None => self.default_vpc()?,
        };
        let cidr = match self.settings.transport {
            AwsTransport::Ssh => Some(self.ssh_cidr()?),
            AwsTransport::Ssm => None,
        };
        let security_group = ledger.record(
            self.cloud("security-group", &format!("name:{name}")),
            &format!("{role} security group {name}"),
        )?;
        let sg = self
            .block(
                ec2.create_security_group()
                    .group_name(&name)
                    .description(format!("Bakery {role} of run {run_id}"))
                    .vpc_id(&vpc)
                    .tag_specifications(tag_spec(ec2t::ResourceType::SecurityGroup, &tags))
                    .send(),
            )
            .map_err(|e| api_error("ec2:CreateSecurityGroup", e))?;
        let sg_id = sg.group_id.unwrap_or_default();
        ledger.update(security_group, self.cloud("security-group", &sg_id))?;
        if let Some(cidr) = &cidr {
            crate::signals::check()?;
            self.block(
                ec2.authorize_security_group_ingress()
                    .group_id(&sg_id)
                    .ip_permissions(
                        ec2t::IpPermission::builder()
                            .ip_protocol("tcp")
                            .from_port(22)
                            .to_port(22)
                            .ip_ranges(
                                ec2t::IpRange::builder()
                                    .cidr_ip(cidr)
                                    .description("Bakery: SSH from the runner")
                                    .build(),
                            )
                            .build(),
                    )
                    .send(),
            )
            .map_err(|e| api_error("ec2:AuthorizeSecurityGroupIngress", e))?;
        }

        // The instance: IMDSv2 only, encrypted gp3 root, tagged before it exists.
        let (root_device, image_size) = self.root_device(&request.image.id)?;
        let size = self
            .settings
            .volume_size_gb
            .map(|s| s as i32)
            .or(image_size);
        let launch_id = crate::cloud::new_id("l")[2..].to_string();
        let mut instance_tags = tags.clone();
        instance_tags.insert(LAUNCH_TAG.into(), launch_id.clone());
        let instance_token = ledger.record(
            self.cloud("instance", &format!("launch:{launch_id}")),
            &format!("{role} instance"),
        )?;
        let mut ebs = ec2t::EbsBlockDevice::builder()
            .volume_type(ec2t::VolumeType::Gp3)
            .encrypted(true)
            .delete_on_termination(true);
        if let Some(size) = size {
            ebs = ebs.volume_size(size);
        }
        let mut run = ec2
            .run_instances()
            .image_id(&request.image.id)
            .instance_type(ec2t::InstanceType::from(
                self.settings.instance_type.as_str(),
            ))
            .min_count(1)
            .max_count(1)
            .key_name(&name)
            .security_group_ids(&sg_id)
            .client_token(&launch_id)
            .metadata_options(
                ec2t::InstanceMetadataOptionsRequest::builder()
                    .http_tokens(ec2t::HttpTokensState::Required)
                    .http_endpoint(ec2t::InstanceMetadataEndpointState::Enabled)
                    .http_put_response_hop_limit(1)
                    .build(),
            )
            .block_device_mappings(
                ec2t::BlockDeviceMapping::builder()
                    .device_name(&root_device)
                    .ebs(ebs.build())
                    .build(),
            )
            .tag_specifications(tag_spec(ec2t::ResourceType::Instance, &instance_tags))
            .tag_specifications(tag_spec(ec2t::ResourceType::Volume, &tags));
        if let Some(subnet) = &self.settings.subnet {
            run = run.subnet_id(subnet);
        }
        if let Some(profile) = &self.settings.instance_profile {
            let spec = if profile.starts_with("arn:") {
                ec2t::IamInstanceProfileSpecification::builder().arn(profile)
            } else {
                ec2t::IamInstanceProfileSpecification::builder().name(profile)
            };
            run = run.iam_instance_profile(spec.build());
        }
        if self.settings.spot {
            run = run.instance_market_options(
                ec2t::InstanceMarketOptionsRequest::builder()
                    .market_type(ec2t::MarketType::Spot)
                    .spot_options(
                        ec2t::SpotMarketOptions::builder()
                            .spot_instance_type(ec2t::SpotInstanceType::OneTime)
                            .instance_interruption_behavior(
                                ec2t::InstanceInterruptionBehavior::Terminate,
                            )
                            .build(),
                    )
                    .build(),
            );
        }
        let out = self
            .block(run.send())
            .map_err(|e| api_error("ec2:RunInstances", e))?;
        let id = out
            .instances()
            .first()
            .and_then(|i| i.instance_id.clone())
            .ok_or_else(|| Error::Infra("ec2:RunInstances returned no instance".into()))?;
        ledger.update(instance_token, self.cloud("instance", &id))?;
        self.lock().insert(
            id.clone(),
            Launched {
                instance: instance_token,
                security_group,
                key_pair,
                settings_transport: self.settings.transport,
            },
        );
        tracing::info!(instance = %id, image = %request.image.id, role, "instance launched");
        self.wait_instance(
            &id,
            "running",
            request.settings.boot_timeout.0,
            OnSignal::Stop,
        )?;
        Ok(Instance {
            id,
            image_id: request.image.id.clone(),
            role: request.role,
            user: request.settings.ssh_user.clone(),
        })
    }

    pub(super) fn connect_instance(
        &self,
        instance: &Instance,
        key: &KeyPair,
        settings: &InstanceSettings,
    ) -> Result<Box<dyn Transport>> {
        let transport = self
            .lock()
            .get(&instance.id)
            .map_or(self.settings.transport, |l| l.settings_transport);
        let timeout = settings.boot_timeout.0;
        if transport == AwsTransport::Ssm {
            let t = SsmTransport::new(
                self.clients.rt.clone(),
                self.clients.ssm.clone(),
                &instance.id,
                SsmOptions::default(),
            );
            t.wait_managed(timeout).map_err(|e| {
                // The endpoint's own failure says all there is; the console is for a probe
                // that never came up.
                if matches!(e, Error::Endpoint(_) | Error::Interrupted(_)) {
                    return e;
                }
                Error::Transport(format!(
                    "{e}\ninstance state: {}\nlast console lines:\n{}",
                    self.describe_instance(&instance.id)
                        .ok()
                        .flatten()
                        .map(|i| Self::describe_state(&i))
                        .unwrap_or_else(|| "unknown".into()),
                    self.console_text(&instance.id)
                ))
            })?;
            return Ok(Box::new(t));
        }
        // SSH: the host key is the one cloud-init printed on the console; never TOFU.
        let host_key = wait::until(
            &format!("{} to print its SSH host keys on the console", instance.id),
            timeout,
            Backoff::new(Duration::from_secs(5), Duration::from_secs(20)),
            OnSignal::Stop,
            || {
                let out = self
                    .block(
                        self.clients
                            .ec2
                            .get_console_output()
                            .instance_id(&instance.id)
                            .latest(true)
                            .send(),
                    )
                    .map_err(|e| api_error("ec2:GetConsoleOutput", e))?;
                let text = console::decode(out.output().unwrap_or(""));
                Ok(match console::trusted_host_key(&text) {
                    Some(k) => Poll::Ready(k),
                    None => Poll::Pending("no SSH HOST KEY KEYS block on the console yet".into()),
                })
            },
            || format!("last console lines:\n{}", self.console_text(&instance.id)),
        )?;
        let described = self
            .describe_instance(&instance.id)?
            .ok_or_else(|| Error::Infra(format!("instance {} is gone", instance.id)))?;
        let host = described
            .public_ip_address
            .clone()
            .or_else(|| described.private_ip_address.clone())
            .ok_or_else(|| Error::Infra(format!("instance {} has no address", instance.id)))?;
        let target = SshTarget {
            host,
            port: 22,
            user: instance.user.clone(),
            host_key,
            key,
            timeout,
        };
        let still_booting = || match self.describe_instance(&instance.id)? {
            Some(i) if Self::state_of(&i) == "running" => Ok(()),
            Some(i) => Err(Error::Infra(format!(
                "instance {} is {} while Bakery waited for SSH; last console lines:\n{}",
                instance.id,
                Self::describe_state(&i),
                self.console_text(&instance.id)
            ))),
            None => Err(Error::Infra(format!("instance {} is gone", instance.id))),
        };
        let t = ssh::connect(&target, &still_booting).map_err(|e| match e {
            Error::Transport(msg) => Error::Transport(format!(
                "{} did not answer: {msg}\nlast console lines:\n{}",
                instance.id,
                self.console_text(&instance.id)
            )),
            other => other,
        })?;
        Ok(Box::new(t))
    }

    pub(super) fn terminate_instance(&self, instance: &Instance, ledger: &Ledger) -> Result<()> {
        let Some(l) = self.lock().remove(&instance.id) else {
            return Ok(());
        };
        ledger.release(l.instance, Some(self))?;
        ledger.release(l.security_group, Some(self))?;
        ledger.release(l.key_pair, Some(self))
    }
}

pub(super) fn parse_cidr(s: &str) -> Option<(std::net::Ipv4Addr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let bits: u8 = bits.parse().ok().filter(|b| *b <= 32)?;
    Some((ip.parse().ok()?, bits))
}

/// This runner's public IPv4 address, as AWS's checkip service sees it (plain HTTP, 5 s).
fn discover_public_ip() -> std::result::Result<String, String> {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let addr = ("checkip.amazonaws.com", 80)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("checkip.amazonaws.com does not resolve")?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: checkip.amazonaws.com\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.take(4096)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").trim();
    body.parse::<std::net::Ipv4Addr>()
        .map(|ip| ip.to_string())
        .map_err(|_| format!("unexpected answer `{body}`"))
}

fn new_suffix() -> String {
    crate::cloud::new_id("x")[2..12].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_are_checked() {
        assert!(parse_cidr("203.0.113.7/32").is_some());
        assert!(parse_cidr("203.0.113.7").is_none());
        assert!(parse_cidr("203.0.113.7/33").is_none());
        assert!(parse_cidr("::1/128").is_none());
    }
}
