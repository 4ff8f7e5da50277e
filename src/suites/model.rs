//! The suite file model: a suite, its checks, and one struct per resource type.
//!
//! A check is a mapping with an `id`, optional `title`, `tags`, `skip`, `timeout`, `retry`,
//! `eventually` and `meta`, and exactly one resource key (`command`, `service`, `file`, ...).
//! Unknown keys are errors everywhere.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;

use super::matcher::Matcher;
use super::resources::Resource;
use crate::config::HumanDuration;

/// A parsed suite: a name and its checks, in file order.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The suite's name (the `name` key, else the file name without extension).
    pub name: String,
    /// A free-text description.
    pub description: Option<String>,
    /// The checks, in file order; ids are unique.
    pub checks: Vec<Check>,
    /// Failure-mode experiments, run after the checks, one at a time; ids are unique among
    /// checks and experiments.
    pub experiments: Vec<crate::chaos::Experiment>,
    /// The probe group the suite runs on (`main` when not named).
    pub probe: Option<String>,
    /// The file the suite was read from, if any.
    pub source: Option<std::path::PathBuf>,
    /// For a CIS benchmark suite: the benchmark, the profile and the pipeline's tailoring.
    pub cis: Option<Box<super::cis::CisSuite>>,
}

/// A suite file written as a mapping (the other accepted form is a plain list of checks).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuiteDoc {
    /// The suite's name; defaults to the file name without extension.
    pub name: Option<String>,
    /// A free-text description.
    pub description: Option<String>,
    /// The checks.
    #[serde(default)]
    pub checks: Vec<Check>,
    /// Failure-mode experiments: steady state, one fault, checks during it, `recover-within`.
    #[serde(default)]
    pub experiments: Vec<crate::chaos::Experiment>,
    /// The probe group to run on: `main` (default) or a name under the pipeline's
    /// `verify.probes`, e.g. `chaos` for destructive experiments.
    pub probe: Option<String>,
}

/// How often to try a check again when it does not pass.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The pause between attempts (default 1s).
    pub interval: Option<HumanDuration>,
}

/// One check: metadata plus exactly one resource.
#[derive(Debug, Clone)]
pub struct Check {
    /// Unique within the suite.
    pub id: String,
    /// A human sentence saying what is checked.
    pub title: Option<String>,
    /// Labels for filtering.
    pub tags: Vec<String>,
    /// When set, the check is reported as skipped with this reason.
    pub skip: Option<String>,
    /// The most one attempt may take.
    pub timeout: Option<HumanDuration>,
    /// Try again on failure.
    pub retry: Option<Retry>,
    /// Keep trying until it passes or this much time has passed.
    pub eventually: Option<HumanDuration>,
    /// Free-form data carried into the JSON results.
    pub meta: BTreeMap<String, serde_json::Value>,
    /// Compliance metadata (a CIS control): benchmark, level, rationale, remediation, ...
    pub control: Option<Box<Control>>,
    /// When this does not hold on the probe, the check is `not-applicable`.
    pub applies_if: Option<Resource>,
    /// What is checked (`Resource::Manual` for a manual control).
    pub resource: Resource,
}

impl Check {
    /// The title, or the id when there is none.
    pub fn title_or_id(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.id)
    }

    /// Whether the check needs more than one gathered resource: a condition or a composite.
    pub(crate) fn is_compound(&self) -> bool {
        self.applies_if.is_some()
            || matches!(
                self.resource,
                Resource::AllOf(_) | Resource::AnyOf(_) | Resource::Manual
            )
    }
}

/// Compliance metadata of a check that is a benchmark control (CIS).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Control {
    /// The benchmark and its version (`CIS Debian Linux 12 Benchmark v1.1.0`); set by the
    /// benchmark loader, empty in a plain suite file.
    pub benchmark: String,
    /// The top-level section the control belongs to (`5`).
    pub section: String,
    /// `1` or `2`: the lowest profile level that lists the control; in the controls of a
    /// benchmark run, the level the run's profile lists it at.
    pub level: u8,
    /// The profiles of that level that list it: `server`, `workstation`.
    pub profiles: Vec<Profile>,
    /// Profiles that list a level 1 control only at level 2 (CIS lists some controls as
    /// Level 1 Server and Level 2 Workstation).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub level_2_profiles: Vec<Profile>,
    /// Automated (evaluated) or manual (reported `not-reviewed` unless attested).
    pub automated: bool,
    /// CIS Controls v8 safeguards (`v8:4.1`).
    pub cis_controls: Vec<String>,
    /// Why it matters.
    pub rationale: String,
    /// How to comply.
    pub remediation: String,
}

