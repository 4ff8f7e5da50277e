//! Reading Goss files (`goss.yaml`) into a [`Suite`], with Goss's templates (rendered first,
//! with `.Vars` and `.Env`), attribute names, matchers, `title`, `meta`, `skip`,
//! `retry_count`/`retry_delay` and `gossfile` includes (globs in any path component).
//!
//! Supported: `addr`, `command`, `dns`, `file`, `gossfile`, `group`, `http`, `interface`,
//! `kernel-param`, `matching`, `mount`, `package`, `port`, `process`, `service`, `user`, with
//! their documented attributes except the ones in [`UNSUPPORTED`]. As in Goss, top-level keys
//! that are not resource types are ignored (with a warning here), a key repeated in one mapping
//! is an error, and an unknown attribute of a resource is an error. Known differences from
//! Goss: a string expected for command output, contents or a body is compared with the text
//! less its final newline; a `port` of `tcp:22` means IPv4 and `tcp6:22` IPv6, as in Goss.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

pub(crate) mod template;

pub use template::GossVars;
use template::Renderer;

use super::load::yaml_error;
use super::matcher::Matcher;
use super::model::*;
use super::resources::Resource;
use crate::config::HumanDuration;
use crate::error::{Error, IoContext, Result};

/// The top-level keys of a Goss file.
pub const RESOURCE_TYPES: &[&str] = &[
    "addr",
    "command",
    "dns",
    "file",
    "gossfile",
    "group",
    "http",
    "interface",
    "kernel-param",
    "matching",
    "mount",
    "package",
    "port",
    "process",
    "service",
    "user",
];

/// Goss attributes Bakery does not implement; a file using one is refused, naming it.
pub const UNSUPPORTED: &[&str] = &["ca-file", "cert-file", "key-file", "proxy", "runlevels"];

/// Goss's include depth limit.
const MAX_DEPTH: usize = 50;

/// Reads the Goss file at `path` (and the files it includes) as a suite named after the file,
/// rendering templates without vars (`.Env` and the functions still work).
pub fn load_goss(path: &Path) -> Result<Suite> {
    load_goss_with(path, &GossVars::default())
}

/// Reads the Goss file at `path`, rendering it and its includes with `vars`; warnings (keys
/// that Goss ignores) are printed.
pub fn load_goss_with(path: &Path, vars: &GossVars) -> Result<Suite> {
    let (suite, warnings) = read_goss(path, vars)?;
    for w in warnings {
        crate::say!("warning: {w}");
    }
    Ok(suite)
}

/// Reads the Goss file at `path`: the suite and the warnings met on the way.
pub fn read_goss(path: &Path, vars: &GossVars) -> Result<(Suite, Vec<String>)> {
    let renderer = Renderer::new(vars)?;
    let mut checks: Vec<Check> = Vec::new();
    let mut warnings = Vec::new();
    load_into(path, &renderer, &mut checks, &mut warnings, 0)?;
    let suite = Suite {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "goss".into()),
        description: Some(format!("imported from the Goss file {}", path.display())),
        checks,
        experiments: Vec::new(),
        probe: None,
        source: Some(path.to_path_buf()),
        cis: None,
    };
    Ok((suite, warnings))
}

