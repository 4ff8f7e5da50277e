//! Resource types: for each, the shell script that gathers the facts of many checks in one exec,
//! and the evaluation of each check against those facts.
//!
//! Gathering scripts avoid starting a process per check: one `dpkg-query` answers every package
//! check, one `systemctl show` every service check, one `stat` every file check, one read of
//! `/proc/net` every port check. Their output is parsed here; output that cannot be parsed makes
//! the affected checks errors, never passes.

mod addr;
mod assert;
mod clock;
mod command;
mod dns;
mod file;
mod http;
mod interface;
mod kernel_module;
mod kernel_param;
mod local_files;
mod login_defs;
mod matching;
mod mount;
mod package;
pub(crate) mod port;
mod process;
mod service;
mod sshd_config;
#[cfg(test)]
mod test_support;
mod user;

use std::sync::OnceLock;
use std::time::Duration;

pub(crate) use assert::{Assert, Outcome};

use super::model::*;
use crate::transport::ExecOutput;

/// The resource a check is about.
#[derive(Debug, Clone)]
pub enum Resource {
    Command(CommandCheck),
    Service(ServiceCheck),
    File(Box<FileCheck>),
    Package(PackageCheck),
    Port(PortCheck),
    Http(Box<HttpCheck>),
    User(UserCheck),
    Group(GroupCheck),
    Process(ProcessCheck),
    KernelParam(KernelParamCheck),
    Mount(Box<MountCheck>),
    Interface(InterfaceCheck),
    Dns(DnsCheck),
    Addr(AddrCheck),
    Matching(MatchingCheck),
    Clock(ClockCheck),
    SshdConfig(SshdConfigCheck),
    KernelModule(KernelModuleCheck),
    LoginDefs(LoginDefsCheck),
    LocalFiles(LocalFilesCheck),
    /// Every resource holds (evaluated by the runner from its parts).
    AllOf(Vec<Resource>),
    /// At least one resource holds (evaluated by the runner from its parts).
    AnyOf(Vec<Resource>),
    /// A manual control: nothing to gather; `not-reviewed` unless attested.
    Manual,
}

/// Calls `$f` of the module for the resource kind of the first check with the typed checks.
macro_rules! dispatch {
    ($checks:expr, $none:expr, |$m:ident, $typed:ident| $body:expr) => {{
        let checks: &[&Resource] = $checks;
        macro_rules! typed {
            ($variant:ident, $ty:ty) => {
                checks
                    .iter()
                    .map(|r| match r {
                        Resource::$variant(c) => {
                            let c: &$ty = c;
                            c
                        }
                        _ => unreachable!("a batch holds checks of one kind"),
                    })
                    .collect::<Vec<_>>()
            };
        }
        match checks.first() {
            None => $none,
            Some(Resource::Command(_)) => {
                use command as $m;
                let $typed = typed!(Command, CommandCheck);
                $body
            }
            Some(Resource::Service(_)) => {
                use service as $m;
                let $typed = typed!(Service, ServiceCheck);
                $body
            }
            Some(Resource::File(_)) => {
                use file as $m;
                let $typed = typed!(File, FileCheck);
                $body
            }
            Some(Resource::Package(_)) => {
                use package as $m;
                let $typed = typed!(Package, PackageCheck);
                $body
            }
            Some(Resource::Port(_)) => {
                use port as $m;
                let $typed = typed!(Port, PortCheck);
                $body
            }
            Some(Resource::Http(_)) => {
                use http as $m;
                let $typed = typed!(Http, HttpCheck);
                $body
            }
            Some(Resource::User(_)) => {
                use user as $m;
                let $typed = typed!(User, UserCheck);
                $body
            }
            Some(Resource::Group(_)) => {
                use user::group as $m;
                let $typed = typed!(Group, GroupCheck);
                $body
            }
            Some(Resource::Process(_)) => {
                use process as $m;
                let $typed = typed!(Process, ProcessCheck);
                $body
            }
            Some(Resource::KernelParam(_)) => {
                use kernel_param as $m;
                let $typed = typed!(KernelParam, KernelParamCheck);
                $body
            }
            Some(Resource::Mount(_)) => {
                use mount as $m;
                let $typed = typed!(Mount, MountCheck);
                $body
            }
            Some(Resource::Interface(_)) => {
                use interface as $m;
                let $typed = typed!(Interface, InterfaceCheck);
                $body
            }
            Some(Resource::Dns(_)) => {
                use dns as $m;
                let $typed = typed!(Dns, DnsCheck);
                $body
            }
            Some(Resource::Addr(_)) => {
                use addr as $m;
                let $typed = typed!(Addr, AddrCheck);
                $body
            }
            Some(Resource::Matching(_)) => {
                use matching as $m;
                let $typed = typed!(Matching, MatchingCheck);
                $body
            }
            Some(Resource::Clock(_)) => {
                use clock as $m;
                let $typed = typed!(Clock, ClockCheck);
                $body
            }
            Some(Resource::SshdConfig(_)) => {
                use sshd_config as $m;
                let $typed = typed!(SshdConfig, SshdConfigCheck);
                $body
            }
            Some(Resource::KernelModule(_)) => {
                use kernel_module as $m;
                let $typed = typed!(KernelModule, KernelModuleCheck);
                $body
            }
            Some(Resource::LoginDefs(_)) => {
                use login_defs as $m;
                let $typed = typed!(LoginDefs, LoginDefsCheck);
                $body
            }
            Some(Resource::LocalFiles(_)) => {
                use local_files as $m;
                let $typed = typed!(LocalFiles, LocalFilesCheck);
                $body
            }
            // The runner evaluates composites from their parts and never gathers them.
            Some(Resource::AllOf(_) | Resource::AnyOf(_) | Resource::Manual) => $none,
        }
    }};
}