/// A CIS profile kind.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Server,
    Workstation,
}

impl Profile {
    /// The name as written in content: `server`, `workstation`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Server => "server",
            Profile::Workstation => "workstation",
        }
    }
}

impl Control {
    /// The level at which profiles of `kind` list the control; `None` when none does.
    pub fn level_in(&self, kind: Profile) -> Option<u8> {
        if self.profiles.contains(&kind) {
            Some(self.level)
        } else if self.level_2_profiles.contains(&kind) {
            Some(2)
        } else {
            None
        }
    }

    /// Whether the profile `kind` at `level` (a level 2 profile includes level 1) lists the
    /// control.
    pub fn in_profile(&self, level: u8, kind: Profile) -> bool {
        self.level_in(kind).is_some_and(|l| l <= level)
    }
}

/// A condition or a compound resource as written: exactly one resource key, or `all-of` /
/// `any-of` with a list of such mappings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "ResourceMapping")]
pub struct RawResource {
    /// Every listed resource must hold.
    pub all_of: Option<Vec<RawResource>>,
    /// At least one listed resource must hold.
    pub any_of: Option<Vec<RawResource>>,
    /// See the check's `command`.
    pub command: Option<CommandCheck>,
    /// See the check's `service`.
    pub service: Option<ServiceCheck>,
    /// See the check's `file`.
    pub file: Option<FileCheck>,
    /// See the check's `package`.
    pub package: Option<PackageCheck>,
    /// See the check's `port`.
    pub port: Option<PortCheck>,
    /// See the check's `http`.
    pub http: Option<HttpCheck>,
    /// See the check's `user`.
    pub user: Option<UserCheck>,
    /// See the check's `group`.
    pub group: Option<GroupCheck>,
    /// See the check's `process`.
    pub process: Option<ProcessCheck>,
    /// See the check's `kernel-param`.
    pub kernel_param: Option<KernelParamCheck>,
    /// See the check's `mount`.
    pub mount: Option<MountCheck>,
    /// See the check's `interface`.
    pub interface: Option<InterfaceCheck>,
    /// See the check's `dns`.
    pub dns: Option<DnsCheck>,
    /// See the check's `addr`.
    pub addr: Option<AddrCheck>,
    /// See the check's `matching`.
    pub matching: Option<MatchingCheck>,
    /// See the check's `clock`.
    pub clock: Option<ClockCheck>,
    /// See the check's `sshd-config`.
    pub sshd_config: Option<SshdConfigCheck>,
    /// See the check's `kernel-module`.
    pub kernel_module: Option<KernelModuleCheck>,
    /// See the check's `login-defs`.
    pub login_defs: Option<LoginDefsCheck>,
    /// See the check's `local-files`.
    pub local_files: Option<LocalFilesCheck>,
}

/// Every resource written in `raw` (a [`RawCheck`] or a [`RawResource`]), composites converted.
macro_rules! resources_of {
    ($raw:expr) => {{
        let mut found: Vec<Resource> = Vec::new();
        found.extend($raw.command.map(Resource::Command));
        found.extend($raw.service.map(Resource::Service));
        found.extend($raw.file.map(|f| Resource::File(Box::new(f))));
        found.extend($raw.package.map(Resource::Package));
        found.extend($raw.port.map(Resource::Port));
        found.extend($raw.http.map(|h| Resource::Http(Box::new(h))));
        found.extend($raw.user.map(Resource::User));
        found.extend($raw.group.map(Resource::Group));
        found.extend($raw.process.map(Resource::Process));
        found.extend($raw.kernel_param.map(Resource::KernelParam));
        found.extend($raw.mount.map(|m| Resource::Mount(Box::new(m))));
        found.extend($raw.interface.map(Resource::Interface));
        found.extend($raw.dns.map(Resource::Dns));
        found.extend($raw.addr.map(Resource::Addr));
        found.extend($raw.matching.map(Resource::Matching));
        found.extend($raw.clock.map(Resource::Clock));
        found.extend($raw.sshd_config.map(Resource::SshdConfig));
        found.extend($raw.kernel_module.map(Resource::KernelModule));
        found.extend($raw.login_defs.map(Resource::LoginDefs));
        found.extend($raw.local_files.map(Resource::LocalFiles));
        if let Some(items) = $raw.all_of {
            found.push(Resource::AllOf(composite("all-of", items)?));
        }
        if let Some(items) = $raw.any_of {
            found.push(Resource::AnyOf(composite("any-of", items)?));
        }
        found
    }};
}

