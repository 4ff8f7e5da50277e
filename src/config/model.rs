//! The pipeline file (`bakery.yml`): what to bake, how to verify it, where to promote it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use super::duration::HumanDuration;
use super::promote::Promote;

/// A whole pipeline file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Where instances and images live: `local` (QEMU on this machine, the default) or `aws`.
    #[serde(default)]
    pub provider: ProviderKind,
    /// The foundation image the builder starts from.
    pub source: Source,
    /// The builder instance and the provisioners that run on it.
    #[serde(default)]
    pub build: Build,
    /// Name and tags of the baked image.
    pub image: ImageSpec,
    /// The suites the probe instance must pass.
    #[serde(default)]
    pub verify: Verify,
    /// Where a verified image is published. Without it, a verified image is only tagged.
    #[serde(default)]
    pub promote: Option<Promote>,
    /// Settings of the `aws` provider (ignored by `local`).
    #[serde(default)]
    pub aws: Option<AwsSettings>,
}

/// The provider that runs instances and stores images.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// QEMU virtual machines on this machine; qcow2 images in a local store.
    #[default]
    Local,
    /// Amazon EC2.
    Aws,
}

/// The image a builder starts from.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(try_from = "SourceKeys")]
pub enum Source {
    /// A base image of the local store, bootstrapped on first use (`debian-12`).
    Local(String),
    /// An existing qcow2 or raw disk image, such as a Debian or Ubuntu genericcloud image.
    File(PathBuf),
    /// An image id (`ami-…`) of the provider's store.
    Image(String),
    /// (aws) An SSM parameter naming an image, such as
    /// `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64`.
    SsmParameter(String),
    /// (aws) The newest image matching a name pattern, owners and architecture.
    Filter(ImageFilter),
}

impl Source {
    /// The key this source was written with (`local`, `file`, `image`, `ssm_parameter`, `filter`).
    pub fn key(&self) -> &'static str {
        match self {
            Source::Local(_) => "local",
            Source::File(_) => "file",
            Source::Image(_) => "image",
            Source::SsmParameter(_) => "ssm_parameter",
            Source::Filter(_) => "filter",
        }
    }
}

/// `source.filter`: the newest available image matching all of these.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageFilter {
    /// Image name pattern; `*` and `?` are wildcards (`al2023-ami-2023.*-x86_64`).
    pub name: String,
    /// Account ids or aliases (`amazon`, `self`) that may own the image.
    pub owners: Vec<String>,
    /// `x86_64` (default) or `arm64`.
    #[serde(default = "default_architecture")]
    pub architecture: String,
}

fn default_architecture() -> String {
    "x86_64".into()
}

/// `source` as written: exactly one of the keys.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceKeys {
    /// A base image of the local store, bootstrapped on first use (`debian-12`).
    local: Option<String>,
    /// An existing qcow2 or raw disk image, such as a Debian or Ubuntu genericcloud image.
    file: Option<PathBuf>,
    /// An image id (`ami-…`) of the provider's store.
    image: Option<String>,
    /// (aws) An SSM parameter naming an image.
    ssm_parameter: Option<String>,
    /// (aws) The newest image matching a name pattern, owners and architecture.
    filter: Option<ImageFilter>,
}

impl TryFrom<SourceKeys> for Source {
    type Error = String;
    fn try_from(k: SourceKeys) -> Result<Self, String> {
        let mut found: Vec<Source> = Vec::new();
        found.extend(k.local.map(Source::Local));
        found.extend(k.file.map(Source::File));
        found.extend(k.image.map(Source::Image));
        found.extend(k.ssm_parameter.map(Source::SsmParameter));
        found.extend(k.filter.map(Source::Filter));
        match found.len() {
            1 => Ok(found.remove(0)),
            n => Err(format!(
                "needs exactly one of `local`, `file` or `image` (with `provider: aws`: `image`, `ssm_parameter` or `filter`), found {n}"
            )),
        }
    }
}

/// The builder instance.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// The builder instance's resources and access.
    #[serde(default)]
    pub instance: InstanceSettings,
    /// Steps run on the builder, in order.
    #[serde(default)]
    pub provisioners: Vec<Provisioner>,
}