impl Resource {
    /// Every resource key a check may have.
    pub const KINDS: &'static [&'static str] = &[
        "command",
        "service",
        "file",
        "package",
        "port",
        "http",
        "user",
        "group",
        "process",
        "kernel-param",
        "mount",
        "interface",
        "dns",
        "addr",
        "matching",
        "clock",
        "sshd-config",
        "kernel-module",
        "login-defs",
        "local-files",
    ];

    /// The resource key (`command`, `service`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Command(_) => "command",
            Resource::Service(_) => "service",
            Resource::File(_) => "file",
            Resource::Package(_) => "package",
            Resource::Port(_) => "port",
            Resource::Http(_) => "http",
            Resource::User(_) => "user",
            Resource::Group(_) => "group",
            Resource::Process(_) => "process",
            Resource::KernelParam(_) => "kernel-param",
            Resource::Mount(_) => "mount",
            Resource::Interface(_) => "interface",
            Resource::Dns(_) => "dns",
            Resource::Addr(_) => "addr",
            Resource::Matching(_) => "matching",
            Resource::Clock(_) => "clock",
            Resource::SshdConfig(_) => "sshd-config",
            Resource::KernelModule(_) => "kernel-module",
            Resource::LoginDefs(_) => "login-defs",
            Resource::LocalFiles(_) => "local-files",
            Resource::AllOf(_) => "all-of",
            Resource::AnyOf(_) => "any-of",
            Resource::Manual => "manual",
        }
    }

    /// Checks what serde cannot: names and paths that would break a gathering script.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let name = |what: &str, n: &str| {
            if n.is_empty()
                || n.starts_with('-')
                || n.contains(|c: char| c.is_whitespace() || c == '/')
            {
                Err(format!("`{n}` is not a valid {what}"))
            } else {
                Ok(())
            }
        };
        match self {
            Resource::Command(c) if c.run.trim().is_empty() => {
                Err("`command.run` cannot be empty".into())
            }
            Resource::Service(s) => service::validate(s),
            Resource::File(f) => file::validate(f),
            Resource::Package(p) => package::validate(p),
            Resource::Http(h) => http::validate(h),
            Resource::User(u) => name("user name", &u.name),
            Resource::Group(g) => name("group name", &g.name),
            Resource::Process(p) => name("process name", &p.comm),
            Resource::Interface(i) => name("interface name", &i.name),
            Resource::Mount(m) if !m.path.starts_with('/') || m.path.contains('\n') => {
                Err(format!("`{}` is not an absolute mount point", m.path))
            }
            Resource::Dns(d) => dns::validate(d),
            Resource::Addr(a) => addr::validate(a),
            Resource::KernelParam(k) if k.value.is_none() && k.persisted.is_none() => Err(format!(
                "kernel-param `{}` needs `value`, `persisted` or both",
                k.name
            )),
            Resource::KernelParam(k) => name("kernel parameter", &k.name),
            Resource::SshdConfig(c) => sshd_config::validate(c),
            Resource::KernelModule(m) => name("kernel module name", &m.name),
            Resource::LoginDefs(l) => login_defs::validate(l),
            Resource::LocalFiles(l) => local_files::validate(l),
            _ => Ok(()),
        }
    }

    /// Checks with the same key are gathered together in one exec; `None`: one exec each.
    pub(crate) fn batch_key(&self) -> Option<&'static str> {
        match self {
            Resource::Command(_) | Resource::Http(_) | Resource::Matching(_) => None,
            Resource::AllOf(_) | Resource::AnyOf(_) | Resource::Manual => None,
            Resource::Addr(a) if a.from == Side::Runner => None,
            other => Some(other.kind()),
        }
    }

    /// Whether this resource is gathered in one exec with `other`: resources of one batched
    /// kind, and commands with the same command line (run once, each check evaluated
    /// against that one run).
    pub(crate) fn gathered_with(&self, other: &Resource) -> bool {
        match (self, other) {
            (Resource::Command(a), Resource::Command(b)) => a.run == b.run,
            _ => self.batch_key().is_some() && self.batch_key() == other.batch_key(),
        }
    }

    /// Like [`Resource::gathered_with`], and commands with each other too: checks tried only
    /// once run several command lines in one exec, one after the other (see
    /// [`COMMANDS_PER_EXEC`]).
    pub(crate) fn batches_with(&self, other: &Resource) -> bool {
        matches!((self, other), (Resource::Command(_), Resource::Command(_)))
            || self.gathered_with(other)
    }

    /// Whether the check is evaluated on the runner itself, without an exec on the probe.
    pub(crate) fn on_runner(&self) -> bool {
        match self {
            Resource::Http(h) => h.from == Side::Runner,
            Resource::Addr(a) => a.from == Side::Runner,
            Resource::Matching(_) => true,
            _ => false,
        }
    }
}