fn composite(key: &str, items: Vec<RawResource>) -> Result<Vec<Resource>, String> {
    if items.is_empty() {
        return Err(format!("`{key}` lists no resource; give at least one"));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.into_resource().map_err(|e| format!("{key}[{i}]: {e}")))
        .collect()
}

impl RawResource {
    /// The one resource written here.
    pub fn into_resource(self) -> Result<Resource, String> {
        let mut found = resources_of!(self);
        let r = one_resource(&mut found, "a resource mapping")?;
        r.validate()?;
        Ok(r)
    }
}

/// The single resource of `found`, validated; an error naming what was found otherwise.
fn one_resource(found: &mut Vec<Resource>, who: &str) -> Result<Resource, String> {
    if found.len() != 1 {
        let names: Vec<_> = found.iter().map(|r| format!("`{}`", r.kind())).collect();
        return Err(format!(
            "{who} must have exactly one resource key, found {}; accepted: {}, all-of, any-of",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            },
            Resource::KINDS.join(", ")
        ));
    }
    Ok(found.pop().expect("one resource"))
}

/// The check as written: one optional field per resource type, so unknown keys stay errors.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "Check")]
pub struct RawCheck {
    /// Unique within the suite.
    pub id: String,
    /// A human sentence saying what is checked.
    pub title: Option<String>,
    /// Labels for filtering with `--tag`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Report the check as skipped with this reason.
    pub skip: Option<String>,
    /// The most one attempt may take (default 60s).
    pub timeout: Option<HumanDuration>,
    /// Try again on failure: `{attempts: 5, interval: 2s}`.
    pub retry: Option<Retry>,
    /// Keep trying until it passes or this much time has passed: `60s`.
    pub eventually: Option<HumanDuration>,
    /// Free-form data carried into the JSON results.
    #[serde(default)]
    pub meta: BTreeMap<String, serde_json::Value>,
    /// Run a command and check its exit status and output.
    pub command: Option<CommandCheck>,
    /// A systemd unit: running, enabled.
    pub service: Option<ServiceCheck>,
    /// A path: existence, type, mode, ownership, size, contents, digest, link target.
    pub file: Option<FileCheck>,
    /// An installed package (dpkg or rpm) and its versions.
    pub package: Option<PackageCheck>,
    /// A listening TCP or UDP port.
    pub port: Option<PortCheck>,
    /// An HTTP request made from the probe with curl.
    pub http: Option<HttpCheck>,
    /// A local user account.
    pub user: Option<UserCheck>,
    /// A local group.
    pub group: Option<GroupCheck>,
    /// Running processes by executable name.
    pub process: Option<ProcessCheck>,
    /// A kernel parameter (sysctl).
    pub kernel_param: Option<KernelParamCheck>,
    /// A mount point.
    pub mount: Option<MountCheck>,
    /// A network interface.
    pub interface: Option<InterfaceCheck>,
    /// Name resolution from the probe.
    pub dns: Option<DnsCheck>,
    /// A TCP or UDP address reachable from the probe (or from the runner).
    pub addr: Option<AddrCheck>,
    /// Values matched without touching the probe.
    pub matching: Option<MatchingCheck>,
    /// The probe's clock: in step with the runner's, NTP-synchronised.
    pub clock: Option<ClockCheck>,
    /// sshd's effective configuration (`sshd -T`): keyword → matcher.
    pub sshd_config: Option<SshdConfigCheck>,
    /// A kernel module: loaded, loadable, deny-listed, available.
    pub kernel_module: Option<KernelModuleCheck>,
    /// `/etc/login.defs`: key → matcher.
    pub login_defs: Option<LoginDefsCheck>,
    /// Files on the probe's local file systems with a problem (world-writable, no owner),
    /// found in one scan shared by every such check.
    pub local_files: Option<LocalFilesCheck>,
    /// Instead of one resource: every listed resource mapping must hold.
    pub all_of: Option<Vec<RawResource>>,
    /// Instead of one resource: at least one listed resource mapping must hold.
    pub any_of: Option<Vec<RawResource>>,
    /// A condition (a resource mapping); when it does not hold, the check is `not-applicable`.
    pub applies_if: Option<RawResource>,
    /// Control metadata: `1` or `2`, the lowest benchmark level listing the control.
    pub level: Option<u8>,
    /// Control metadata: the profiles of that level that list it (`[server, workstation]`).
    pub profiles: Option<Vec<Profile>>,
    /// Control metadata, for a level 1 control: profiles that list it only at level 2
    /// (`[workstation]` for a Level 1 Server, Level 2 Workstation control).
    pub level_2_profiles: Option<Vec<Profile>>,
    /// Control metadata: `false` for a manual control (no resource; `not-reviewed` unless
    /// attested).
    pub automated: Option<bool>,
    /// Control metadata: CIS Controls v8 references (`"v8:4.1"`).
    pub cis_controls: Option<Vec<String>>,
    /// Control metadata: why the control matters.
    pub rationale: Option<String>,
    /// Control metadata: how to comply.
    pub remediation: Option<String>,
}

