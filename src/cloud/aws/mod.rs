//! The `aws` provider: EC2 builder and probe instances, AMIs, and SSM parameters as pointers.
//!
//! The pipeline is synchronous; the AWS SDK is async. The provider owns a small tokio runtime
//! and blocks on each call. Every resource is on the run's ledger before the call that creates
//! it: under a name or a launch tag chosen up front (`name:…`, `launch:…`), replaced by the
//! real id once AWS returns it, so a run killed between the two is still cleaned up.

pub mod console;
mod faults;
pub mod sweep;
pub mod wait;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use aws_sdk_ec2::types as ec2t;
use aws_sdk_ec2::Client as Ec2;
use aws_sdk_ssm::Client as Ssm;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use self::wait::{Backoff, OnSignal, Poll};
use super::{Image, Instance, LaunchRequest, Provider, Tags, RUN_ID_TAG, STATUS_TAG};
use crate::config::{AwsSettings, AwsTransport, InstanceSettings, Source};
use crate::error::{Error, Result};
use crate::ledger::{Ledger, Release, Resource, Token};
use crate::transport::ssh::{self, KeyPair, SshTarget};
use crate::transport::ssm::{SsmOptions, SsmTransport};
use crate::transport::Transport;

/// The tag naming who created a resource.
pub const CREATED_BY_TAG: &str = "bakery:created-by";
/// The tag after which a leftover resource may be swept.
pub const EXPIRES_TAG: &str = "bakery:expires";
/// The tag Bakery puts on an instance before it has an id, so that it can be found by it.
pub const LAUNCH_TAG: &str = "bakery:launch-id";
/// The value of [`CREATED_BY_TAG`].
pub const CREATED_BY: &str = "bakery";

/// How long releasing one resource may wait (an instance terminating, say).
const RELEASE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long stopping the builder may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(600);

/// Region and endpoint given on the command line; they win over the pipeline file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

static OVERRIDES: OnceLock<Overrides> = OnceLock::new();

/// Records `--region` and `--endpoint-url` (called once by the CLI).
pub fn set_overrides(o: Overrides) {
    let _ = OVERRIDES.set(o);
}

fn overrides() -> Overrides {
    OVERRIDES.get().cloned().unwrap_or_default()
}

/// The SDK clients of one region and endpoint, and the runtime that drives them.
#[derive(Clone)]
pub struct Clients {
    pub rt: Arc<tokio::runtime::Runtime>,
    pub ec2: Ec2,
    pub ssm: Ssm,
    pub region: String,
}

impl Clients {
    /// Loads the SDK configuration: the default credential chain, `region` (else the default
    /// chain's), and `endpoint_url` (else `AWS_ENDPOINT_URL`, else AWS's own endpoints).
    pub fn load(region: Option<&str>, endpoint_url: Option<&str>) -> Result<Clients> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bakery-aws")
            .enable_all()
            .build()
            .map_err(|e| Error::Infra(format!("starting the AWS runtime: {e}")))?;
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(r) = region {
            loader = loader.region(aws_config::Region::new(r.to_string()));
        }
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let conf = rt.block_on(loader.load());
        let region = conf.region().map(|r| r.to_string()).ok_or_else(|| {
            Error::Config(
                "aws: no region: set `aws.region` in the pipeline file, pass --region, or set AWS_REGION"
                    .into(),
            )
        })?;
        Ok(Clients {
            ec2: Ec2::new(&conf),
            ssm: Ssm::new(&conf),
            rt: Arc::new(rt),
            region,
        })
    }

    /// Runs one SDK call to completion.
    pub fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

/// Turns an SDK error into Bakery's: names the refused action, and for access denied points
/// at the policy Bakery needs.
pub fn api_error<E, R>(action: &str, e: aws_sdk_ec2::error::SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = e.code().unwrap_or("").to_string();
    let message = e.message().unwrap_or("").to_string();
    if is_access_denied(&code) {
        return Error::Infra(format!(
            "AWS refused {action}: access denied ({code}: {message}); the credentials need the permissions in docs/iam-policy.json"
        ));
    }
    let detail = if code.is_empty() {
        aws_sdk_ec2::error::DisplayErrorContext(&e).to_string()
    } else {
        format!("{code}: {message}")
    };
    Error::Infra(format!("AWS {action} failed: {detail}"))
}

fn is_access_denied(code: &str) -> bool {
    matches!(
        code,
        "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" | "AuthFailure"
    )
}

/// The error code of an SDK error, if the service sent one.
pub fn code_of<E: ProvideErrorMetadata, R>(e: &aws_sdk_ec2::error::SdkError<E, R>) -> String {
    e.code().unwrap_or("").to_string()
}

