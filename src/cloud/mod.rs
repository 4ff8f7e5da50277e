//! Providers: where instances run and images are stored.
//!
//! Stages talk to a [`Provider`] and never name QEMU or EC2. A provider creates instances from
//! images, hands out a [`Transport`] into them, turns a builder into an image, and keeps images,
//! their tags and the pointers that publish them.

#[cfg(feature = "aws")]
pub mod aws;
pub mod local;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{InstanceSettings, Source};
use crate::error::Result;
use crate::ledger::{Ledger, Release};
use crate::transport::ssh::KeyPair;
use crate::transport::Transport;

/// Image and resource tags.
pub type Tags = BTreeMap<String, String>;

/// The tag that records an image's gate verdict: `promoted` or `rejected`.
pub const STATUS_TAG: &str = "bakery:status";
/// The tag that records the run that created a resource.
pub const RUN_ID_TAG: &str = "bakery:run-id";
/// The tag that records the commit an image was baked from.
pub const COMMIT_TAG: &str = "bakery:commit";
/// The tag recording the image a baked image was built from.
pub const SOURCE_TAG: &str = "bakery:source";

/// A machine image in a provider's store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// `ami-` and 17 hex digits, for both providers.
    pub id: String,
    pub name: String,
    /// The image it was baked from, if Bakery baked it.
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub tags: Tags,
    /// `available`, `pending` or `failed`.
    pub state: String,
    /// RFC 3339.
    pub created: String,
    /// Bytes the image occupies in the store.
    #[serde(default)]
    pub size_bytes: u64,
}

/// What a new instance is for; it shows in names, tags and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Builder,
    Probe,
}

impl Role {
    /// `builder` or `probe`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Builder => "builder",
            Role::Probe => "probe",
        }
    }
}

/// A request to start an instance.
pub struct LaunchRequest<'a> {
    pub image: &'a Image,
    pub role: Role,
    pub settings: &'a InstanceSettings,
    /// The run's key; its public half is authorised on the instance.
    pub key: &'a KeyPair,
    /// Tags for the instance (the run id among them).
    pub tags: Tags,
}

/// A running instance.
#[derive(Debug, Clone)]
pub struct Instance {
    /// `i-` and 17 hex digits.
    pub id: String,
    pub image_id: String,
    pub role: Role,
    /// The user to log in as.
    pub user: String,
}

/// How this machine reaches an instance's ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    /// The address to dial.
    pub host: String,
    /// Instance port → the port to dial for it, where they differ (forwarded ports).
    pub ports: BTreeMap<u16, u16>,
}

/// A power action on an instance, for failure-mode experiments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// A clean reboot: the operating system shuts down and boots again.
    Reboot,
    /// A power cycle without shutdown.
    HardReset,
    /// Power off cleanly, then start again (a new host on EC2, a new process locally).
    StopStart,
}

impl PowerAction {
    /// The fault's name in suite files.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::Reboot => "reboot",
            PowerAction::HardReset => "hard-reset",
            PowerAction::StopStart => "stop-start",
        }
    }
}

/// The tag on a copy naming the image it was copied from; promotion finds earlier copies by it.
pub const COPIED_FROM_TAG: &str = "bakery:copied-from";

/// What promotion asks of one region: an image there (the image itself, or a copy encrypted
/// with the region's key), shared, deprecated in time, and named by the pointer.
#[derive(Debug, Clone)]
pub struct RegionPlan {
    pub region: String,
    /// The key the region's copy is encrypted with (`alias/…`, a key id or ARN).
    pub kms_key: Option<String>,
    pub share: crate::config::Share,
    pub pointer: String,
    /// When the region's image is deprecated (EnableImageDeprecation).
    pub deprecate_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Tags the region's image and its snapshots carry (the source image's).
    pub tags: Tags,
    /// The [`STATUS_TAG`] the region's image gets last, once the pointer names it.
    pub status: String,
}

/// Where a region's image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageOrigin {
    /// The promoted image itself (its own region, no other key).
    Source,
    /// Copied by this promotion.
    Copied,
    /// A copy an earlier run made of the same image, found by its tag.
    Reused,
}

/// What promotion did in one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionOutcome {
    pub region: String,
    /// The region's image.
    pub image: String,
    pub origin: ImageOrigin,
    /// Permissions granted now (`account 111122223333`, `organization arn:…`, `ou arn:…`,
    /// `snapshot snap-… account …`); ones granted before are not repeated.
    pub granted: Vec<String>,
    /// The pointer's version naming the image.
    pub pointer_version: u64,
    /// False when the pointer named the image already.
    pub pointer_changed: bool,
    /// When the image is deprecated (RFC 3339), if a deprecation is set.
    pub deprecate_at: Option<String>,
}

