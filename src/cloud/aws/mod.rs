//! The `aws` provider: EC2 builder and probe instances, AMIs, and SSM parameters as pointers.
//!
//! The pipeline is synchronous; the AWS SDK is async. The provider owns a small tokio runtime
//! and blocks on each call. Every resource is on the run's ledger before the call that creates
//! it: under a name or a launch tag chosen up front (`name:…`, `launch:…`), replaced by the
//! real id once AWS returns it, so a run killed between the two is still cleaned up.
//!
//! This file holds the provider's clients, settings and the `Provider` and `Release` impls;
//! the work is split by what it does: [`instances`] (launch, connect, terminate, power),
//! [`images`] (create, describe, tag, delete) and [`distribution`] (pointers, and what
//! promotion does per region).

pub mod console;
pub mod distribution;
mod faults;
pub mod images;
pub mod instances;
pub mod sweep;
pub mod usage;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use aws_sdk_ec2::types as ec2t;
use aws_sdk_ec2::Client as Ec2;
use aws_sdk_ssm::Client as Ssm;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub use self::images::{tags_of, to_image};
use self::instances::parse_cidr;
use super::{Image, Instance, LaunchRequest, Provider, Tags};
pub use crate::aws::errors::{api_error, code_of, ssm_code, ssm_error};
use crate::aws::wait::{self, Backoff, OnSignal, Poll};
use crate::config::{AwsSettings, AwsTransport, InstanceSettings, Source};
use crate::error::{Error, Result};
use crate::ledger::{Ledger, Release, Resource, Token};
use crate::transport::ssh::KeyPair;
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
    /// The loaded SDK configuration (credentials, endpoint), for clients of other regions.
    pub conf: aws_config::SdkConfig,
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
            conf,
        })
    }

    /// Clients of another region, with the same credentials, endpoint and runtime.
    pub fn for_region(&self, region: &str) -> Clients {
        let conf = self
            .conf
            .to_builder()
            .region(aws_config::Region::new(region.to_string()))
            .build();
        Clients {
            ec2: Ec2::new(&conf),
            ssm: Ssm::new(&conf),
            rt: self.rt.clone(),
            region: region.to_string(),
            conf,
        }
    }

    /// Runs one SDK call to completion.
    pub fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

/// This provider or one of another region.
enum Regional<'a> {
    Here(&'a AwsProvider),
    There(Arc<AwsProvider>),
}

impl std::ops::Deref for Regional<'_> {
    type Target = AwsProvider;
    fn deref(&self) -> &AwsProvider {
        match self {
            Regional::Here(p) => p,
            Regional::There(p) => p,
        }
    }
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
    /// Providers of the other regions promotion publishes to, made on first use.
    regional: Mutex<HashMap<String, Arc<AwsProvider>>>,
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
            regional: Mutex::new(HashMap::new()),
        }
    }

    /// The provider of `region`: this one, or one with the same settings and credentials.
    fn regional(&self, region: &str) -> Regional<'_> {
        if region == self.clients.region {
            Regional::Here(self)
        } else {
            Regional::There(self.in_region(region))
        }
    }

    /// A provider of `region` with the same settings and credentials, made once.
    pub fn in_region(&self, region: &str) -> Arc<AwsProvider> {
        let mut regional = self.regional.lock().unwrap_or_else(|p| p.into_inner());
        regional
            .entry(region.to_string())
            .or_insert_with(|| {
                Arc::new(AwsProvider::with_clients(
                    self.clients.for_region(region),
                    self.settings.clone(),
                    &self.file,
                ))
            })
            .clone()
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
        self.resolve_source_image(source)
    }

    fn launch(&self, request: &LaunchRequest, ledger: &Ledger) -> Result<Instance> {
        self.launch_instance(request, ledger)
    }

    fn connect(
        &self,
        instance: &Instance,
        key: &KeyPair,
        settings: &InstanceSettings,
    ) -> Result<Box<dyn Transport>> {
        self.connect_instance(instance, key, settings)
    }

    fn create_image(
        &self,
        instance: &Instance,
        name: &str,
        tags: &Tags,
        ledger: &Ledger,
    ) -> Result<Image> {
        self.capture_image(instance, name, tags, ledger)
    }

    fn terminate(&self, instance: &Instance, ledger: &Ledger) -> Result<()> {
        crate::signals::releasing();
        self.terminate_instance(instance, ledger)
    }

    fn console_tail(&self, instance: &Instance, lines: usize) -> String {
        let text = self.console_text(&instance.id);
        super::console_tail(&text, lines)
    }

    fn image(&self, id: &str) -> Result<Image> {
        self.image_by_id(id)
    }

    fn images(&self) -> Result<Vec<Image>> {
        self.own_images()
    }

    fn tag_image(&self, id: &str, tags: &Tags) -> Result<()> {
        self.tag_image_and_snapshots(id, tags)
    }

    fn delete_image(&self, id: &str) -> Result<()> {
        self.delete_image_by_id(id)
    }

    fn pointer(&self, name: &str) -> Result<Option<String>> {
        self.get_pointer(name)
    }

    fn set_pointer(&self, name: &str, image_id: &str) -> Result<u64> {
        self.put_pointer(name, image_id)
    }

    fn pointers(&self) -> Result<BTreeMap<String, String>> {
        self.all_pointers()
    }

    fn home_region(&self) -> Option<String> {
        Some(self.clients.region.clone())
    }

    fn distribute(&self, image: &Image, plan: &super::RegionPlan) -> Result<super::RegionOutcome> {
        self.distribute_to(image, plan)
    }

    fn images_in(&self, region: &str) -> Result<Vec<Image>> {
        self.regional(region).own_images()
    }

    fn uses_in(&self, region: &str, images: &[Image]) -> Result<BTreeMap<String, Vec<String>>> {
        self.regional(region).uses_of(images)
    }

    fn catalog(&self, region: &str) -> Result<Vec<super::CatalogEntry>> {
        self.regional(region).catalog_here()
    }

    fn delete_image_in(&self, region: &str, id: &str) -> Result<()> {
        self.regional(region).delete_image_by_id(id)
    }
}