impl RawCheck {
    /// The control metadata, when the check has any; an error when some is missing.
    fn control(&mut self) -> Result<Option<Control>, String> {
        let any = self.level.is_some()
            || self.profiles.is_some()
            || self.level_2_profiles.is_some()
            || self.automated.is_some()
            || self.cis_controls.is_some()
            || self.rationale.is_some()
            || self.remediation.is_some();
        if !any {
            return Ok(None);
        }
        let missing = |k: &str| {
            format!(
                "check `{}` is a control (it has control metadata) and needs `{k}`",
                self.id
            )
        };
        let level = self.level.ok_or_else(|| missing("level"))?;
        if !(1..=2).contains(&level) {
            return Err(format!(
                "check `{}`: `level` is 1 or 2, got {level}",
                self.id
            ));
        }
        let automated = self.automated.ok_or_else(|| missing("automated"))?;
        let rationale = self.rationale.take().ok_or_else(|| missing("rationale"))?;
        let remediation = self
            .remediation
            .take()
            .ok_or_else(|| missing("remediation"))?;
        let profiles = self
            .profiles
            .take()
            .unwrap_or_else(|| vec![Profile::Server, Profile::Workstation]);
        if profiles.is_empty() {
            return Err(format!("check `{}`: `profiles` lists no profile", self.id));
        }
        let level_2_profiles = self.level_2_profiles.take().unwrap_or_default();
        if !level_2_profiles.is_empty() && level != 1 {
            return Err(format!(
                "check `{}`: `level-2-profiles` is for a level 1 control that some profiles \
                 list at level 2; this control is level {level}",
                self.id
            ));
        }
        if let Some(p) = level_2_profiles.iter().find(|p| profiles.contains(p)) {
            return Err(format!(
                "check `{}`: `{}` is in both `profiles` and `level-2-profiles`",
                self.id,
                p.name()
            ));
        }
        Ok(Some(Control {
            benchmark: String::new(),
            section: String::new(),
            level,
            profiles,
            level_2_profiles,
            automated,
            cis_controls: self.cis_controls.take().unwrap_or_default(),
            rationale: rationale.trim().to_string(),
            remediation: remediation.trim().to_string(),
        }))
    }
}

impl TryFrom<RawCheck> for Check {
    type Error = String;

