//! `mount`: mount points from one read of `/proc/self/mountinfo`, usage from one `stat -f`.

use std::time::Duration;

use serde_json::Value;

use super::{all_errors, end_section, quote_all, section, sections, unique, Assert, Outcome};
use crate::suites::model::MountCheck;
use crate::transport::ExecOutput;

pub(super) fn script(checks: &[&MountCheck], _timeout: Duration) -> String {
    let paths = quote_all(unique(checks.iter().map(|c| c.path.as_str())));
    format!(
        "{}cat /proc/self/mountinfo\n{}stat -f --printf='%b\\t%f\\t%n\\n' -- {paths} 2>/dev/null\n{}",
        section("mountinfo", "-"),
        section("statfs", "-"),
        end_section()
    )
}

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq)]
struct Mount {
    point: String,
    opts: Vec<String>,
    fstype: String,
    source: String,
    vfs_opts: Vec<String>,
    line: String,
}

pub(super) fn evaluate(checks: &[&MountCheck], out: &ExecOutput) -> Vec<Outcome> {
    let parts = sections(&out.stdout);
    let Some(parts) =
        parts.filter(|p| p.iter().any(|(k, _, b)| *k == "mountinfo" && !b.is_empty()))
    else {
        return all_errors(checks.len(), "could not read /proc/self/mountinfo", out);
    };
    let mut mounts = Vec::new();
    let mut usage: Vec<(String, i64)> = Vec::new();
    for (kind, _, body) in parts {
        match kind {
            "mountinfo" => mounts = body.lines().filter_map(parse_line).collect(),
            "statfs" => {
                for line in body.lines() {
                    let f: Vec<&str> = line.splitn(3, '\t').collect();
                    if let [blocks, free, name] = f[..] {
                        if let (Ok(b), Ok(fr)) = (blocks.parse::<f64>(), free.parse::<f64>()) {
                            // Goss's formula: round((1 - free/blocks) * 100).
                            let pct = if b > 0.0 {
                                ((1.0 - fr / b) * 100.0).round() as i64
                            } else {
                                0
                            };
                            usage.push((name.to_string(), pct));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    checks
        .iter()
        .map(|c| {
            let mut a = Assert::new(format!("mount {}", c.path));
            // Like Goss, the first entry for the mount point.
            let Some(m) = mounts.iter().find(|m| m.point == c.path) else {
                a.flag_matcher("exists", &c.exists, true, false);
                return a.finish(format!("nothing is mounted on {}", c.path));
            };
            a.flag_matcher("exists", &c.exists, true, true);
            let list = |v: &[String]| Value::from(v.to_vec());
            a.opt("opts", &c.opts, || list(&m.opts));
            a.opt("vfs-opts", &c.vfs_opts, || list(&m.vfs_opts));
            a.opt("source", &c.source, || Value::from(m.source.clone()));
            a.opt("filesystem", &c.filesystem, || {
                Value::from(m.fstype.clone())
            });
            if let Some(matcher) = &c.usage {
                match usage.iter().find(|(p, _)| *p == c.path) {
                    Some((_, pct)) => a.matcher("usage", matcher, &Value::from(*pct)),
                    None => {
                        return Outcome::error(&format!("could not statfs {}", c.path), &m.line)
                    }
                }
            }
            a.finish(m.line.clone())
        })
        .collect()
}

/// Undoes the kernel's octal escapes (`\040` for a space) in mountinfo fields.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    let mut bytes = Vec::new();
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            bytes.push(u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap_or(b'?'));
            i += 4;
        } else {
            bytes.push(b[i]);
            i += 1;
        }
    }
    out.push_str(&String::from_utf8_lossy(&bytes));
    out
}

fn parse_line(line: &str) -> Option<Mount> {
    let f: Vec<&str> = line.split(' ').collect();
    let dash = f.iter().position(|x| *x == "-")?;
    if dash < 6 || f.len() < dash + 4 {
        return None;
    }
    let split = |s: &str| -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for o in s.split(',') {
            if !v.iter().any(|x| x == o) {
                v.push(o.to_string());
            }
        }
        v
    };
    Some(Mount {
        point: unescape(f[4]),
        opts: split(f[5]),
        fstype: f[dash + 1].to_string(),
        source: unescape(f[dash + 2]),
        vfs_opts: split(f[dash + 3]),
        line: line.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::resources::marker;
    use crate::suites::resources::test_support::{evaluate_stdout, parse_all};
    use crate::suites::result::Status;

    #[test]
    fn mountinfo_and_usage() {
        let m = marker();
        // mountinfo lines as a Debian 12 guest shows them; the last one has a space in its path.
        let stdout = format!(
            "\n{m} mountinfo -\n21 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,errors=remount-ro\n\
             22 21 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n\
             30 21 0:30 / /mnt/my\\040data rw,relatime - tmpfs tmpfs rw,size=1024k\n\
             \n{m} statfs -\n1000\t250\t/\n0\t0\t/proc\n\n{m} end -\n"
        );
        let checks: Vec<MountCheck> = parse_all(&[
            "{path: /, filesystem: ext4, source: /dev/vda, opts: [rw], vfs-opts: [errors=remount-ro], usage: 75}",
            "{path: /proc, opts: [noexec, nosuid]}",
            "{path: /mnt/my data, filesystem: tmpfs}",
            "{path: /home}",
            "{path: /, usage: {lt: 50}}",
        ]);
        let o = evaluate_stdout(evaluate, &checks, &stdout);
        assert_eq!(o[0].status, Status::Passed, "{}", o[0].message);
        assert_eq!(o[1].status, Status::Passed, "{}", o[1].message);
        assert_eq!(o[2].status, Status::Passed, "{}", o[2].message);
        assert_eq!(
            o[3].message,
            "mount /home: exists: expected true, got false"
        );
        assert_eq!(o[4].message, "mount /: usage: expected < 50, got 75");
    }
}