/// Size and access of a builder or probe instance.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceSettings {
    /// Virtual CPUs.
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    /// Memory in MiB.
    #[serde(default = "default_memory")]
    pub memory_mb: u32,
    /// The user Bakery logs in as.
    #[serde(default = "default_ssh_user")]
    pub ssh_user: String,
    /// How long to wait for the instance to answer on SSH.
    #[serde(default = "default_boot_timeout")]
    pub boot_timeout: HumanDuration,
    /// Guest ports the local provider forwards to free 127.0.0.1 ports, so that checks made
    /// `from: runner` reach them (the SSH port is always forwarded).
    #[serde(default)]
    pub forward_ports: Vec<u16>,
}

fn default_cpus() -> u32 {
    2
}
fn default_memory() -> u32 {
    1024
}
fn default_ssh_user() -> String {
    "root".into()
}
fn default_boot_timeout() -> HumanDuration {
    HumanDuration::secs(300)
}

impl Default for InstanceSettings {
    fn default() -> Self {
        InstanceSettings {
            cpus: default_cpus(),
            memory_mb: default_memory(),
            ssh_user: default_ssh_user(),
            boot_timeout: default_boot_timeout(),
            forward_ports: Vec::new(),
        }
    }
}

/// One provisioning step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(try_from = "ProvisionerKeys")]
pub enum Provisioner {
    /// Run shell commands on the builder.
    Shell(ShellStep),
    /// Upload a file or a directory to the builder.
    File(FileStep),
    /// Run an Ansible playbook against the builder, from this machine over SSH.
    Ansible(Box<AnsibleStep>),
    /// Reboot the builder and wait until it answers again.
    Reboot(RebootStep),
}

impl Provisioner {
    /// The key this step was written with.
    pub fn key(&self) -> &'static str {
        match self {
            Provisioner::Shell(_) => "shell",
            Provisioner::File(_) => "file",
            Provisioner::Ansible(_) => "ansible",
            Provisioner::Reboot(_) => "reboot",
        }
    }
}

/// A provisioning step as written: exactly one of the keys.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionerKeys {
    /// Run shell commands on the builder.
    shell: Option<ShellStep>,
    /// Upload a file or a directory to the builder.
    file: Option<FileStep>,
    /// Run an Ansible playbook against the builder, from this machine over SSH.
    ansible: Option<AnsibleStep>,
    /// Reboot the builder and wait until it answers again (`reboot: {}`).
    reboot: Option<RebootStep>,
}

impl TryFrom<ProvisionerKeys> for Provisioner {
    type Error = String;
    fn try_from(k: ProvisionerKeys) -> Result<Self, String> {
        let mut found: Vec<Provisioner> = Vec::new();
        found.extend(k.shell.map(Provisioner::Shell));
        found.extend(k.file.map(Provisioner::File));
        found.extend(k.ansible.map(|a| Provisioner::Ansible(Box::new(a))));
        found.extend(k.reboot.map(Provisioner::Reboot));
        match found.len() {
            1 => Ok(found.remove(0)),
            _ => Err(
                "a provisioner needs exactly one of `shell`, `file`, `ansible` or `reboot`".into(),
            ),
        }
    }
}

/// A shell provisioner: `inline` commands or a `script` file, run with `sh -e`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShellStep {
    /// Commands, run in order in one shell; the first failure stops the step.
    #[serde(default)]
    pub inline: Vec<String>,
    /// A script on this machine, relative to the pipeline file.
    #[serde(default)]
    pub script: Option<PathBuf>,
    /// Environment variables for the commands.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// How long the step may run.
    #[serde(default = "default_step_timeout")]
    pub timeout: HumanDuration,
    /// The commands may reboot the builder (`reboot`, `shutdown -r now`): a dropped connection
    /// is then no failure, and Bakery waits for the builder to boot again and answer (with the
    /// same host key) before the next step. A step that ends without rebooting is fine too.
    #[serde(default)]
    pub expect_disconnect: bool,
    /// With `expect_disconnect`: how long the builder may take to shut down, boot and answer.
    #[serde(default = "default_reboot_timeout")]
    pub reboot_timeout: HumanDuration,
}

/// `reboot: {}`: a clean reboot of the builder.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RebootStep {
    /// How long the builder may take to shut down, boot and answer again.
    #[serde(default = "default_reboot_timeout")]
    pub timeout: HumanDuration,
}

fn default_reboot_timeout() -> HumanDuration {
    HumanDuration::secs(600)
}

