//! Reading Goss files (`goss.yaml`) into a [`Suite`], with Goss's attribute names, matchers,
//! `title`, `meta`, `skip`, `retry_count`/`retry_delay` and `gossfile` includes.
//!
//! Supported: `addr`, `command`, `dns`, `file`, `gossfile`, `group`, `http`, `interface`,
//! `kernel-param`, `matching`, `mount`, `package`, `port`, `process`, `service`, `user`, with
//! their documented attributes except the ones in [`UNSUPPORTED`]; templates (`{{ }}`) are not
//! supported. Known differences from Goss: a string expected for command output, contents or a
//! body is compared with the text less its final newline; a `port` of `tcp:22` means IPv4 and
//! `tcp6:22` IPv6, as in Goss.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

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
pub const UNSUPPORTED: &[&str] = &[
    "ca-file",
    "cert-file",
    "key-file",
    "proxy",
    "runlevels",
    "local-address",
    "as-reader",
];

/// Reads the Goss file at `path` (and the files it includes) as a suite named after the file.
pub fn load_goss(path: &Path) -> Result<Suite> {
    let mut checks: Vec<Check> = Vec::new();
    load_into(path, &mut checks, 0)?;
    Ok(Suite {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "goss".into()),
        description: Some(format!("imported from the Goss file {}", path.display())),
        checks,
        experiments: Vec::new(),
        probe: None,
        source: Some(path.to_path_buf()),
    })
}

fn load_into(path: &Path, checks: &mut Vec<Check>, depth: usize) -> Result<()> {
    if depth > 16 {
        return Err(Error::Config(format!(
            "{}: gossfile includes nest too deep (a cycle?)",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).at("reading", path)?;
    if let Some((n, _)) = text.lines().enumerate().find(|(_, l)| l.contains("{{")) {
        return Err(Error::Config(format!(
            "{}:{}:1: Goss templates (`{{{{ }}}}`) are not supported; render the file with `goss render` first",
            path.display(),
            n + 1
        )));
    }
    let mut file: GossFile = if text.trim().is_empty() {
        GossFile::default()
    } else {
        serde_yaml::from_str(&text).map_err(|e| goss_error(path, &e))?
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    for (key, inc) in std::mem::take(&mut file.gossfile.0) {
        if inc.skip {
            continue;
        }
        let target = inc.file.filter(|f| !f.is_empty()).unwrap_or(key);
        for included in expand(dir, &target)? {
            load_into(&included, checks, depth + 1)?;
        }
    }
    let here = |e: String| Error::Config(format!("{}: {e}", path.display()));
    for check in file.into_checks().map_err(here)? {
        // As in Goss, a later definition of the same resource replaces an earlier one.
        checks.retain(|c| c.id != check.id);
        checks.push(check);
    }
    Ok(())
}

/// The files an include names: a path, or a glob with `*`/`?` in its last component.
fn expand(dir: &Path, target: &str) -> Result<Vec<PathBuf>> {
    let full = dir.join(target);
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return Ok(vec![full]);
    }
    let parent = full.parent().unwrap_or(Path::new("."));
    let mut found: Vec<PathBuf> = std::fs::read_dir(parent)
        .at("listing", parent)?
        .filter_map(|e| e.ok())
        .filter(|e| wildcard(&name, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    found.sort();
    Ok(found)
}

fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    fn go(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(&p, &n)
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
            Value::String(s) => humantime::parse_duration(&s)
                .map(Millis)
                .map_err(|e| de::Error::custom(format!("`{s}` is not a duration: {e}"))),
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

goss_struct!(GAddr { address: Option<String>, reachable: Option<bool>, timeout: Option<Millis> });
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
    resolvable: Option<bool>,
    resolveable: Option<bool>,
    addrs: Option<Matcher>,
    server: Option<String>,
    timeout: Option<Millis>,
    retry_count: Option<u32>,
    retry_delay: Option<Millis>,
});
goss_struct!(GFile {
    path: Option<String>,
    exists: Option<bool>,
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
goss_struct!(GGroup { groupname: Option<String>, exists: Option<bool>, gid: Option<Matcher> });
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
goss_struct!(GInterface { name: Option<String>, exists: Option<bool>, addrs: Option<Matcher>, mtu: Option<Matcher> });
goss_struct!(GKernelParam { name: Option<String>, value: Option<Matcher> });
goss_struct!(GMatching { content: Value, matches: Option<Matcher> });
goss_struct!(GMount {
    mountpoint: Option<String>,
    exists: Option<bool>,
    opts: Option<Matcher>,
    vfs_opts as "vfs-opts": Option<Matcher>,
    source: Option<Matcher>,
    filesystem: Option<Matcher>,
    usage: Option<Matcher>,
    timeout: Option<Millis>,
});
goss_struct!(GPackage {
    name: Option<String>,
    installed: Option<bool>,
    versions: Option<Matcher>,
    retry_count: Option<u32>,
    retry_delay: Option<Millis>,
});
goss_struct!(GPort { port: Option<String>, listening: Option<bool>, ip: Option<Matcher> });
goss_struct!(GProcess { comm: Option<String>, running: Option<bool> });
goss_struct!(GService { name: Option<String>, enabled: Option<bool>, running: Option<bool> });
goss_struct!(GUser {
    username: Option<String>,
    exists: Option<bool>,
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

/// A Goss file: one optional mapping per resource type.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
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
    id: String,
    common: Common,
    timeout: Option<HumanDuration>,
    retry: Option<Retry>,
    resource: Resource,
}

impl GossFile {
    fn into_checks(self) -> std::result::Result<Vec<Check>, String> {
        let mut drafts: Vec<Draft> = Vec::new();
        fn add<'a>(
            drafts: &'a mut Vec<Draft>,
            kind: &str,
            key: &str,
            common: Common,
            resource: Resource,
        ) -> &'a mut Draft {
            drafts.push(Draft {
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
            let r = AddrCheck {
                address,
                reachable: g.reachable,
                timeout: timeout(g.timeout, Duration::ZERO),
                from: Side::Probe,
            };
            add(&mut drafts, "addr", &k, c, Resource::Addr(r));
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
            let value = g
                .value
                .ok_or(format!("kernel-param `{k}` has no `value`"))?;
            add(
                &mut drafts,
                "kernel-param",
                &k,
                c,
                Resource::KernelParam(KernelParamCheck {
                    name: or(g.name, &k),
                    value,
                }),
            );
        }
        for (k, g) in self.matching.0 {
            let c = g.common();
            let matches = g
                .matches
                .ok_or(format!("matching `{k}` has no `matches`"))?;
            add(
                &mut drafts,
                "matching",
                &k,
                c,
                Resource::Matching(MatchingCheck {
                    content: g.content,
                    matches,
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
                    return Err(format!(
                        "port `{k}`: unknown protocol `{other}`; accepted: tcp, tcp6, udp, udp6"
                    ))
                }
            };
            let port = num
                .parse()
                .map_err(|_| format!("port `{k}`: `{num}` is not a port number"))?;
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
                d.resource
                    .validate()
                    .map_err(|e| format!("{}: {e}", d.id))?;
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
                    resource: d.resource,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