impl RegionOutcome {
    /// True when the region was already complete and nothing changed.
    pub fn unchanged(&self) -> bool {
        self.origin != ImageOrigin::Copied && self.granted.is_empty() && !self.pointer_changed
    }
}

/// An image as `bakery images` lists it for a provider with regions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogEntry {
    pub region: String,
    #[serde(flatten)]
    pub image: Image,
    /// Parameters naming the image now (pointers, and any other parameter whose value it is).
    pub pointers: Vec<String>,
    /// Who may launch it: `account 111122223333`, `organization arn:…`, `ou arn:…`, `public`.
    pub shared_with: Vec<String>,
    /// When it is deprecated (RFC 3339), if it is.
    pub deprecation: Option<String>,
}

/// A place where instances run and images are kept.
pub trait Provider: Release + Send + Sync {
    /// Finds (or, for a local base image, builds) the image a builder starts from.
    fn resolve_source(&self, source: &Source, ledger: &Ledger) -> Result<Image>;

    /// Starts an instance. Every resource it creates is on the ledger before it exists.
    fn launch(&self, request: &LaunchRequest, ledger: &Ledger) -> Result<Instance>;

    /// Waits until the instance answers and returns a way in, within the settings' boot timeout.
    fn connect(
        &self,
        instance: &Instance,
        key: &KeyPair,
        settings: &InstanceSettings,
    ) -> Result<Box<dyn Transport>>;

    /// Shuts the instance down cleanly and captures its disk as a new image.
    fn create_image(
        &self,
        instance: &Instance,
        name: &str,
        tags: &Tags,
        ledger: &Ledger,
    ) -> Result<Image>;

    /// Stops and removes the instance and everything it alone used.
    fn terminate(&self, instance: &Instance, ledger: &Ledger) -> Result<()>;

    /// How this machine reaches the instance's ports, for checks made `from: runner`; `None`
    /// where it cannot.
    fn reach(&self, _instance: &Instance) -> Option<Reach> {
        None
    }

    /// Reboots, power-cycles or stops and starts the instance; returns once the instance is
    /// starting again. `guest` is the way in, for providers that ask the guest itself to reboot.
    fn power(
        &self,
        instance: &Instance,
        action: PowerAction,
        _guest: &dyn Transport,
    ) -> Result<()> {
        Err(self.unsupported(instance, action.as_str()))
    }

    /// Freezes (`true`) or resumes (`false`) the instance.
    fn set_paused(&self, instance: &Instance, _paused: bool) -> Result<()> {
        Err(self.unsupported(instance, "pause"))
    }

    /// Takes the instance's network link down (`false`) or up again (`true`).
    fn set_link(&self, instance: &Instance, _up: bool) -> Result<()> {
        Err(self.unsupported(instance, "network-partition"))
    }

    /// The error for a fault this provider cannot make.
    fn unsupported(&self, instance: &Instance, fault: &str) -> crate::Error {
        crate::Error::Config(format!(
            "the `{}` provider cannot make the fault `{fault}` (on {}); use another fault or provider",
            self.provider_name(),
            instance.id
        ))
    }

    /// A directory kept with image `id`, for files about it (its manifest); `None` for a
    /// provider whose images cannot hold files, whose manifests stay in the results directory
    /// and are named by a tag of the image.
    fn image_files(&self, _id: &str) -> Option<std::path::PathBuf> {
        None
    }

    /// The last lines the instance wrote to its console.
    fn console_tail(&self, instance: &Instance, lines: usize) -> String;

    /// One image by id.
    fn image(&self, id: &str) -> Result<Image>;

    /// Every image in the store.
    fn images(&self) -> Result<Vec<Image>>;

    /// Adds or replaces tags on an image.
    fn tag_image(&self, id: &str, tags: &Tags) -> Result<()>;

    /// Deletes an image and its storage.
    fn delete_image(&self, id: &str) -> Result<()>;

    /// The image a pointer names now, if the pointer exists.
    fn pointer(&self, name: &str) -> Result<Option<String>>;

    /// Points `name` at `image_id`, keeping the previous values as history; returns the new
    /// version number. Pointing at the image it already names changes nothing.
    fn set_pointer(&self, name: &str, image_id: &str) -> Result<u64>;

    /// Every pointer and the image it names now.
    fn pointers(&self) -> Result<BTreeMap<String, String>>;

    /// The region this provider's images live in; `None` for a provider without regions (it
    /// promotes through [`Provider::set_pointer`] alone).
    fn home_region(&self) -> Option<String> {
        None
    }

    /// Publishes `image` in one region as `plan` says, looking before it creates: an earlier
    /// copy is reused, permissions already granted are not granted again, a pointer already
    /// naming the image is left alone. Safe to call for several regions at once.
    fn distribute(&self, image: &Image, plan: &RegionPlan) -> Result<RegionOutcome> {
        let _ = image;
        Err(self.no_regions(&plan.region))
    }