fn load_into(
    path: &Path,
    renderer: &Renderer,
    checks: &mut Vec<Check>,
    warnings: &mut Vec<String>,
    depth: usize,
) -> Result<()> {
    if depth >= MAX_DEPTH {
        return Err(Error::Config(format!(
            "{}: gossfile includes nest {MAX_DEPTH} deep (a cycle?)",
            path.display()
        )));
    }
    let raw = std::fs::read_to_string(path).at("reading", path)?;
    let text = renderer.render(path, &raw)?;
    // Errors past this point are about the rendered text; say so when rendering changed it.
    let rendered = |e: Error| -> Error {
        match e {
            Error::Config(m) if text != raw => {
                Error::Config(format!("{m} (line numbers of the file as rendered)"))
            }
            other => other,
        }
    };
    check_repeated_keys(path, &text).map_err(rendered)?;
    let mut file: GossFile = if text.trim().is_empty() {
        GossFile::default()
    } else {
        let top: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| rendered(goss_error(path, &e)))?;
        match &top {
            serde_yaml::Value::Mapping(m) => {
                for key in m.keys() {
                    let key = key.as_str().map_or_else(|| format!("{key:?}"), str::to_string);
                    if key == "registry" {
                        return Err(rendered(Error::Config(format!(
                            "{}:{}: the Goss resource type `registry` is the Windows registry, which Linux probes do not have",
                            path.display(),
                            key_line(&text, &key).map_or(String::new(), |l| format!("{l}:1"))
                        ))));
                    }
                    if !RESOURCE_TYPES.contains(&key.as_str()) {
                        warnings.push(format!(
                            "{}:{}: `{key}` is not a Goss resource type; Goss ignores it, and so does Bakery (types: {})",
                            path.display(),
                            key_line(&text, &key).map_or(String::new(), |l| format!("{l}:1")),
                            RESOURCE_TYPES.join(", ")
                        ));
                    }
                }
            }
            serde_yaml::Value::Null => {}
            _ => {
                return Err(rendered(Error::Config(format!(
                    "{}:{}:1: a Goss file is a mapping of resource types (file:, package:, ...) to resources",
                    path.display(),
                    text.lines()
                        .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                        .map_or(1, |i| i + 1)
                ))))
            }
        }
        if text.contains("<<:") {
            // YAML merge keys (`<<: *defaults`), which Goss's reader applies; the file is
            // read through a value, so errors name the resource but not the line.
            let mut merged = top;
            merged
                .apply_merge()
                .map_err(|e| rendered(goss_error(path, &e)))?;
            super::matcher::leniently(|| serde_yaml::from_value(merged))
                .map_err(|e| rendered(goss_error(path, &e)))?
        } else {
            super::matcher::leniently(|| serde_yaml::from_str(&text))
                .map_err(|e| rendered(goss_error(path, &e)))?
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    // As in Goss, includes in the order of their names.
    let mut includes = std::mem::take(&mut file.gossfile.0);
    includes.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, inc) in includes {
        if inc.skip {
            continue;
        }
        let target = inc.file.filter(|f| !f.is_empty()).unwrap_or(key.clone());
        let found = expand(path, dir, &target).map_err(|e| {
            use crate::config::locate::{position, Seg};
            match (e, position(&text, &[Seg::Key("gossfile"), Seg::Key(&key)])) {
                (Error::Config(m), Some((l, c))) => {
                    let shown = path.display().to_string();
                    let rest = m.strip_prefix(&shown).unwrap_or(&m);
                    rendered(Error::Config(format!("{shown}:{l}:{c}{rest}")))
                }
                (e, _) => e,
            }
        })?;
        for included in found {
            load_into(&included, renderer, checks, warnings, depth + 1)?;
        }
    }
    for (id, warning) in &file.notes() {
        warnings.push(format!("{}: {id}: {warning}", path.display()));
    }
    let here = |(kind, key, e): (String, String, String)| {
        use crate::config::locate::{position, Seg};
        let at = position(&text, &[Seg::Key(&kind), Seg::Key(&key)])
            .map(|(l, c)| format!(":{l}:{c}"))
            .unwrap_or_default();
        rendered(Error::Config(format!("{}{at}: {e}", path.display())))
    };
    for check in file.into_checks().map_err(here)? {
        // As in Goss, a later definition of the same resource replaces an earlier one.
        checks.retain(|c| c.id != check.id);
        checks.push(check);
    }
    Ok(())
}

/// The line of the top-level key `key` in `text`.
fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| block_key(l).is_some_and(|(indent, k)| indent == 0 && k == key))
        .map(|i| i + 1)
}

/// A block-mapping key on this line: its indentation and the key, unquoted.
fn block_key(line: &str) -> Option<(usize, String)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let rest = &line[indent..];
    if rest.is_empty() || rest.starts_with(['#', '-', '?', '{', '[', '%']) || rest == "---" {
        return None;
    }
    let (key, after) = if let Some(q) = rest.strip_prefix('"') {
        let end = q.find('"')?;
        (q[..end].to_string(), &q[end + 1..])
    } else if let Some(q) = rest.strip_prefix('\'') {
        let end = q.find('\'')?;
        (q[..end].to_string(), &q[end + 1..])
    } else {
        // A plain key ends at the first `:` followed by a space or the end of the line.
        let b = rest.as_bytes();
        let end = (0..b.len()).find(|&i| {
            b[i] == b':' && (i + 1 == b.len() || b[i + 1] == b' ' || b[i + 1] == b'\t')
        })?;
        if rest[..end].contains(" #") {
            return None;
        }
        (rest[..end].trim_end().to_string(), &rest[end..])
    };
    let after = after.trim_start();
    (after.starts_with(':')).then_some((indent, key))
}