    fn try_from(mut raw: RawCheck) -> Result<Self, String> {
        if raw.id.trim().is_empty() {
            return Err("a check `id` cannot be empty".into());
        }
        let control = raw.control()?;
        let applies_if = match raw.applies_if.take() {
            Some(c) => Some(
                c.into_resource()
                    .map_err(|e| format!("check `{}`: applies-if: {e}", raw.id))?,
            ),
            None => None,
        };
        let id = raw.id.clone();
        let (title, tags, skip, timeout, retry, eventually, meta) = (
            raw.title.take(),
            std::mem::take(&mut raw.tags),
            raw.skip.take(),
            raw.timeout,
            raw.retry,
            raw.eventually,
            std::mem::take(&mut raw.meta),
        );
        let mut found = (|| -> Result<Vec<Resource>, String> { Ok(resources_of!(raw)) })()
            .map_err(|e| format!("check `{id}`: {e}"))?;
        let manual = control.as_ref().is_some_and(|c| !c.automated);
        let resource = if manual {
            if !found.is_empty() {
                return Err(format!(
                    "check `{id}` is a manual control (`automated: false`) and cannot have a \
                     resource; it is reported not-reviewed unless attested"
                ));
            }
            Resource::Manual
        } else {
            let r = one_resource(&mut found, &format!("check `{id}`"))?;
            r.validate().map_err(|e| format!("check `{id}`: {e}"))?;
            r
        };
        let compound = applies_if.is_some()
            || matches!(
                resource,
                Resource::AllOf(_) | Resource::AnyOf(_) | Resource::Manual
            );
        if compound && (retry.is_some() || eventually.is_some()) {
            return Err(format!(
                "check `{id}`: `retry` and `eventually` work on checks of one resource; they \
                 cannot be combined with `applies-if`, `all-of`, `any-of` or a manual control"
            ));
        }
        Ok(Check {
            id,
            title,
            tags,
            skip,
            timeout,
            retry,
            eventually,
            meta,
            control: control.map(Box::new),
            applies_if,
            resource,
        })
    }
}

impl<'de> Deserialize<'de> for Check {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Check::try_from(RawCheck::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Check {
    fn schema_name() -> Cow<'static, str> {
        RawCheck::schema_name()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        RawCheck::json_schema(g)
    }
}

/// Runs a command on the probe (`sh -c` semantics).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CommandCheck {
    /// The command line (Goss calls it `exec`).
    #[serde(alias = "exec")]
    pub run: String,
    /// The expected exit status (default 0).
    pub exit_status: Option<Matcher>,
    /// Expected standard output.
    pub stdout: Option<Matcher>,
    /// Expected standard error.
    pub stderr: Option<Matcher>,
}

/// A systemd unit. With neither attribute given, `running: true` is checked.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServiceCheck {
    /// The unit name; `.service` is implied without a suffix.
    pub name: String,
    /// Whether the unit is active
    pub running: Option<Matcher>,
    /// Whether the unit is enabled (`systemctl is-enabled` semantics: static units count)
    pub enabled: Option<Matcher>,
}

/// A path on the probe. Symbolic links are not followed (use `linked-to`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileCheck {
    /// An absolute path.
    pub path: String,
    /// Whether the path exists (default true; a matcher such as `{or: [true, false]}` too).
    pub exists: Option<Matcher>,
    /// Permission bits in octal, e.g. `"0644"`.
    pub mode: Option<Matcher>,
    /// The most permissive mode allowed, e.g. `"0640"`: no permission bit outside it is set.
    pub max_mode: Option<String>,
    /// Owner user name.
    pub owner: Option<Matcher>,
    /// Owner group name.
    pub group: Option<Matcher>,
    /// Owner user id.
    pub uid: Option<Matcher>,
    /// Owner group id.
    pub gid: Option<Matcher>,
    /// Size in bytes.
    pub size: Option<Matcher>,
    /// `file`, `directory`, `symlink`, `character-device`, `block-device`, `pipe` or `socket`.
    pub filetype: Option<Matcher>,
    /// The contents (read up to 1 MiB).
    pub contents: Option<Matcher>,
    /// The SHA-256 digest in hex.
    pub sha256: Option<Matcher>,
    /// The SHA-512 digest in hex.
    pub sha512: Option<Matcher>,
    /// The MD5 digest in hex.
    pub md5: Option<Matcher>,
    /// The target of a symbolic link, as stored in the link.
    pub linked_to: Option<Matcher>,
}

/// An installed package: dpkg on Debian-like systems, rpm on Red Hat-like ones.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PackageCheck {
    /// The package name (`name:arch` selects an architecture on dpkg).
    pub name: String,
    /// Whether it is installed (default true; a matcher such as `{or: [true, false]}` too).
    pub installed: Option<Matcher>,
    /// The installed versions (a list; a scalar matches a single version).
    #[serde(alias = "versions")]
    pub version: Option<Matcher>,
}

/// A port with a socket listening on it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PortCheck {
    /// The port number.
    pub port: u16,
    /// `tcp` (IPv4 or IPv6), `tcp4`, `tcp6`, `udp`, `udp4` or `udp6`; default `tcp`.
    #[serde(default)]
    pub protocol: Protocol,
    /// Whether something listens (default true; a matcher such as `{or: [true, false]}` too).
    pub listening: Option<Matcher>,
    /// The addresses listened on, e.g. `{contains: "0.0.0.0"}`.
    pub ip: Option<Matcher>,
}