    /// Every image Bakery made in `region`.
    fn images_in(&self, region: &str) -> Result<Vec<Image>> {
        Err(self.no_regions(region))
    }

    /// What still uses each of `images` of `region` (image id → uses in words): pointers and
    /// other parameters naming it, instances, launch templates, Auto Scaling groups. An image
    /// without an entry is used by nothing Bakery can find.
    fn uses_in(&self, region: &str, images: &[Image]) -> Result<BTreeMap<String, Vec<String>>> {
        let _ = images;
        Err(self.no_regions(region))
    }

    /// Every image Bakery made in `region`, with its pointers, sharing and deprecation.
    fn catalog(&self, region: &str) -> Result<Vec<CatalogEntry>> {
        Err(self.no_regions(region))
    }

    /// Deletes an image of `region` and its storage.
    fn delete_image_in(&self, region: &str, id: &str) -> Result<()> {
        let _ = id;
        Err(self.no_regions(region))
    }

    /// The error for a region asked of a provider without regions.
    fn no_regions(&self, region: &str) -> crate::Error {
        crate::Error::Config(format!(
            "the `{}` provider has no regions; promotion to {region} needs `provider: aws`",
            self.provider_name()
        ))
    }
}

/// The last `lines` non-empty lines of a console log, control characters removed.
pub fn console_tail(text: &str, lines: usize) -> String {
    let cleaned: Vec<String> = text
        .lines()
        .map(|l| {
            l.chars()
                .filter(|c| !c.is_control() || *c == '\t')
                .collect()
        })
        .filter(|l: &String| !l.trim().is_empty())
        .collect();
    cleaned[cleaned.len().saturating_sub(lines)..].join("\n")
}

/// A fresh id in AWS's shape: `prefix-` and 17 lowercase hex digits.
pub fn new_id(prefix: &str) -> String {
    use rand_core::RngCore;
    let mut bytes = [0u8; 9];
    rand_core::OsRng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{}", &hex[..17])
}

/// True for ids of the form `prefix-` and 17 hex digits (or 8, as older AWS ids are).
pub fn is_id(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|hex| {
            (hex.len() == 17 || hex.len() == 8) && hex.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

/// The provider a pipeline file names, with its store under `data_dir`.
pub fn open(
    kind: crate::config::ProviderKind,
    data_dir: &std::path::Path,
) -> Result<std::sync::Arc<dyn Provider>> {
    match kind {
        crate::config::ProviderKind::Local => {
            Ok(std::sync::Arc::new(local::LocalProvider::new(data_dir)))
        }
        #[cfg(feature = "aws")]
        crate::config::ProviderKind::Aws => Ok(std::sync::Arc::new(aws::AwsProvider::new(
            Default::default(),
            "the pipeline file",
        )?)),
        #[cfg(not(feature = "aws"))]
        crate::config::ProviderKind::Aws => Err(without_aws("`provider: aws`")),
    }
}

/// The provider a loaded pipeline file names, with its settings (the `aws:` block).
pub fn open_for(
    loaded: &crate::config::LoadedPipeline,
    data_dir: &std::path::Path,
) -> Result<std::sync::Arc<dyn Provider>> {
    match loaded.pipeline.provider {
        #[cfg(feature = "aws")]
        crate::config::ProviderKind::Aws => Ok(std::sync::Arc::new(aws::AwsProvider::new(
            loaded.pipeline.aws.clone().unwrap_or_default(),
            &loaded.path.display().to_string(),
        )?)),
        #[cfg(not(feature = "aws"))]
        crate::config::ProviderKind::Aws => Err(without_aws(&format!(
            "{}: `provider: aws`",
            loaded.path.display()
        ))),
        kind => open(kind, data_dir),
    }
}

/// Hands the command line's `--region` and `--endpoint-url` to the AWS provider (a local-only
/// build has none, and ignores them).
pub fn set_aws_overrides(region: Option<String>, endpoint_url: Option<String>) {
    #[cfg(feature = "aws")]
    aws::set_overrides(aws::Overrides {
        region,
        endpoint_url,
    });
    #[cfg(not(feature = "aws"))]
    let _ = (region, endpoint_url);
}

/// What a local-only build (`--no-default-features`) says where the AWS provider is needed.
#[cfg(not(feature = "aws"))]
pub fn without_aws(what: &str) -> crate::Error {
    crate::Error::Config(format!(
        "{what} needs the AWS provider, and this bakery is a local-only build (cargo feature \
         `aws` left out); use the full binary: `cargo install --path .`, \
         `cargo build --release`, or the action's image"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_aws_shape() {
        let id = new_id("ami");
        assert!(is_id("ami", &id), "{id}");
        assert!(!is_id("ami", "ami-xyz"));
        assert!(!is_id("i", &id));
    }
}