/// Most command lines run one after the other in one exec. Each exec costs a channel, a
/// shell and, on a probe reached as another user, sudo (under emulation a third of a second
/// or more); a few execs in parallel keep the probe's processors busy.
pub(crate) const COMMANDS_PER_EXEC: usize = 8;

/// Most bytes of command lines in one exec. An SSH exec request carries the whole script in
/// one packet (libssh2 refuses one much over 32 KiB), and on a probe reached through sudo the
/// script is quoted once more.
pub(crate) const COMMAND_BYTES_PER_EXEC: usize = 16 * 1024;

/// What a command line adds to a batch's script, quoted as for sudo, with its markers.
pub(crate) fn command_bytes(r: &Resource) -> usize {
    match r {
        Resource::Command(c) => {
            crate::transport::shell_quote(&crate::transport::shell_quote(&c.run)).len() + 256
        }
        _ => 0,
    }
}

/// Whether `checks` are several command lines run one after the other in one exec.
pub(crate) fn is_command_batch(checks: &[&Resource]) -> bool {
    commands_only(checks).is_some_and(|typed| command::is_batch(&typed))
}

/// `checks` as command checks, when every one of them is one.
fn commands_only<'a>(checks: &[&'a Resource]) -> Option<Vec<&'a CommandCheck>> {
    checks
        .iter()
        .map(|r| match r {
            Resource::Command(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// The outcomes of a batch of commands whose exec failed part way with `why`, from the
/// standard output it printed before: finished commands are judged, the others are errors.
pub(crate) fn evaluate_cut(checks: &[&Resource], stdout: &str, why: &str) -> Vec<Outcome> {
    match commands_only(checks) {
        Some(typed) => command::evaluate_cut(&typed, stdout, why),
        None => checks.iter().map(|_| Outcome::error(why, stdout)).collect(),
    }
}

/// The script gathering the facts for `checks`, which are all of one kind, within `timeout`.
/// How long starting perl (for `addr` to a Unix socket or from a local address) may take on
/// top of the connection timeout.
pub(crate) fn addr_perl_start() -> Duration {
    addr::PERL_START
}

pub(crate) fn script(checks: &[&Resource], timeout: Duration) -> String {
    dispatch!(checks, String::from("true"), |m, typed| m::script(
        &typed, timeout
    ))
}

/// Whether `raw` parses as an HTTP response (for the fuzz tests of the parser).
#[cfg(test)]
pub(crate) fn parses_as_http_response(raw: &[u8]) -> bool {
    http::parses_as_response(raw)
}

/// Evaluates each of `checks` (all of one kind) against the output of [`script`].
pub(crate) fn evaluate(checks: &[&Resource], out: &ExecOutput) -> Vec<Outcome> {
    if let Some(r @ (Resource::AllOf(_) | Resource::AnyOf(_) | Resource::Manual)) = checks.first() {
        let msg = format!("a {} check is evaluated from its parts", r.kind());
        return checks.iter().map(|_| Outcome::error(&msg, "")).collect();
    }
    let outcomes = dispatch!(checks, Vec::new(), |m, typed| m::evaluate(&typed, out));
    debug_assert_eq!(outcomes.len(), checks.len());
    outcomes
}

/// Evaluates a check made from the runner (see [`Resource::on_runner`]).
pub(crate) fn evaluate_on_runner(
    r: &Resource,
    view: Option<&RunnerView>,
    timeout: Duration,
) -> Outcome {
    match r {
        Resource::Http(h) => http::request_from_runner(h, view, timeout),
        Resource::Addr(a) => addr::connect_from_runner(a, view),
        Resource::Matching(m) => matching::evaluate_one(m),
        other => Outcome::error(
            &format!("a {} check cannot run on the runner", other.kind()),
            "",
        ),
    }
}

/// How the runner reaches the probe, for checks made `from: runner`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunnerView {
    /// The probe's address as the runner reaches it (`127.0.0.1` for local forwards).
    pub host: String,
    /// Probe port → the port the runner uses for it (forwarded ports); unlisted ports are the same.
    pub ports: std::collections::BTreeMap<u16, u16>,
}

impl RunnerView {
    /// Maps `host:port` as written in a check (`probe` standing for the probe) to what the runner
    /// dials.
    pub fn map(&self, host: &str, port: u16) -> (String, u16) {
        if host == "probe" {
            (
                self.host.clone(),
                self.ports.get(&port).copied().unwrap_or(port),
            )
        } else {
            (host.to_string(), port)
        }
    }
}

/// A marker that separates sections of gathered output; random enough that no file contains it.
pub(crate) fn marker() -> &'static str {
    static MARKER: OnceLock<String> = OnceLock::new();
    MARKER.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("@@bakery-{:x}{:x}@@", nanos, std::process::id())
    })
}

