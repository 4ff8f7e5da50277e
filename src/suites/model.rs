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
    /// What is checked.
    pub resource: Resource,
}

impl Check {
    /// The title, or the id when there is none.
    pub fn title_or_id(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.id)
    }
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
}

impl TryFrom<RawCheck> for Check {
    type Error = String;

    fn try_from(raw: RawCheck) -> Result<Self, String> {
        let mut found: Vec<Resource> = Vec::new();
        found.extend(raw.command.map(Resource::Command));
        found.extend(raw.service.map(Resource::Service));
        found.extend(raw.file.map(|f| Resource::File(Box::new(f))));
        found.extend(raw.package.map(Resource::Package));
        found.extend(raw.port.map(Resource::Port));
        found.extend(raw.http.map(|h| Resource::Http(Box::new(h))));
        found.extend(raw.user.map(Resource::User));
        found.extend(raw.group.map(Resource::Group));
        found.extend(raw.process.map(Resource::Process));
        found.extend(raw.kernel_param.map(Resource::KernelParam));
        found.extend(raw.mount.map(|m| Resource::Mount(Box::new(m))));
        found.extend(raw.interface.map(Resource::Interface));
        found.extend(raw.dns.map(Resource::Dns));
        found.extend(raw.addr.map(Resource::Addr));
        found.extend(raw.matching.map(Resource::Matching));
        found.extend(raw.clock.map(Resource::Clock));
        if found.len() != 1 {
            let names: Vec<_> = found.iter().map(|r| format!("`{}`", r.kind())).collect();
            return Err(format!(
                "check `{}` must have exactly one resource key, found {}; accepted: {}",
                raw.id,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                },
                Resource::KINDS.join(", ")
            ));
        }
        if raw.id.trim().is_empty() {
            return Err("a check `id` cannot be empty".into());
        }
        let resource = found.pop().expect("one resource");
        resource
            .validate()
            .map_err(|e| format!("check `{}`: {e}", raw.id))?;
        Ok(Check {
            id: raw.id,
            title: raw.title,
            tags: raw.tags,
            skip: raw.skip,
            timeout: raw.timeout,
            retry: raw.retry,
            eventually: raw.eventually,
            meta: raw.meta,
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
    /// Whether the unit is active.
    pub running: Option<bool>,
    /// Whether the unit is enabled (`systemctl is-enabled` semantics: static units count).
    pub enabled: Option<bool>,
}

/// A path on the probe. Symbolic links are not followed (use `linked-to`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileCheck {
    /// An absolute path.
    pub path: String,
    /// Whether the path exists (default true).
    pub exists: Option<bool>,
    /// Permission bits in octal, e.g. `"0644"`.
    pub mode: Option<Matcher>,
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
    /// Whether it is installed (default true).
    pub installed: Option<bool>,
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
    /// Whether something listens (default true).
    pub listening: Option<bool>,
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
    /// Whether the account exists (default true).
    pub exists: Option<bool>,
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
    /// Whether the group exists (default true).
    pub exists: Option<bool>,
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
    /// Whether at least one runs (default true).
    pub running: Option<bool>,
    /// How many run, e.g. `{ge: 2}`.
    pub count: Option<Matcher>,
}

/// A kernel parameter, read from `/proc/sys`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KernelParamCheck {
    /// The sysctl name, e.g. `net.ipv4.ip_forward`.
    pub name: String,
    /// The expected value.
    pub value: Matcher,
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
    /// Whether something is mounted there (default true).
    pub exists: Option<bool>,
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
    /// Whether it exists (default true).
    pub exists: Option<bool>,
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
    /// Whether the name resolves (default true).
    pub resolvable: Option<bool>,
    /// The answers, e.g. `{contains: "127.0.0.1"}`.
    pub addrs: Option<Matcher>,
    /// Ask this server (`host` or `host:port`) with `dig` instead of the system resolver.
    pub server: Option<String>,
}

/// A TCP or UDP address that must (or must not) accept connections.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AddrCheck {
    /// `tcp://host:port`, `udp://host:port` or `host:port` (TCP).
    pub address: String,
    /// Whether a connection succeeds (default true).
    pub reachable: Option<bool>,
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
}