/// A key written twice in one mapping (at the top level, or among one type's resources) is an
/// error that names both lines, as Goss's YAML reader refuses it too.
fn check_repeated_keys(path: &Path, text: &str) -> Result<()> {
    let mut top: BTreeMap<String, usize> = BTreeMap::new();
    let mut children: BTreeMap<String, usize> = BTreeMap::new();
    let mut parent: Option<String> = None;
    let mut child_indent: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let Some((indent, key)) = block_key(line) else {
            continue;
        };
        let (seen, what) = if indent == 0 {
            children.clear();
            child_indent = None;
            // Only a resource type's mapping is a mapping of resources; other keys hold
            // anything (lists of mappings, say), which this scan does not follow.
            parent = RESOURCE_TYPES.contains(&key.as_str()).then(|| key.clone());
            (&mut top, "at the top level".to_string())
        } else {
            if parent.is_none() {
                continue;
            }
            let ci = *child_indent.get_or_insert(indent);
            if indent != ci {
                continue;
            }
            let p = parent.clone().unwrap_or_default();
            (&mut children, format!("under `{p}`"))
        };
        if let Some(first) = seen.insert(key.clone(), n) {
            return Err(Error::Config(format!(
                "{}:{n}:{}: `{key}` is written twice {what} (lines {first} and {n}); Goss refuses this too: keep one",
                path.display(),
                indent + 1
            )));
        }
    }
    Ok(())
}

/// The files an include names: a path or a glob (`*`, `?`, `[...]` in any component),
/// relative to the including file's directory; like Goss, no match is an error.
fn expand(including: &Path, dir: &Path, target: &str) -> Result<Vec<PathBuf>> {
    let full = dir.join(target);
    let pattern = full.to_string_lossy().into_owned();
    let bad = |msg: String| {
        Error::Config(format!(
            "{}: gossfile `{target}`: {msg}",
            including.display()
        ))
    };
    let found: Vec<PathBuf> = glob::glob(&pattern)
        .map_err(|e| bad(format!("not a valid glob: {e}")))?
        .filter_map(|p| p.ok())
        .collect();
    if found.is_empty() {
        return Err(bad(format!(
            "no file matches {pattern}; a gossfile include is a path or a glob relative to this file"
        )));
    }
    Ok(found)
}

/// serde's "unknown field" for a Goss attribute we know but do not implement, said plainly.
fn goss_error(path: &Path, e: &serde_yaml::Error) -> Error {
    let err = yaml_error(path, e);
    let msg = err.to_string();
    for attr in UNSUPPORTED {
        if msg.contains(&format!("unknown field `{attr}`")) {
            let place = msg.split(": unknown field").next().unwrap_or("");
            return Error::Config(format!(
                "{place}: the Goss attribute `{attr}` is not supported by Bakery (unsupported: {})",
                UNSUPPORTED.join(", ")
            ));
        }
    }
    err
}