/// An Ansible provisioner: `ansible-playbook` runs on this machine against the builder, over
/// SSH with the run's key (held in an ssh-agent, never in a file) and the builder's verified
/// host key (host key checking stays on).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnsibleStep {
    /// The playbook, relative to the pipeline file.
    pub playbook: PathBuf,
    /// Variables for the play (`--extra-vars`), any YAML values.
    #[serde(default)]
    pub extra_vars: BTreeMap<String, serde_json::Value>,
    /// Inventory groups the builder belongs to besides `all` (the host itself is `builder`).
    #[serde(default)]
    pub groups: Vec<String>,
    /// The user Ansible logs in as; `build.instance.ssh_user` when absent. Another user gets
    /// the run's key authorised for this step only (the account must exist on the builder).
    #[serde(default)]
    pub user: Option<String>,
    /// Run the tasks with privilege escalation (`--become`, sudo).
    #[serde(default)]
    pub r#become: bool,
    /// The user `become` switches to (`root` when absent).
    #[serde(default)]
    pub become_user: Option<String>,
    /// A requirements file (`roles:` and `collections:`), relative to the pipeline file,
    /// installed with `ansible-galaxy` for this step only. Local sources (`type: dir`, a
    /// tarball, `git+file://`) keep the bake independent of Ansible Galaxy.
    #[serde(default)]
    pub requirements: Option<PathBuf>,
    /// More arguments for `ansible-playbook` (`--tags`, `-v`, `--diff`).
    #[serde(default)]
    pub extra_arguments: Vec<String>,
    /// Environment variables for `ansible-playbook` on this machine (`ANSIBLE_*` settings).
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// How long the playbook may run.
    #[serde(default = "default_step_timeout")]
    pub timeout: HumanDuration,
}

fn default_step_timeout() -> HumanDuration {
    HumanDuration::secs(1800)
}

/// A file provisioner.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileStep {
    /// A file or directory on this machine, relative to the pipeline file.
    pub source: PathBuf,
    /// Where it goes on the builder (a directory's contents are copied into it).
    pub destination: String,
}

/// The baked image's name and tags.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Name template; `{{git.sha}}`, `{{git.short_sha}}`, `{{timestamp}}` and `{{run_id}}` are
    /// replaced.
    pub name: String,
    /// Tags put on the image (values are templates too).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// The verify stage.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// Suite files, relative to the pipeline file: a path, or `goss: path` for a Goss file.
    #[serde(default = "default_suites")]
    pub suites: Vec<SuiteRef>,
    /// The probe instance (the probe group `main`).
    #[serde(default)]
    pub probe: InstanceSettings,
    /// More probe groups, by name, each with its own settings: a suite file names its group
    /// with `probe: NAME` (without one it runs on `main`). Every group that a suite names gets
    /// its own probe; the probes are launched and tested in parallel.
    #[serde(default)]
    pub probes: BTreeMap<String, InstanceSettings>,
    /// Where the JUnit XML goes, relative to the pipeline file.
    #[serde(default = "default_junit")]
    pub junit: PathBuf,
    /// How many checks run at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

fn default_suites() -> Vec<SuiteRef> {
    vec![SuiteRef::Builtin {
        builtin: "smoke".into(),
        variables: serde_json::Map::new(),
        probe: None,
    }]
}

/// One entry of `verify.suites`.
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum SuiteRef {
    /// A Bakery suite file (a Goss file is recognised too).
    Bakery(PathBuf),
    /// A Goss file, run with Goss's semantics.
    Goss {
        /// The Goss file.
        goss: PathBuf,
        /// Goss vars files for its templates (`.Vars`), relative to the pipeline file: one path
        /// or a list, merged in order.
        #[serde(default)]
        #[schemars(with = "Option<Vec<PathBuf>>")]
        vars: Vec<PathBuf>,
        /// Inline Goss vars (a mapping); its keys replace those of the vars files.
        #[serde(default, rename = "vars-inline")]
        vars_inline: Option<serde_json::Map<String, serde_json::Value>>,
    },
    /// A suite built into Bakery: `smoke`, `chaos-systemd`.
    Builtin {
        /// The built-in suite's name (`bakery suites` lists them).
        builtin: String,
        /// Values for the suite's variables (`bakery suites show NAME` lists them with their
        /// defaults), e.g. the services whose recovery `chaos-systemd` proves.
        #[serde(default)]
        variables: serde_json::Map<String, serde_json::Value>,
        /// The probe group the suite runs on, instead of the one the suite names.
        #[serde(default)]
        probe: Option<String>,
    },
    /// A built-in CIS benchmark with the pipeline's tailoring.
    Cis {
        /// The benchmark, profile and tailoring.
        cis: CisRef,
    },
}