/// A delete that AWS refuses while something still uses the resource.
struct Deletion {
    /// "snapshot snap-…", for the timeout error.
    what: String,
    /// The API action, for refusals.
    action: &'static str,
    /// The error code meaning the resource is already gone.
    gone: &'static str,
    /// The error code meaning it is still in use.
    busy: &'static str,
    timeout: Duration,
    backoff: Backoff,
}

/// What the provider remembers about an instance it launched.
struct Launched {
    instance: Token,
    security_group: Token,
    key_pair: Token,
    settings_transport: AwsTransport,
}

/// The `aws` provider.
pub struct AwsProvider {
    clients: Clients,
    settings: AwsSettings,
    launched: Mutex<HashMap<String, Launched>>,
    /// Where the run's pipeline file is (for error messages).
    file: String,
}

impl AwsProvider {
    /// A provider for `settings`, with `--region`/`--endpoint-url` applied.
    pub fn new(settings: AwsSettings, file: &str) -> Result<AwsProvider> {
        let o = overrides();
        let region = o.region.clone().or_else(|| settings.region.clone());
        let endpoint = o
            .endpoint_url
            .clone()
            .or_else(|| std::env::var("BAKERY_AWS_ENDPOINT_URL").ok())
            .filter(|s| !s.is_empty());
        if settings.spot && !settings.no_reboot {
            return Err(Error::Config(format!(
                "{file}: aws.spot: a one-time spot builder cannot be stopped before its image is taken; set `aws.no_reboot: true` as well"
            )));
        }
        if let Some(cidr) = &settings.ssh_cidr {
            if parse_cidr(cidr).is_none() {
                return Err(Error::Config(format!(
                    "{file}: aws.ssh_cidr: `{cidr}` is not an IPv4 CIDR such as 203.0.113.7/32"
                )));
            }
        }
        let clients = Clients::load(region.as_deref(), endpoint.as_deref())?;
        Ok(AwsProvider::with_clients(clients, settings, file))
    }

    /// A provider using existing clients (tests, cleanup).
    pub fn with_clients(clients: Clients, settings: AwsSettings, file: &str) -> AwsProvider {
        AwsProvider {
            clients,
            settings,
            launched: Mutex::new(HashMap::new()),
            file: file.to_string(),
        }
    }

