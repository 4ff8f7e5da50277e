//! `kernel-param`: sysctl values, from one `grep` over the `/proc/sys` files of all parameters;
//! `persisted` values from one more `grep` over the boot-time sysctl configuration files.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::{all_errors, missing_tool, quote_all, unique, Assert, Outcome};
use crate::suites::model::KernelParamCheck;
use crate::transport::ExecOutput;

fn proc_path(name: &str) -> String {
    format!("/proc/sys/{}", name.replace('.', "/"))
}

pub(super) fn script(checks: &[&KernelParamCheck], _timeout: Duration) -> String {
    let paths: Vec<String> = checks.iter().map(|c| proc_path(&c.name)).collect();
    let paths = unique(paths.iter().map(String::as_str));
    // -H names the file on every line; a file with an empty value prints no line.
    let mut s = format!("grep -H '' -- {}; echo @end", quote_all(paths));
    if checks.iter().any(|c| c.persisted.is_some()) {
        // systemd-sysctl's directories, highest priority first; /etc/sysctl.conf is read
        // through Debian's /etc/sysctl.d/99-sysctl.conf link, or on its own when that is absent.
        let globs: Vec<String> = SYSCTL_DIRS.iter().map(|d| format!("{d}/*.conf")).collect();
        s += &format!(
            "\nc=/etc/sysctl.conf; [ /etc/sysctl.d/99-sysctl.conf -ef $c ] && c=\n\
             grep -H '' -- {} $c 2>/dev/null; echo @persisted",
            globs.join(" ")
        );
    }
    s
}

/// Where `systemd-sysctl` reads `*.conf` files, highest priority first.
const SYSCTL_DIRS: &[&str] = &[
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];

/// The assignments of the boot-time configuration in the order they apply: files by name (a
/// name in a higher-priority directory hides the same name elsewhere), `/etc/sysctl.conf` last
/// when it is read on its own. Keys are in dotted form.
fn persisted_assignments(listing: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, Vec<&str>)> = Vec::new();
    for line in listing.lines() {
        let Some((path, text)) = line.split_once(':') else {
            continue;
        };
        match files.last_mut() {
            Some((p, lines)) if p == path => lines.push(text),
            _ => files.push((path.to_string(), vec![text])),
        }
    }
    let name_of = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
    let rank = |p: &str| {
        SYSCTL_DIRS
            .iter()
            .position(|d| p.strip_prefix(d).is_some_and(|r| r.starts_with('/')))
            .unwrap_or(usize::MAX)
    };
    let mut chosen: Vec<&(String, Vec<&str>)> = Vec::new();
    for f in files.iter().filter(|(p, _)| rank(p) != usize::MAX) {
        match chosen.iter_mut().find(|c| name_of(&c.0) == name_of(&f.0)) {
            Some(c) if rank(&f.0) < rank(&c.0) => *c = f,
            Some(_) => {}
            None => chosen.push(f),
        }
    }
    chosen.sort_by_key(|(p, _)| name_of(p));
    chosen.extend(files.iter().filter(|(p, _)| p == "/etc/sysctl.conf"));
    let mut out = Vec::new();
    for (_, lines) in chosen {
        for line in lines {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = key.trim().trim_start_matches('-').trim();
            out.push((dotted(key), value.trim().to_string()));
        }
    }
    out
}

/// A sysctl key in dotted form: `net/ipv4/ip_forward` → `net.ipv4.ip_forward` (as sysctl.d(5)
/// says, when the first separator is a slash, slashes and dots swap).
fn dotted(key: &str) -> String {
    match (key.find('/'), key.find('.')) {
        (Some(s), d) if d.is_none_or(|d| s < d) => key
            .chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                c => c,
            })
            .collect(),
        _ => key.to_string(),
    }
}

/// Whether the sysctl.d key (which may hold `*` and `?` globs) names `name`.
fn key_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