/// One path or a list of paths.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<PathBuf> {
        match self {
            OneOrMany::One(p) => vec![p],
            OneOrMany::Many(v) => v,
        }
    }
}

impl SuiteRef {
    /// The file, as written, for entries that name one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            SuiteRef::Bakery(p) | SuiteRef::Goss { goss: p, .. } => Some(p),
            SuiteRef::Builtin { .. } | SuiteRef::Cis { .. } => None,
        }
    }
}

impl<'de> Deserialize<'de> for SuiteRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, MapAccess, Visitor};
        struct V;
        const KEYS: &[&str] = &["goss", "builtin", "cis"];
        impl<'de> Visitor<'de> for V {
            type Value = SuiteRef;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a suite file path, `goss: path` for a Goss file, `builtin: name` or \
                     `cis: {benchmark: ...}`",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SuiteRef, E> {
                Ok(SuiteRef::Bakery(PathBuf::from(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SuiteRef, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(
                        "an empty mapping; write `goss: path`, `builtin: name` or `cis: {...}`",
                    ));
                };
                let r = match key.as_str() {
                    // A Goss entry may carry its template vars: `vars` and `vars-inline`.
                    "goss" | "vars" | "vars-inline" => {
                        let (mut goss, mut vars, mut vars_inline) = (None, Vec::new(), None);
                        let mut key = Some(key);
                        while let Some(k) = key {
                            match k.as_str() {
                                "goss" => goss = Some(map.next_value::<PathBuf>()?),
                                "vars" => vars = map.next_value::<OneOrMany>()?.into_vec(),
                                "vars-inline" => vars_inline = Some(map.next_value()?),
                                other => {
                                    return Err(de::Error::unknown_field(
                                        other,
                                        &["goss", "vars", "vars-inline"],
                                    ))
                                }
                            }
                            key = map.next_key::<String>()?;
                        }
                        let goss = goss.ok_or_else(|| {
                            de::Error::custom("`vars` and `vars-inline` belong to a `goss: path` entry, which has no `goss` here")
                        })?;
                        return Ok(SuiteRef::Goss {
                            goss,
                            vars,
                            vars_inline,
                        });
                    }
                    // A built-in entry may carry its variables and its probe group.
                    "builtin" | "variables" | "probe" => {
                        const FIELDS: &[&str] = &["builtin", "variables", "probe"];
                        let (mut builtin, mut variables, mut probe) = (None, None, None);
                        let mut key = Some(key);
                        while let Some(k) = key {
                            match k.as_str() {
                                "builtin" => builtin = Some(map.next_value::<String>()?),
                                "variables" => variables = Some(map.next_value()?),
                                "probe" => probe = Some(map.next_value::<String>()?),
                                other => return Err(de::Error::unknown_field(other, FIELDS)),
                            }
                            key = map.next_key::<String>()?;
                        }
                        let builtin = builtin.ok_or_else(|| {
                            de::Error::custom("`variables` and `probe` belong to a `builtin: name` entry, which has no `builtin` here")
                        })?;
                        return Ok(SuiteRef::Builtin {
                            builtin,
                            variables: variables.unwrap_or_default(),
                            probe,
                        });
                    }
                    "cis" => SuiteRef::Cis {
                        cis: map.next_value()?,
                    },
                    other => return Err(de::Error::unknown_field(other, KEYS)),
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!(
                        "a suite entry has one key; `{extra}` is one too many (write each suite \
                         as its own list item)"
                    )));
                }
                Ok(r)
            }
        }
        d.deserialize_any(V)
    }
}