/// Quotes every word for the shell and joins them with spaces.
pub(crate) fn quote_all<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    words
        .into_iter()
        .map(crate::transport::shell_quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sorted, de-duplicated list of `items`, for one query naming each thing once.
pub(crate) fn unique<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = items.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// An error outcome for every check, when the gathering failed as a whole.
/// The outcome of a check that matches named settings (`keyword -> matcher`) against the
/// values `lookup` finds, the empty string for one that is not set; the output lists them.
pub(crate) fn assert_settings<'a>(
    what: &str,
    settings: impl IntoIterator<Item = (&'a String, &'a super::Matcher)>,
    lookup: impl Fn(&str) -> String,
) -> Outcome {
    let mut a = Assert::new(what);
    let mut shown = Vec::new();
    for (k, m) in settings {
        let v = lookup(k);
        shown.push(format!("{k} {v}"));
        a.matcher(k, m, &serde_json::Value::from(v));
    }
    a.finish(shown.join("\n"))
}

pub(crate) fn all_errors(n: usize, message: &str, out: &ExecOutput) -> Vec<Outcome> {
    let output = format!(
        "exit status {}\n{}{}",
        out.exit_code, out.stdout, out.stderr
    );
    (0..n).map(|_| Outcome::error(message, &output)).collect()
}

/// The error for a tool the probe does not have, or `None` when the command ran.
pub(crate) fn missing_tool(out: &ExecOutput, tool: &str) -> Option<String> {
    let said = |what: &str| out.stderr.contains(&format!("{tool}: {what}"));
    (out.exit_code == 127 || said("not found") || said("command not found")).then(|| {
        format!(
            "`{tool}` is not available on the probe: {}",
            out.stderr.trim()
        )
    })
}

/// A shell line printing a section header: a line with the marker, `kind` and `arg`.
pub(crate) fn section(kind: &str, arg: &str) -> String {
    format!(
        "printf '\\n%s %s %s\\n' '{}' {} {}\n",
        marker(),
        kind,
        crate::transport::shell_quote(arg)
    )
}

/// The script's closing line; [`sections`] insists on it, so a cut-off output is an error.
pub(crate) fn end_section() -> String {
    section("end", "-")
}

/// What [`end_section`] prints.
pub(crate) fn end_section_text() -> String {
    format!("\n{} end -\n", marker())
}

/// Splits output made with [`section`] into `(kind, arg, body)`; `None` when it did not end.
pub(crate) fn sections(stdout: &str) -> Option<Vec<(&str, &str, &str)>> {
    let sep = format!("\n{} ", marker());
    let mut out = Vec::new();
    for part in stdout.split(&sep).skip(1) {
        let (head, body) = part.split_once('\n').unwrap_or((part, ""));
        let (kind, arg) = head.split_once(' ').unwrap_or((head, ""));
        if kind == "end" {
            return Some(out);
        }
        out.push((kind, arg, body));
    }
    None
}