    /// The clients this provider uses.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// The region this provider works in.
    pub fn region(&self) -> &str {
        &self.clients.region
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Launched>> {
        self.launched.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cloud(&self, kind: &str, id: &str) -> Resource {
        Resource::Cloud {
            provider: "aws".into(),
            kind: kind.into(),
            id: id.into(),
            region: Some(self.clients.region.clone()),
        }
    }

    /// The tags every resource of a run carries, `bakery:expires` included.
    fn resource_tags(&self, base: &Tags) -> Tags {
        let mut tags = base.clone();
        tags.insert(CREATED_BY_TAG.into(), CREATED_BY.into());
        let expires = chrono::Utc::now()
            + chrono::Duration::from_std(self.settings.expires_after.0)
                .unwrap_or(chrono::Duration::hours(6));
        tags.insert(
            EXPIRES_TAG.into(),
            expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        tags
    }

    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.clients.block(f)
    }

    // ---- images ---------------------------------------------------------------------------

    fn describe_image(&self, id: &str) -> Result<Option<ec2t::Image>> {
        let out = self.block(self.clients.ec2.describe_images().image_ids(id).send());
        match out {
            Ok(o) => Ok(o.images.unwrap_or_default().into_iter().next()),
            Err(e) if code_of(&e).starts_with("InvalidAMIID") => Ok(None),
            Err(e) => Err(api_error("ec2:DescribeImages", e)),
        }
    }

    fn image_by_name(&self, name: &str) -> Result<Option<ec2t::Image>> {
        let out = self
            .block(
                self.clients
                    .ec2
                    .describe_images()
                    .owners("self")
                    .filters(filter("name", [name]))
                    .send(),
            )
            .map_err(|e| api_error("ec2:DescribeImages", e))?;
        Ok(out.images.unwrap_or_default().into_iter().next())
    }

    fn resolve_filter(&self, f: &crate::config::ImageFilter) -> Result<Image> {
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

    fn delete_image_and_snapshots(&self, image: &ec2t::Image) -> Result<()> {
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

    fn delete_snapshot(&self, id: &str) -> Result<()> {
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

    /// Repeats a delete call while AWS answers that the resource is still in use; an answer
    /// that it is gone counts as deleted. Runs during releases, so a signal does not stop it.
    fn delete_when_free<O, E, R, F>(&self, d: &Deletion, call: impl Fn() -> F) -> Result<()>
    where
        F: std::future::Future<Output = std::result::Result<O, aws_sdk_ec2::error::SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        wait::until(
            &format!("{} to be deletable", d.what),
            d.timeout,
            d.backoff.clone(),
            OnSignal::Continue,
            || match self.block(call()) {
                Ok(_) => Ok(Poll::Ready(())),
                Err(e) if code_of(&e) == d.gone => Ok(Poll::Ready(())),
                Err(e) if code_of(&e) == d.busy => {
                    Ok(Poll::Pending(format!("{} (still in use)", d.busy)))
                }
                Err(e) => Err(api_error(d.action, e)),
            },
            String::new,
        )
    }

    fn tag(&self, ids: &[String], tags: &Tags, action_for: &str) -> Result<()> {
        if ids.is_empty() || tags.is_empty() {
            return Ok(());
        }
        let mut req = self.clients.ec2.create_tags();
        for id in ids {
            req = req.resources(id);
        }
        for (k, v) in tags {
            req = req.tags(ec2t::Tag::builder().key(k).value(v).build());
        }
        self.block(req.send())
            .map_err(|e| api_error(&format!("ec2:CreateTags ({action_for})"), e))?;
        Ok(())
    }

    // ---- instances ------------------------------------------------------------------------

    fn describe_instance(&self, id: &str) -> Result<Option<ec2t::Instance>> {
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

    fn instances_tagged(&self, key: &str, value: &str) -> Result<Vec<ec2t::Instance>> {
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

    fn state_of(i: &ec2t::Instance) -> String {
        i.state
            .as_ref()
            .and_then(|s| s.name.as_ref())
            .map(|n| n.as_str().to_string())
            .unwrap_or_else(|| "unknown".into())
    }

    fn describe_state(i: &ec2t::Instance) -> String {
        let state = Self::state_of(i);
        match i.state_reason.as_ref().and_then(|r| r.message.clone()) {
            Some(reason) => format!("{state} ({reason})"),
            None => state,
        }
    }

    /// Waits until the instance is in state `target`; an instance that ends up terminated on the
    /// way is an error naming its state reason.
    fn wait_instance(
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

    fn console_text(&self, id: &str) -> String {
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
                let text = super::console_tail(&console::decode(o.output().unwrap_or("")), 30);
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

    fn terminate_ids(&self, ids: &[String]) -> Result<()> {
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

    fn default_vpc(&self) -> Result<String> {
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

    fn vpc_of_subnet(&self, subnet: &str) -> Result<String> {
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

    fn ssh_cidr(&self) -> Result<String> {
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

    fn security_groups_named(&self, name: &str) -> Result<Vec<String>> {
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

    fn delete_security_group(&self, id: &str) -> Result<()> {
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

    fn delete_key_pair(&self, name: &str) -> Result<()> {
        match self.block(self.clients.ec2.delete_key_pair().key_name(name).send()) {
            Ok(_) => Ok(()),
            Err(e) if code_of(&e) == "InvalidKeyPair.NotFound" => Ok(()),
            Err(e) => Err(api_error("ec2:DeleteKeyPair", e)),
        }
    }

    /// The image's root device name and the size of its root snapshot in GiB.
    fn root_device(&self, image_id: &str) -> Result<(String, Option<i32>)> {
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

    // ---- pointers -------------------------------------------------------------------------

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
}

/// The error code of an SSM SDK error.
pub fn ssm_code<E: ProvideErrorMetadata, R>(e: &aws_sdk_ssm::error::SdkError<E, R>) -> String {
    e.code().unwrap_or("").to_string()
}

/// Like [`api_error`], for SSM (both SDKs share the smithy error type).
pub fn ssm_error<E, R>(action: &str, e: aws_sdk_ssm::error::SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    api_error(action, e)
}

/// An EC2 filter.
pub fn filter<'a>(name: &str, values: impl IntoIterator<Item = &'a str>) -> ec2t::Filter {
    let mut f = ec2t::Filter::builder().name(name);
    for v in values {
        f = f.values(v);
    }
    f.build()
}

fn tag_spec(kind: ec2t::ResourceType, tags: &Tags) -> ec2t::TagSpecification {
    let mut spec = ec2t::TagSpecification::builder().resource_type(kind);
    for (k, v) in tags {
        spec = spec.tags(ec2t::Tag::builder().key(k).value(v).build());
    }
    spec.build()
}

fn tags_of(tags: &[ec2t::Tag]) -> Tags {
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
        parent: tags.get(crate::bake::SOURCE_TAG).cloned(),
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

fn parse_cidr(s: &str) -> Option<(std::net::Ipv4Addr, u8)> {
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
    super::new_id("x")[2..12].to_string()
}

impl Release for AwsProvider {
    fn provider_name(&self) -> &str {
        "aws"
    }

    fn release(&self, resource: &Resource) -> Result<()> {
        let Resource::Cloud { kind, id, .. } = resource else {
            return Err(Error::Infra(format!(
                "the aws provider does not own {resource}"
            )));
        };
        match kind.as_str() {
            "instance" => {
                let ids: Vec<String> = match id.strip_prefix("launch:") {
                    Some(launch) => self
                        .instances_tagged(LAUNCH_TAG, launch)?
                        .into_iter()
                        .filter(|i| Self::state_of(i) != "terminated")
                        .filter_map(|i| i.instance_id)
                        .collect(),
                    None => vec![id.clone()],
                };
                self.terminate_ids(&ids)
            }
            "security-group" => {
                let ids = match id.strip_prefix("name:") {
                    Some(name) => self.security_groups_named(name)?,
                    None => vec![id.clone()],
                };
                for g in ids {
                    self.delete_security_group(&g)?;
                }
                Ok(())
            }
            "key-pair" => self.delete_key_pair(id),
            "image" => {
                let image = match id.strip_prefix("name:") {
                    Some(name) => self.image_by_name(name)?,
                    None => self.describe_image(id)?,
                };
                match image {
                    Some(i) => self.delete_image_and_snapshots(&i),
                    None => Ok(()),
                }
            }
            "snapshot" => self.delete_snapshot(id),
            other => Err(Error::Infra(format!(
                "the aws provider does not know how to release a `{other}` ({id})"
            ))),
        }
    }
}

impl Provider for AwsProvider {
    fn power(
        &self,
        instance: &Instance,
        action: super::PowerAction,
        _guest: &dyn Transport,
    ) -> Result<()> {
        self.power_action(instance, action)
    }

    fn resolve_source(&self, source: &Source, _ledger: &Ledger) -> Result<Image> {
        let image = match source {
            Source::Image(id) => self.image(id)?,
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

    fn launch(&self, request: &LaunchRequest, ledger: &Ledger) -> Result<Instance> {
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
        let launch_id = super::new_id("l")[2..].to_string();
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

    fn connect(
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

    fn create_image(
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

    fn terminate(&self, instance: &Instance, ledger: &Ledger) -> Result<()> {
        let Some(l) = self.lock().remove(&instance.id) else {
            return Ok(());
        };
        ledger.release(l.instance, Some(self))?;
        ledger.release(l.security_group, Some(self))?;
        ledger.release(l.key_pair, Some(self))
    }

    fn console_tail(&self, instance: &Instance, lines: usize) -> String {
        let text = self.console_text(&instance.id);
        super::console_tail(&text, lines)
    }

    fn image(&self, id: &str) -> Result<Image> {
        if !super::is_id("ami", id) {
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

    fn images(&self) -> Result<Vec<Image>> {
        let out = self
            .block(
                self.clients
                    .ec2
                    .describe_images()
                    .owners("self")
                    .filters(filter(&format!("tag:{CREATED_BY_TAG}"), [CREATED_BY]))
                    .send(),
            )
            .map_err(|e| api_error("ec2:DescribeImages", e))?;
        let mut images: Vec<Image> = out.images().iter().map(to_image).collect();
        images.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
        Ok(images)
    }

    fn tag_image(&self, id: &str, tags: &Tags) -> Result<()> {
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

    fn delete_image(&self, id: &str) -> Result<()> {
        match self.describe_image(id)? {
            Some(i) => self.delete_image_and_snapshots(&i),
            None => Ok(()),
        }
    }

    fn pointer(&self, name: &str) -> Result<Option<String>> {
        match self.block(self.clients.ssm.get_parameter().name(name).send()) {
            Ok(o) => Ok(o.parameter.and_then(|p| p.value)),
            Err(e) if ssm_code(&e) == "ParameterNotFound" => Ok(None),
            Err(e) => Err(ssm_error("ssm:GetParameter", e)),
        }
    }

    fn set_pointer(&self, name: &str, image_id: &str) -> Result<u64> {
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

    fn pointers(&self) -> Result<BTreeMap<String, String>> {
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
            for p in out.parameters() {
                let is_image = p.data_type.as_deref() == Some("aws:ec2:image");
                if let (Some(n), true) = (p.name.clone(), is_image) {
                    names.push(n);
                }
            }
            token = out.next_token.clone();
            if token.is_none() {
                break;
            }
        }
        let mut found = BTreeMap::new();
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
                    found.insert(n, v);
                }
            }
        }
        Ok(found)
    }
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

    #[test]
    fn access_denied_codes_are_recognised() {
        assert!(is_access_denied("UnauthorizedOperation"));
        assert!(is_access_denied("AccessDeniedException"));
        assert!(!is_access_denied("InvalidAMIID.NotFound"));
    }
}