/// A CIS suite entry of a pipeline: `- cis: {benchmark: debian-12, ...}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CisRef {
    /// The benchmark (`debian-12`); `bakery suites` lists those built in.
    pub benchmark: String,
    /// `level-1-server` (default), `level-2-server`, `level-1-workstation` or
    /// `level-2-workstation`; a level 2 profile includes level 1.
    #[serde(default = "default_profile")]
    pub profile: String,
    /// Tailoring: values for the benchmark's variables (`bakery suites show cis-debian-12`
    /// lists them with their defaults).
    #[serde(default)]
    pub variables: BTreeMap<String, serde_json::Value>,
    /// Controls left out: a control id (`"1.1.2.3.2"`) or a section (`"1.1.2"`, every control
    /// under it) → the reason, shown in the reports.
    #[serde(default)]
    pub exclude: BTreeMap<String, String>,
    /// A waivers file (InSpec's shape): `id: {justification, expiration_date, run}`.
    pub waivers: Option<PathBuf>,
    /// An attestations file for manual controls:
    /// `id: {status, justification, evidence_url, expiration_date}`.
    pub attestations: Option<PathBuf>,
    /// Pass the gate when at least this percentage of applicable controls pass (0 to 100),
    /// instead of requiring every applicable, unwaived, automated control to pass.
    pub min_score: Option<f64>,
    /// The probe group the benchmark runs on (`main` by default).
    pub probe: Option<String>,
    /// The suite's name in results and reports: `cis-debian-12` for the default profile,
    /// `cis-debian-12-level-2-server` for another. Two entries of one benchmark and profile
    /// (differently tailored) need a name each.
    pub name: Option<String>,
}

fn default_profile() -> String {
    "level-1-server".to_string()
}

fn default_junit() -> PathBuf {
    PathBuf::from("bakery-results/junit.xml")
}
fn default_concurrency() -> usize {
    4
}

impl Default for Verify {
    fn default() -> Self {
        Verify {
            suites: default_suites(),
            probe: InstanceSettings::default(),
            probes: BTreeMap::new(),
            junit: default_junit(),
            concurrency: default_concurrency(),
        }
    }
}

/// The `aws:` block: how the `aws` provider creates builder and probe instances.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// The region; `--region`, then this, then the SDK's default chain (`AWS_REGION`, profile).
    #[serde(default)]
    pub region: Option<String>,
    /// The EC2 instance type of builder and probe.
    #[serde(default = "default_instance_type")]
    pub instance_type: String,
    /// The subnet to launch into; the default VPC's default subnet when absent.
    #[serde(default)]
    pub subnet: Option<String>,
    /// The address range SSH is allowed from (`203.0.113.7/32`); discovered when absent.
    #[serde(default)]
    pub ssh_cidr: Option<String>,
    /// How Bakery reaches the instances: `ssh` (default) or `ssm` (no inbound rule at all).
    #[serde(default)]
    pub transport: AwsTransport,
    /// The instance profile (name or ARN) the instances get; SSM needs one with
    /// `AmazonSSMManagedInstanceCore`.
    #[serde(default)]
    pub instance_profile: Option<String>,
    /// Launch builder and probe as one-time spot instances.
    #[serde(default)]
    pub spot: bool,
    /// Size of the encrypted gp3 root volume in GiB; the source image's size when absent.
    #[serde(default)]
    pub volume_size_gb: Option<u32>,
    /// Capture the image without stopping the builder first.
    #[serde(default)]
    pub no_reboot: bool,
    /// How long creating the image may take.
    #[serde(default = "default_image_timeout")]
    pub image_timeout: HumanDuration,
    /// How long `bakery:expires` lies after a resource's creation; `bakery cleanup --provider
    /// aws` removes leftovers past it.
    #[serde(default = "default_expires_after")]
    pub expires_after: HumanDuration,
}

fn default_instance_type() -> String {
    "t3.micro".into()
}
fn default_image_timeout() -> HumanDuration {
    HumanDuration::secs(3600)
}
fn default_expires_after() -> HumanDuration {
    HumanDuration::secs(6 * 3600)
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            region: None,
            instance_type: default_instance_type(),
            subnet: None,
            ssh_cidr: None,
            transport: AwsTransport::default(),
            instance_profile: None,
            spot: false,
            volume_size_gb: None,
            no_reboot: false,
            image_timeout: default_image_timeout(),
            expires_after: default_expires_after(),
        }
    }
}

/// How the `aws` provider reaches an instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AwsTransport {
    /// SSH with the run's ed25519 key; the host key comes from the console.
    #[default]
    Ssh,
    /// SSM Run Command (AWS-RunShellScript); needs an instance profile and the SSM agent.
    Ssm,
}