pub(super) fn evaluate(checks: &[&KernelParamCheck], out: &ExecOutput) -> Vec<Outcome> {
    if let Some(e) = missing_tool(out, "grep") {
        return all_errors(checks.len(), &e, out);
    }
    let Some((listing, rest)) = out.stdout.split_once("@end\n") else {
        return all_errors(checks.len(), "could not read /proc/sys", out);
    };
    let wants_persisted = checks.iter().any(|c| c.persisted.is_some());
    let persisted = match rest.strip_suffix("@persisted\n") {
        Some(listing) => persisted_assignments(listing),
        None if wants_persisted => {
            return all_errors(
                checks.len(),
                "could not read the sysctl configuration files",
                out,
            )
        }
        None => Vec::new(),
    };
    let mut values: HashMap<&str, Vec<&str>> = HashMap::new();
    for line in listing.lines() {
        if let Some((path, value)) = line.split_once(':') {
            values.entry(path).or_default().push(value);
        }
    }
    checks
        .iter()
        .map(|c| {
            let path = proc_path(&c.name);
            let mut a = Assert::new(format!("kernel-param {}", c.name));
            let mut shown = Vec::new();
            if let Some(m) = &c.persisted {
                let set = persisted
                    .iter()
                    .rev()
                    .find(|(k, _)| key_matches(k, &c.name))
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                shown.push(format!("persisted: {} = {set}", c.name));
                a.matcher("persisted", m, &Value::from(set));
            }
            let Some(expected) = &c.value else {
                return a.finish(shown.join("\n"));
            };
            let value = match values.get(path.as_str()) {
                Some(lines) => lines.join("\n"),
                None if out.stderr.contains(&format!("{path}: No such file")) => {
                    a.row(
                        "value",
                        &expected.to_string(),
                        "no such kernel parameter",
                        false,
                    );
                    return a.finish(out.stderr.trim().to_string());
                }
                None if out.stderr.contains(&path) => {
                    let why: Vec<&str> = out.stderr.lines().filter(|l| l.contains(&path)).collect();
                    return Outcome::error(
                        &format!("could not read {path}: {}", why.join("; ")),
                        &out.stderr,
                    );
                }
                None => String::new(),
            };
            a.matcher("value", expected, &Value::from(value.clone()));
            shown.insert(0, format!("{} = {value}", c.name));
            a.finish(shown.join("\n"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::result::Status;

    #[test]
    fn values_come_from_proc_sys() {
        let k = |y: &str| -> KernelParamCheck { serde_yaml::from_str(y).unwrap() };
        let checks = [
            k("{name: net.ipv4.ip_forward, value: 0}"),
            k("{name: kernel.ostype, value: Linux}"),
            k("{name: net.core.somaxconn, value: {ge: 1024}}"),
            k("{name: no.such.param, value: 1}"),
            k("{name: kernel.printk, value: {regex: '^4'}}"),
        ];
        let refs: Vec<&KernelParamCheck> = checks.iter().collect();
        let s = script(&refs, Duration::from_secs(1));
        assert!(s.contains("/proc/sys/net/ipv4/ip_forward"), "{s}");
        // Captured on Debian 12 with the script above.
        let stdout = "/proc/sys/kernel/ostype:Linux\n/proc/sys/kernel/printk:4\t4\t1\t7\n/proc/sys/net/core/somaxconn:4096\n/proc/sys/net/ipv4/ip_forward:1\n@end\n";
        let stderr = "grep: /proc/sys/no/such/param: No such file or directory\n";
        let o = evaluate(
            &refs,
            &ExecOutput {
                exit_code: 0,
                stdout: stdout.into(),
                stderr: stderr.into(),
                ..Default::default()
            },
        );
        assert_eq!(
            o[0].message,
            "kernel-param net.ipv4.ip_forward: value: expected 0, got 1"
        );
        assert_eq!(o[1].status, Status::Passed);
        assert_eq!(o[2].status, Status::Passed);
        assert_eq!(o[3].status, Status::Failed);
        assert_eq!(
            o[3].actual.as_deref(),
            Some("value: no such kernel parameter")
        );
        assert_eq!(o[4].status, Status::Passed);
    }

    #[test]
    fn persisted_values_follow_systemd_sysctl_order() {
        let k = |y: &str| -> KernelParamCheck { serde_yaml::from_str(y).unwrap() };
        let checks = [
            k("{name: net.ipv4.ip_forward, value: 0, persisted: 0}"),
            k("{name: kernel.randomize_va_space, persisted: 2}"),
            k("{name: net.ipv4.conf.all.rp_filter, persisted: 1}"),
            k("{name: net.ipv4.conf.default.accept_redirects, persisted: 0}"),
            k("{name: fs.suid_dumpable, persisted: 0}"),
        ];
        let refs: Vec<&KernelParamCheck> = checks.iter().collect();
        let s = script(&refs, Duration::from_secs(1));
        assert!(s.contains("/usr/lib/sysctl.d/*.conf"), "{s}");
        // Debian 12 with procps and systemd, plus hardening files; /etc/sysctl.d/50-pid-max.conf
        // hides the copy of the same name in /usr/lib/sysctl.d, and 99-sysctl.conf is the link
        // to /etc/sysctl.conf (read once, by its name in /etc/sysctl.d).
        let stdout = "/proc/sys/net/ipv4/ip_forward:0\n@end\n\
/etc/sysctl.d/60-bakery-cis.conf:# CIS 3.3\n\
/etc/sysctl.d/60-bakery-cis.conf:net.ipv4.ip_forward = 0\n\
/etc/sysctl.d/60-bakery-cis.conf:kernel.randomize_va_space=2\n\
/etc/sysctl.d/60-bakery-cis.conf:net/ipv4/conf/default/accept_redirects = 0\n\
/etc/sysctl.d/99-sysctl.conf:#net.ipv4.ip_forward=1\n\
/etc/sysctl.d/99-sysctl.conf:-net.ipv4.ip_forward = 1\n\
/etc/sysctl.d/50-pid-max.conf:kernel.pid_max = 4194304\n\
/usr/lib/sysctl.d/50-default.conf:net.ipv4.conf.default.rp_filter = 2\n\
/usr/lib/sysctl.d/50-default.conf:net.ipv4.conf.*.rp_filter = 2\n\
/usr/lib/sysctl.d/50-default.conf:-net.ipv4.conf.all.rp_filter = 2\n\
/usr/lib/sysctl.d/50-default.conf:kernel.randomize_va_space = 1\n\
/usr/lib/sysctl.d/50-pid-max.conf:kernel.pid_max = 1\n\
@persisted\n";
        let o = evaluate(
            &refs,
            &ExecOutput {
                exit_code: 0,
                stdout: stdout.into(),
                ..Default::default()
            },
        );
        // 99-sysctl.conf comes after 60-bakery-cis.conf and sets it back to 1.
        assert_eq!(
            o[0].message,
            "kernel-param net.ipv4.ip_forward: persisted: expected 0, got 1"
        );
        assert_eq!(o[1].status, Status::Passed, "{}", o[1].message);
        assert_eq!(
            o[2].message,
            "kernel-param net.ipv4.conf.all.rp_filter: persisted: expected 1, got 2"
        );
        assert_eq!(o[3].status, Status::Passed, "{}", o[3].message);
        assert_eq!(
            o[4].message,
            "kernel-param fs.suid_dumpable: persisted: expected 0, got "
        );
        assert_eq!(
            dotted("net/ipv4/conf/eth0.1/rp_filter"),
            "net.ipv4.conf.eth0/1.rp_filter"
        );
        assert!(key_matches(
            "net.ipv4.conf.*.rp_filter",
            "net.ipv4.conf.all.rp_filter"
        ));
    }
}