/// A mapping kept in file order.
#[derive(Debug)]
struct Ordered<T>(Vec<(String, T)>);

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of resource names to attributes")
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Ordered<T>, E> {
                Ok(Ordered(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Ordered<T>, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = m.next_entry::<String, T>()? {
                    v.push((k, val));
                }
                Ok(Ordered(v))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Milliseconds, or a duration string (Goss's `retry_delay`).
#[derive(Debug, Clone, Copy, Default)]
struct Millis(Duration);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_f64()
                .filter(|x| *x >= 0.0)
                .map(|x| Millis(Duration::from_secs_f64(x / 1000.0)))
                .ok_or_else(|| de::Error::custom("expected milliseconds")),
            Value::String(s) => humantime::parse_duration(&s).map(Millis).map_err(|_| {
                de::Error::custom(format!(
                    "`{s}` is not a duration; write milliseconds or e.g. `500ms`, `2s`"
                ))
            }),
            other => Err(de::Error::custom(format!(
                "expected milliseconds, got {other}"
            ))),
        }
    }
}

/// Attributes every Goss resource has.
#[derive(Debug, Default)]
struct Common {
    title: Option<String>,
    meta: BTreeMap<String, Value>,
    skip: bool,
}

macro_rules! goss_struct {
    ($name:ident { $($field:ident $(as $rename:literal)? : $ty:ty),* $(,)? }) => {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $name {
            title: Option<String>,
            #[serde(default)]
            meta: BTreeMap<String, Value>,
            #[serde(default)]
            skip: bool,
            $( $(#[serde(rename = $rename)])? #[serde(default)] $field: $ty, )*
        }
        impl $name {
            fn common(&self) -> Common {
                Common { title: self.title.clone(), meta: self.meta.clone(), skip: self.skip }
            }
        }
    };
}

goss_struct!(GAddr {
    address: Option<String>,
    local_address as "local-address": Option<String>,
    reachable: Option<Matcher>,
    timeout: Option<Millis>,
});
goss_struct!(GCommand {
    exec: Option<String>,
    exit_status as "exit-status": Option<Matcher>,
    stdout: Option<Matcher>,
    stderr: Option<Matcher>,
    timeout: Option<Millis>,
    retry_count: Option<u32>,
    retry_delay: Option<Millis>,
});
goss_struct!(GDns {
    resolve: Option<String>,
    resolvable: Option<Matcher>,
    resolveable: Option<Matcher>,
    addrs: Option<Matcher>,
    server: Option<String>,
    timeout: Option<Millis>,
    retry_count: Option<u32>,
    retry_delay: Option<Millis>,
});
goss_struct!(GFile {
    path: Option<String>,
    exists: Option<Matcher>,
    mode: Option<Matcher>,
    size: Option<Matcher>,
    owner: Option<Matcher>,
    uid: Option<Matcher>,
    group: Option<Matcher>,
    gid: Option<Matcher>,
    linked_to as "linked-to": Option<Matcher>,
    filetype: Option<Matcher>,
    contains: Option<Matcher>,
    contents: Option<Matcher>,
    md5: Option<Matcher>,
    sha256: Option<Matcher>,
    sha512: Option<Matcher>,
});
goss_struct!(GGroup { groupname: Option<String>, exists: Option<Matcher>, gid: Option<Matcher> });
goss_struct!(GHttp {
    url: Option<String>,
    method: Option<String>,
    status: Option<Matcher>,
    allow_insecure as "allow-insecure": bool,
    no_follow_redirects as "no-follow-redirects": bool,
    timeout: Option<Millis>,
    request_headers as "request-headers": Vec<String>,
    request_body as "request-body": Option<String>,
    headers: Option<Matcher>,
    body: Option<Matcher>,
    username: Option<String>,
    password: Option<String>,
});
goss_struct!(GInterface { name: Option<String>, exists: Option<Matcher>, addrs: Option<Matcher>, mtu: Option<Matcher> });
goss_struct!(GKernelParam { name: Option<String>, value: Option<Matcher> });
goss_struct!(GMatching { content: Value, as_reader as "as-reader": bool, matches: Option<Matcher> });
goss_struct!(GMount {
    mountpoint: Option<String>,
    exists: Option<Matcher>,
    opts: Option<Matcher>,
    vfs_opts as "vfs-opts": Option<Matcher>,
    source: Option<Matcher>,
    filesystem: Option<Matcher>,
    usage: Option<Matcher>,
    timeout: Option<Millis>,
});
goss_struct!(GPackage {
    name: Option<String>,
    installed: Option<Matcher>,
    versions: Option<Matcher>,
    retry_count: Option<u32>,
    retry_delay: Option<Millis>,
});
goss_struct!(GPort { port: Option<String>, listening: Option<Matcher>, ip: Option<Matcher> });
goss_struct!(GProcess { comm: Option<String>, running: Option<Matcher> });
goss_struct!(GService { name: Option<String>, enabled: Option<Matcher>, running: Option<Matcher> });
goss_struct!(GUser {
    username: Option<String>,
    exists: Option<Matcher>,
    uid: Option<Matcher>,
    gid: Option<Matcher>,
    groups: Option<Matcher>,
    home: Option<Matcher>,
    shell: Option<Matcher>,
});

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GInclude {
    #[serde(default)]
    skip: bool,
    file: Option<String>,
    #[allow(dead_code)]
    title: Option<String>,
    #[allow(dead_code)]
    #[serde(default)]
    meta: BTreeMap<String, Value>,
}

/// A Goss file: one optional mapping per resource type. Other top-level keys are ignored, as
/// Goss ignores them (`load_into` warns about them).
#[derive(Debug, Default, Deserialize)]
struct GossFile {
    #[serde(default)]
    addr: Ordered<GAddr>,
    #[serde(default)]
    command: Ordered<GCommand>,
    #[serde(default)]
    dns: Ordered<GDns>,
    #[serde(default)]
    file: Ordered<GFile>,
    #[serde(default)]
    gossfile: Ordered<GInclude>,
    #[serde(default)]
    group: Ordered<GGroup>,
    #[serde(default)]
    http: Ordered<GHttp>,
    #[serde(default)]
    interface: Ordered<GInterface>,
    #[serde(default, rename = "kernel-param")]
    kernel_param: Ordered<GKernelParam>,
    #[serde(default)]
    matching: Ordered<GMatching>,
    #[serde(default)]
    mount: Ordered<GMount>,
    #[serde(default)]
    package: Ordered<GPackage>,
    #[serde(default)]
    port: Ordered<GPort>,
    #[serde(default)]
    process: Ordered<GProcess>,
    #[serde(default)]
    service: Ordered<GService>,
    #[serde(default)]
    user: Ordered<GUser>,
}

impl GossFile {
    /// Things worth a warning: resource ids and what Goss does with them.
    fn notes(&self) -> Vec<(String, String)> {
        self.mount
            .0
            .iter()
            .filter_map(|(k, g)| {
                let point = g
                    .mountpoint
                    .clone()
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| k.clone());
                (!point.starts_with('/')).then(|| {
                    (
                        format!("mount:{k}"),
                        format!("`{point}` is not an absolute path; like Goss, Bakery looks mount points up by path, so it is reported as not mounted"),
                    )
                })
            })
            .collect()
    }
}

fn retry(count: Option<u32>, delay: Option<Millis>) -> Option<Retry> {
    count.filter(|c| *c > 0).map(|c| Retry {
        attempts: c + 1,
        interval: delay.map(|d| HumanDuration(d.0)),
    })
}

fn timeout(t: Option<Millis>, extra: Duration) -> Option<HumanDuration> {
    t.filter(|t| !t.0.is_zero())
        .map(|t| HumanDuration(t.0 + extra))
}

struct Draft {
    /// A mount point that need not be absolute.
    lenient_path: bool,
    id: String,
    common: Common,
    timeout: Option<HumanDuration>,
    retry: Option<Retry>,
    resource: Resource,
}

impl GossFile {
    /// The checks; an error is (resource type, resource key, what is wrong).
    fn into_checks(self) -> std::result::Result<Vec<Check>, (String, String, String)> {
        let mut drafts: Vec<Draft> = Vec::new();
        fn add<'a>(
            drafts: &'a mut Vec<Draft>,
            kind: &str,
            key: &str,
            common: Common,
            resource: Resource,
        ) -> &'a mut Draft {
            drafts.push(Draft {
                lenient_path: false,
                id: format!("{kind}:{key}"),
                common,
                timeout: None,
                retry: None,
                resource,
            });
            drafts.last_mut().expect("just pushed")
        }
        let or = |v: Option<String>, key: &str| {
            v.filter(|s| !s.is_empty())
                .unwrap_or_else(|| key.to_string())
        };
        for (k, g) in self.addr.0 {
            let c = g.common();
            let address = or(g.address, &k);
            // A Unix socket or a local address is tried with perl, which needs time to start.
            let perl = address.starts_with("unix://") || g.local_address.is_some();
            let extra = if perl {
                crate::suites::resources::addr_perl_start()
            } else {
                Duration::ZERO
            };
            let timeout_ms = g.timeout;
            let r = AddrCheck {
                address,
                local_address: g.local_address.filter(|l| !l.is_empty()),
                reachable: g.reachable,
                timeout: timeout(g.timeout, Duration::ZERO),
                from: Side::Probe,
            };
            let d = add(&mut drafts, "addr", &k, c, Resource::Addr(r));
            if extra > Duration::ZERO {
                d.timeout = timeout(timeout_ms, extra);
            }
        }
        for (k, g) in self.command.0 {
            let c = g.common();
            let r = CommandCheck {
                run: or(g.exec, &k),
                exit_status: g.exit_status,
                stdout: g.stdout,
                stderr: g.stderr,
            };
            let d = add(&mut drafts, "command", &k, c, Resource::Command(r));
            d.timeout = timeout(g.timeout, Duration::ZERO);
            d.retry = retry(g.retry_count, g.retry_delay);
        }
        for (k, g) in self.dns.0 {
            let c = g.common();
            let target = or(g.resolve, &k);
            let (record_type, name) = match target.split_once(':') {
                Some((t, n)) if t.chars().all(|c| c.is_ascii_uppercase()) => {
                    (Some(t.to_string()), n.to_string())
                }
                _ => (None, target),
            };
            let r = DnsCheck {
                name,
                record_type,
                resolvable: g.resolvable.or(g.resolveable),
                addrs: g.addrs,
                server: g.server,
            };
            let d = add(&mut drafts, "dns", &k, c, Resource::Dns(r));
            d.timeout = timeout(g.timeout, Duration::from_secs(2));
            d.retry = retry(g.retry_count, g.retry_delay);
        }
        for (k, g) in self.file.0 {
            let c = g.common();
            let r = FileCheck {
                path: or(g.path, &k),
                exists: g.exists,
                mode: g.mode,
                max_mode: None,
                owner: g.owner,
                group: g.group,
                uid: g.uid,
                gid: g.gid,
                size: g.size,
                filetype: g.filetype,
                contents: g.contents.or(g.contains),
                sha256: g.sha256,
                sha512: g.sha512,
                md5: g.md5,
                linked_to: g.linked_to,
            };
            add(&mut drafts, "file", &k, c, Resource::File(Box::new(r)));
        }
        for (k, g) in self.group.0 {
            let c = g.common();
            add(
                &mut drafts,
                "group",
                &k,
                c,
                Resource::Group(GroupCheck {
                    name: or(g.groupname, &k),
                    exists: g.exists,
                    gid: g.gid,
                }),
            );
        }
        for (k, g) in self.http.0 {
            let c = g.common();
            let r = HttpCheck {
                url: or(g.url, &k),
                method: g.method,
                status: g.status,
                body: g.body,
                headers: g.headers,
                request_headers: g.request_headers,
                request_body: g.request_body,
                allow_insecure: g.allow_insecure,
                no_follow_redirects: g.no_follow_redirects,
                username: g.username.filter(|u| !u.is_empty()),
                password: g.password,
                from: Side::Probe,
            };
            let d = add(&mut drafts, "http", &k, c, Resource::Http(Box::new(r)));
            // Goss's default request timeout is 5 s; curl gets the check's timeout less 2 s.
            d.timeout = Some(HumanDuration(
                g.timeout.map(|t| t.0).unwrap_or(Duration::from_secs(5)) + Duration::from_secs(2),
            ));
        }
        for (k, g) in self.interface.0 {
            let c = g.common();
            let r = InterfaceCheck {
                name: or(g.name, &k),
                exists: g.exists,
                addrs: g.addrs,
                mtu: g.mtu,
            };
            add(&mut drafts, "interface", &k, c, Resource::Interface(r));
        }
        for (k, g) in self.kernel_param.0 {
            let c = g.common();
            let Some(value) = g.value else {
                return Err((
                    "kernel-param".into(),
                    k.clone(),
                    format!("kernel-param `{k}` has no `value`; give the value it must have (`value: \"1\"`)"),
                ));
            };
            add(
                &mut drafts,
                "kernel-param",
                &k,
                c,
                Resource::KernelParam(KernelParamCheck {
                    name: or(g.name, &k),
                    value: Some(value),
                    persisted: None,
                }),
            );
        }
        for (k, g) in self.matching.0 {
            let c = g.common();
            let Some(matches) = g.matches else {
                return Err((
                    "matching".into(),
                    k.clone(),
                    format!("matching `{k}` has no `matches`; give what `content` must match"),
                ));
            };
            add(
                &mut drafts,
                "matching",
                &k,
                c,
                Resource::Matching(MatchingCheck {
                    content: g.content,
                    matches,
                    as_reader: g.as_reader,
                }),
            );
        }
        for (k, g) in self.mount.0 {
            let c = g.common();
            let r = MountCheck {
                path: or(g.mountpoint, &k),
                exists: g.exists,
                opts: g.opts,
                vfs_opts: g.vfs_opts,
                source: g.source,
                filesystem: g.filesystem,
                usage: g.usage,
            };
            let d = add(&mut drafts, "mount", &k, c, Resource::Mount(Box::new(r)));
            d.timeout = timeout(g.timeout, Duration::from_secs(1));
            // Goss looks a mount point up by its exact path, so a name such as `swap` is
            // never found: reported as not mounted rather than refused.
            d.lenient_path = true;
        }
        for (k, g) in self.package.0 {
            let c = g.common();
            let r = PackageCheck {
                name: or(g.name, &k),
                installed: g.installed,
                version: g.versions,
            };
            let d = add(&mut drafts, "package", &k, c, Resource::Package(r));
            d.retry = retry(g.retry_count, g.retry_delay);
        }
        for (k, g) in self.port.0 {
            let c = g.common();
            let spec = or(g.port, &k);
            let (proto, num) = spec.split_once(':').unwrap_or(("tcp", spec.as_str()));
            let protocol = match proto {
                "tcp" => Protocol::Tcp4,
                "tcp6" => Protocol::Tcp6,
                "udp" => Protocol::Udp4,
                "udp6" => Protocol::Udp6,
                other => {
                    return Err((
                        "port".into(),
                        k.clone(),
                        format!(
                            "port `{k}`: unknown protocol `{other}`; accepted: tcp, tcp6, udp, udp6"
                        ),
                    ))
                }
            };
            let port = num.parse().map_err(|_| {
                (
                    "port".to_string(),
                    k.clone(),
                    format!("port `{k}`: `{num}` is not a port number (1 to 65535)"),
                )
            })?;
            add(
                &mut drafts,
                "port",
                &k,
                c,
                Resource::Port(PortCheck {
                    port,
                    protocol,
                    listening: g.listening,
                    ip: g.ip,
                }),
            );
        }
        for (k, g) in self.process.0 {
            let c = g.common();
            add(
                &mut drafts,
                "process",
                &k,
                c,
                Resource::Process(ProcessCheck {
                    comm: or(g.comm, &k),
                    running: g.running,
                    count: None,
                }),
            );
        }
        for (k, g) in self.service.0 {
            let c = g.common();
            let r = ServiceCheck {
                name: or(g.name, &k),
                running: g.running,
                enabled: g.enabled,
            };
            add(&mut drafts, "service", &k, c, Resource::Service(r));
        }
        for (k, g) in self.user.0 {
            let c = g.common();
            let r = UserCheck {
                name: or(g.username, &k),
                exists: g.exists,
                uid: g.uid,
                gid: g.gid,
                groups: g.groups,
                home: g.home,
                shell: g.shell,
            };
            add(&mut drafts, "user", &k, c, Resource::User(r));
        }
        drafts
            .into_iter()
            .map(|d| {
                let relative_mount = matches!(&d.resource, Resource::Mount(m) if d.lenient_path && !m.path.starts_with('/') && !m.path.is_empty() && !m.path.contains('\n'));
                if !relative_mount {
                    d.resource.validate().map_err(|e| {
                        let (kind, key) = d.id.split_once(':').unwrap_or((&d.id, ""));
                        (kind.to_string(), key.to_string(), format!("{}: {e}", d.id))
                    })?;
                }
                Ok(Check {
                    id: d.id,
                    title: d.common.title,
                    tags: vec!["goss".into()],
                    skip: d
                        .common
                        .skip
                        .then(|| "skip: true in the Goss file".to_string()),
                    timeout: d.timeout,
                    retry: d.retry,
                    eventually: None,
                    meta: d.common.meta,
                    control: None,
                    applies_if: None,
                    resource: d.resource,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
