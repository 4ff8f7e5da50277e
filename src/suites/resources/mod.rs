//! Resource types: for each, the shell script that gathers the facts of many checks in one exec,
//! and the evaluation of each check against those facts.
//!
//! Gathering scripts avoid starting a process per check: one `dpkg-query` answers every package
//! check, one `systemctl show` every service check, one `stat` every file check, one read of
//! `/proc/net` every port check. Their output is parsed here; output that cannot be parsed makes
//! the affected checks errors, never passes.

mod assert;
mod command;
mod file;
mod http;
mod package;
mod port;
mod service;

use std::sync::OnceLock;
use std::time::Duration;

pub(crate) use assert::{Assert, Outcome};

use super::model::{CommandCheck, FileCheck, HttpCheck, PackageCheck, PortCheck, ServiceCheck};
use crate::transport::ExecOutput;

/// The resource a check is about.
#[derive(Debug, Clone)]
pub enum Resource {
    Command(CommandCheck),
    Service(ServiceCheck),
    File(Box<FileCheck>),
    Package(PackageCheck),
    Port(PortCheck),
    Http(HttpCheck),
}

impl Resource {
    /// Every resource key a check may have.
    pub const KINDS: &'static [&'static str] =
        &["command", "service", "file", "package", "port", "http"];

    /// The resource key (`command`, `service`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Command(_) => "command",
            Resource::Service(_) => "service",
            Resource::File(_) => "file",
            Resource::Package(_) => "package",
            Resource::Port(_) => "port",
            Resource::Http(_) => "http",
        }
    }

    /// Checks what serde cannot: names and paths that would break a gathering script.
    pub(crate) fn validate(&self) -> Result<(), String> {
        match self {
            Resource::Command(c) if c.run.trim().is_empty() => {
                Err("`command.run` cannot be empty".into())
            }
            Resource::Service(s) => service::validate(s),
            Resource::File(f) => file::validate(f),
            Resource::Package(p) => package::validate(p),
            Resource::Http(h) => http::validate(h),
            _ => Ok(()),
        }
    }

    /// Whether checks of this kind share one exec (commands and HTTP requests do not).
    pub(crate) fn batched(&self) -> bool {
        !matches!(self, Resource::Command(_) | Resource::Http(_))
    }
}

/// The script gathering the facts for `checks`, which are all of one kind, within `timeout`.
pub(crate) fn script(checks: &[&Resource], timeout: Duration) -> String {
    match checks.first() {
        Some(Resource::Command(_)) => command::script(&pick(checks, as_command)),
        Some(Resource::Service(_)) => service::script(&pick(checks, as_service)),
        Some(Resource::File(_)) => file::script(&pick(checks, as_file)),
        Some(Resource::Package(_)) => package::script(&pick(checks, as_package)),
        Some(Resource::Port(_)) => port::script(&pick(checks, as_port)),
        Some(Resource::Http(_)) => http::script(&pick(checks, as_http), timeout),
        None => String::from("true"),
    }
}

/// Evaluates each of `checks` (all of one kind) against the output of [`script`].
pub(crate) fn evaluate(checks: &[&Resource], out: &ExecOutput) -> Vec<Outcome> {
    let outcomes = match checks.first() {
        Some(Resource::Command(_)) => command::evaluate(&pick(checks, as_command), out),
        Some(Resource::Service(_)) => service::evaluate(&pick(checks, as_service), out),
        Some(Resource::File(_)) => file::evaluate(&pick(checks, as_file), out),
        Some(Resource::Package(_)) => package::evaluate(&pick(checks, as_package), out),
        Some(Resource::Port(_)) => port::evaluate(&pick(checks, as_port), out),
        Some(Resource::Http(_)) => http::evaluate(&pick(checks, as_http), out),
        None => Vec::new(),
    };
    debug_assert_eq!(outcomes.len(), checks.len());
    outcomes
}

fn pick<'a, T>(checks: &[&'a Resource], f: fn(&'a Resource) -> Option<&'a T>) -> Vec<&'a T> {
    checks
        .iter()
        .map(|r| f(r).expect("a batch holds checks of one kind"))
        .collect()
}

fn as_command(r: &Resource) -> Option<&CommandCheck> {
    match r {
        Resource::Command(c) => Some(c),
        _ => None,
    }
}
fn as_service(r: &Resource) -> Option<&ServiceCheck> {
    match r {
        Resource::Service(c) => Some(c),
        _ => None,
    }
}
fn as_file(r: &Resource) -> Option<&FileCheck> {
    match r {
        Resource::File(c) => Some(&**c),
        _ => None,
    }
}
fn as_package(r: &Resource) -> Option<&PackageCheck> {
    match r {
        Resource::Package(c) => Some(c),
        _ => None,
    }
}
fn as_port(r: &Resource) -> Option<&PortCheck> {
    match r {
        Resource::Port(c) => Some(c),
        _ => None,
    }
}
fn as_http(r: &Resource) -> Option<&HttpCheck> {
    match r {
        Resource::Http(c) => Some(c),
        _ => None,
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
pub(crate) fn all_errors(n: usize, message: &str, out: &ExecOutput) -> Vec<Outcome> {
    let output = format!(
        "exit status {}\n{}{}",
        out.exit_code, out.stdout, out.stderr
    );
    (0..n).map(|_| Outcome::error(message, &output)).collect()
}

/// The error for a tool the probe does not have, or `None` when the command ran.
pub(crate) fn missing_tool(out: &ExecOutput, tool: &str) -> Option<String> {
    (out.exit_code == 127 || out.stderr.contains(&format!("{tool}: not found"))).then(|| {
        format!(
            "`{tool}` is not available on the probe: {}",
            out.stderr.trim()
        )
    })
}