/// A transport protocol and address family for [`PortCheck`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Tcp4,
    Tcp6,
    Udp,
    Udp4,
    Udp6,
}

/// An HTTP request made from the probe with curl.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpCheck {
    /// The URL.
    pub url: String,
    /// The request method (default GET).
    pub method: Option<String>,
    /// The expected status (default 200).
    pub status: Option<Matcher>,
    /// The response body.
    pub body: Option<Matcher>,
    /// Response headers, as text of `Name: value` lines (names in canonical case, as Goss).
    pub headers: Option<Matcher>,
    /// Request headers, `Name: value`.
    #[serde(default)]
    pub request_headers: Vec<String>,
    /// A request body.
    pub request_body: Option<String>,
    /// Accept any TLS certificate.
    #[serde(default)]
    pub allow_insecure: bool,
    /// Do not follow redirects.
    #[serde(default)]
    pub no_follow_redirects: bool,
    /// Basic-auth user name.
    pub username: Option<String>,
    /// Basic-auth password.
    pub password: Option<String>,
    /// Where the request is made from: `probe` (default) or `runner` (see [`Side`]).
    #[serde(default)]
    pub from: Side,
}

/// Where a network check is made from.
///
/// From the `runner`, the host name `probe` in a URL or address stands for the probe as the
/// runner reaches it (a forwarded port on the local provider, the instance address on AWS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    #[default]
    Probe,
    Runner,
}

/// A local user account (from `getent passwd` and `getent group`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UserCheck {
    /// The user name (Goss: `username`).
    #[serde(alias = "username")]
    pub name: String,
    /// Whether the account exists (default true; a matcher such as `{or: [true, false]}` too).
    pub exists: Option<Matcher>,
    /// The user id.
    pub uid: Option<Matcher>,
    /// The primary group id.
    pub gid: Option<Matcher>,
    /// Group names, the primary group included.
    pub groups: Option<Matcher>,
    /// The home directory.
    pub home: Option<Matcher>,
    /// The login shell.
    pub shell: Option<Matcher>,
}

/// A local group.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GroupCheck {
    /// The group name (Goss: `groupname`).
    #[serde(alias = "groupname")]
    pub name: String,
    /// Whether the group exists (default true; a matcher such as `{or: [true, false]}` too).
    pub exists: Option<Matcher>,
    /// The group id.
    pub gid: Option<Matcher>,
}

/// Processes whose executable name (`/proc/PID/comm`, at most 15 characters) is `comm`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProcessCheck {
    /// The executable name (Goss: `comm`).
    #[serde(alias = "name")]
    pub comm: String,
    /// Whether at least one runs (default true; a matcher such as `{or: [true, false]}` too).
    pub running: Option<Matcher>,
    /// How many run, e.g. `{ge: 2}`.
    pub count: Option<Matcher>,
}

/// A kernel parameter, read from `/proc/sys`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KernelParamCheck {
    /// The sysctl name, e.g. `net.ipv4.ip_forward`.
    pub name: String,
    /// The running value (from `/proc/sys`).
    pub value: Option<Matcher>,
    /// The value the boot-time sysctl configuration sets (the last assignment in
    /// `systemd-sysctl`'s order), the empty string when nothing sets it.
    pub persisted: Option<Matcher>,
}

/// The probe's clock, compared with the runner's (which CI runners keep synchronised).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClockCheck {
    /// The most the probe's clock may differ from the runner's (default 5s).
    pub max_offset: Option<HumanDuration>,
    /// Whether the kernel must report the clock NTP-synchronised (`timedatectl`).
    pub synchronized: Option<bool>,
}

/// A mount point (from `/proc/self/mountinfo`; usage from `statfs`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MountCheck {
    /// The mount point (Goss: `mountpoint`).
    #[serde(alias = "mountpoint")]
    pub path: String,
    /// Whether something is mounted there (default true; a matcher such as `{or: [true, false]}` too).
    pub exists: Option<Matcher>,
    /// Per-mount options, e.g. `[rw, nosuid]`.
    pub opts: Option<Matcher>,
    /// Per-superblock options.
    pub vfs_opts: Option<Matcher>,
    /// The mounted device or source.
    pub source: Option<Matcher>,
    /// The file-system type.
    pub filesystem: Option<Matcher>,
    /// Percentage of blocks in use, e.g. `{lt: 90}`.
    pub usage: Option<Matcher>,
}

/// A network interface.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InterfaceCheck {
    /// The interface name.
    pub name: String,
    /// Whether it exists (default true; a matcher such as `{or: [true, false]}` too).
    pub exists: Option<Matcher>,
    /// Its addresses in CIDR form, e.g. `["10.0.2.15/24"]`.
    pub addrs: Option<Matcher>,
    /// Its MTU.
    pub mtu: Option<Matcher>,
}

/// Name resolution on the probe: the system resolver, or `dig` against a given server.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DnsCheck {
    /// The name to resolve (Goss: `resolve`).
    #[serde(alias = "resolve")]
    pub name: String,
    /// The record type: `A`, `AAAA` or, with `server`, also `CNAME`, `MX`, `NS`, `PTR`, `SRV`,
    /// `TXT`, `CAA`; without it, both A and AAAA through the system resolver.
    #[serde(rename = "type")]
    pub record_type: Option<String>,
    /// Whether the name resolves (default true; a matcher such as `{or: [true, false]}` too).
    pub resolvable: Option<Matcher>,
    /// The answers, e.g. `{contains: "127.0.0.1"}`.
    pub addrs: Option<Matcher>,
    /// Ask this server (`host` or `host:port`) with `dig` instead of the system resolver.
    pub server: Option<String>,
}

/// A TCP, UDP or Unix-socket address that must (or must not) accept connections.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AddrCheck {
    /// `tcp://host:port`, `udp://host:port`, `host:port` (TCP) or `unix:///path/to/socket`.
    pub address: String,
    /// The local IP address the connection is made from (from the probe only).
    pub local_address: Option<String>,
    /// Whether a connection succeeds (default true; a matcher such as `{or: [true, false]}` too).
    pub reachable: Option<Matcher>,
    /// How long one connection attempt may take (default 5s).
    pub timeout: Option<HumanDuration>,
    /// Where the connection is made from (see [`Side`]).
    #[serde(default)]
    pub from: Side,
}

/// A value checked against a matcher without touching the probe.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MatchingCheck {
    /// The value.
    pub content: serde_json::Value,
    /// The expectation.
    pub matches: Matcher,
    /// Match the content as text, the way Goss's `as-reader` does: a list is `[a b]`, and a
    /// list of patterns is tried line by line.
    #[serde(default)]
    pub as_reader: bool,
}

/// sshd's effective configuration, as `sshd -T` prints it: lower-case keyword → matcher.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct SshdConfigCheck {
    /// Keyword (lower case, as `sshd -T` prints it) → matcher.
    pub keywords: BTreeMap<String, Matcher>,
}

/// A kernel module, by what is loaded and what `modprobe` would do.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KernelModuleCheck {
    /// The module name (`cramfs`, `usb-storage`).
    pub name: String,
    /// Listed in `/proc/modules`.
    pub loaded: Option<bool>,
    /// `modprobe -n -v` would load it (it exists and its `install` is not `/bin/false` or
    /// `/bin/true`).
    pub loadable: Option<bool>,
    /// A `blacklist NAME` line in modprobe's configuration.
    pub deny_listed: Option<bool>,
    /// False when it is not loaded and either does not exist or is not loadable and deny-listed.
    pub available: Option<bool>,
}

/// Keys of `/etc/login.defs` → matchers (the last uncommented assignment; empty when unset).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct LoginDefsCheck {
    /// Key (as written, `PASS_MAX_DAYS`) → matcher.
    pub keys: BTreeMap<String, Matcher>,
}

/// Files on the probe's local file systems (one `find` pass over every local file system,
/// shared by all checks of this kind), listed by what is wrong with them. Each attribute is
/// the paths found, one per line (the empty string when there are none), against a matcher:
/// `{world-writable: ""}` holds when no file is world-writable.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LocalFilesCheck {
    /// Regular files anyone may write to.
    pub world_writable: Option<Matcher>,
    /// Directories anyone may write to that lack the sticky bit (so anyone may delete or
    /// replace other users' files in them).
    pub world_writable_dirs_without_sticky: Option<Matcher>,
    /// Files and directories whose owner (uid) is no user.
    pub unowned: Option<Matcher>,
    /// Files and directories whose group (gid) is no group.
    pub ungrouped: Option<Matcher>,
}
