//! `local-files`: files with a problem (world-writable, no owner, no group) on the probe's
//! local file systems, found in one `find` pass however many checks ask.
//!
//! Scanning every file of a system is the slowest thing a suite does (under emulation tens of
//! seconds per pass), so the pass is made once per run for every check of this kind, and only
//! for what they ask. `-nouser`/`-nogroup` would look every file's owner up in the user
//! database (GNU find reads /etc/passwd once per file); instead the pass compares ids with the
//! list `getent` gives, and the few files it reports are looked up one id at a time, so users
//! and groups that a directory service knows but does not list still count as existing.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::{all_errors, end_section, section, sections, Assert, Outcome};
use crate::suites::model::LocalFilesCheck;
use crate::transport::ExecOutput;

/// File system types that hold local files; others (proc, sysfs, devtmpfs, network and
/// removable file systems) are left out.
const LOCAL_TYPES: &str = "ext2|ext3|ext4|xfs|btrfs|f2fs|jfs|reiserfs|zfs|tmpfs|overlay";
/// Mount points left out: per-user runtime directories and container storage.
const SKIPPED_MOUNTS: &str =
    "/run/user/*|/proc/*|/sys/*|/snap/*|/var/lib/docker/*|*/containerd/*|*/kubelet/pods/*";
/// Most paths reported per kind of problem; the rest are counted.
const MOST: usize = 1000;
/// Above this many users (or groups) the pass uses `-nouser` (`-nogroup`) instead of a list.
const MOST_IDS: usize = 5000;

/// What the pass looks for, with the letter its output lines start with.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    WorldWritable,
    Unsticky,
    Unowned,
    Ungrouped,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::WorldWritable,
        Kind::Unsticky,
        Kind::Unowned,
        Kind::Ungrouped,
    ];

    fn letter(self) -> &'static str {
        match self {
            Kind::WorldWritable => "W",
            Kind::Unsticky => "D",
            Kind::Unowned => "U",
            Kind::Ungrouped => "G",
        }
    }

    fn from_letter(l: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.letter() == l)
    }

    fn attr(self) -> &'static str {
        match self {
            Kind::WorldWritable => "world-writable",
            Kind::Unsticky => "world-writable-dirs-without-sticky",
            Kind::Unowned => "unowned",
            Kind::Ungrouped => "ungrouped",
        }
    }

    fn wanted(self, c: &LocalFilesCheck) -> Option<&crate::suites::matcher::Matcher> {
        match self {
            Kind::WorldWritable => c.world_writable.as_ref(),
            Kind::Unsticky => c.world_writable_dirs_without_sticky.as_ref(),
            Kind::Unowned => c.unowned.as_ref(),
            Kind::Ungrouped => c.ungrouped.as_ref(),
        }
    }

    /// The `find` expression printing this kind's files.
    fn expression(self) -> &'static str {
        match self {
            Kind::WorldWritable => r"\( -type f -perm -0002 -printf 'W\t%p\n' \)",
            Kind::Unsticky => r"\( -type d -perm -0002 ! -perm -1000 -printf 'D\t%p\n' \)",
            Kind::Unowned => r"\( $nu -printf 'U\t%U\t%p\n' \)",
            Kind::Ungrouped => r"\( $ng -printf 'G\t%G\t%p\n' \)",
        }
    }
}

pub(super) fn validate(c: &LocalFilesCheck) -> Result<(), String> {
    if Kind::ALL.iter().all(|k| k.wanted(c).is_none()) {
        return Err(format!(
            "`local-files` names nothing to look for; give one or more of {} (`{{world-writable: \"\"}}`: \
             no file is world-writable)",
            Kind::ALL.map(Kind::attr).join(", ")
        ));
    }
    Ok(())
}

pub(super) fn script(checks: &[&LocalFilesCheck], _timeout: Duration) -> String {
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| checks.iter().any(|c| k.wanted(c).is_some()))
        .collect();
    let expression = kinds
        .iter()
        .map(|k| k.expression())
        .collect::<Vec<_>>()
        .join(" , ");
    let ids = |db: &str, test: &str, fallback: &str| {
        format!(
            "getent {db} | awk -F: '$3 ~ /^[0-9]+$/ {{ n++; s = s \" ! -{test} \" $3 }} \
             END {{ print (n && n <= {MOST_IDS}) ? s : \"{fallback}\" }}'"
        )
    };
    let mut s = section("mounts", "-");
    s += &format!(
        "findmnt -ln -o FSTYPE,TARGET | sort -u | {{\n\
         set --\n\
         while read -r fstype target; do\n\
         \x20 case \"$fstype\" in {LOCAL_TYPES}) ;; *) continue ;; esac\n\
         \x20 case \"$target\" in {SKIPPED_MOUNTS}) continue ;; esac\n\
         \x20 echo \"$target $fstype\"\n\
         \x20 set -- \"$@\" \"$target\"\n\
         done\n"
    );
    s += &section("scan", "-");
    s += &format!(
        "[ $# -gt 0 ] || {{ printf 'R\\tnone\\n'; exit 0; }}\n\
         nu=$({})\n\
         ng=$({})\n\
         {{ find \"$@\" -xdev \\( -path /run/user -o -path /var/lib/docker -o -path /snap \\) -prune \
         -o \\( {expression} \\); printf 'R\\t%s\\n' \"$?\"; }} |\n\
         awk -F '\\t' '\n\
         \x20 $1 == \"U\" || $1 == \"G\" {{\n\
         \x20   k = $1 $2\n\
         \x20   if (!(k in known)) {{\n\
         \x20     known[k] = \"\"\n\
         \x20     cmd = \"getent \" ($1 == \"U\" ? \"passwd\" : \"group\") \" \" $2 \" >/dev/null && echo y\"\n\
         \x20     cmd | getline known[k]\n\
         \x20     close(cmd)\n\
         \x20   }}\n\
         \x20   if (known[k] == \"y\") next\n\
         \x20 }}\n\
         \x20 $1 == \"R\" {{ print; next }}\n\
         \x20 {{ n[$1]++; if (n[$1] <= {MOST}) print }}\n\
         \x20 END {{ for (c in n) if (n[c] > {MOST}) print \"M\\t\" c \"\\t\" (n[c] - {MOST}) }}'\n\
         }}\n",
        ids("passwd", "uid", "-nouser"),
        ids("group", "gid", "-nogroup"),
    );
    s + &end_section()
}

/// What one pass found.
#[derive(Default)]
struct Found {
    /// `target fstype` of each file system scanned.
    mounts: Vec<String>,
    /// Per kind: the lines to show (a path, with the id for unowned and ungrouped files).
    files: BTreeMap<Kind, Vec<String>>,
    /// Per kind: how many more there were than are listed.
    more: BTreeMap<Kind, u64>,
}

fn parse(out: &ExecOutput) -> Result<Found, String> {
    let parts = sections(&out.stdout).ok_or("the scan did not finish")?;
    let mut found = Found::default();
    let mut status = None;
    for (kind, _, body) in parts {
        match kind {
            "mounts" => found.mounts = body.lines().map(str::to_string).collect(),
            "scan" => {
                for line in body.lines() {
                    let mut f = line.splitn(3, '\t');
                    let (tag, a, b) = (f.next().unwrap_or(""), f.next(), f.next());
                    match (tag, a, b) {
                        ("R", Some(rc), _) => status = Some(rc.to_string()),
                        ("M", Some(k), Some(n)) => {
                            if let (Some(k), Ok(n)) = (Kind::from_letter(k), n.parse()) {
                                found.more.insert(k, n);
                            }
                        }
                        ("U", Some(id), Some(path)) => found
                            .files
                            .entry(Kind::Unowned)
                            .or_default()
                            .push(format!("{path} (uid {id})")),
                        ("G", Some(id), Some(path)) => found
                            .files
                            .entry(Kind::Ungrouped)
                            .or_default()
                            .push(format!("{path} (gid {id})")),
                        (l, Some(path), None) if Kind::from_letter(l).is_some() => found
                            .files
                            .entry(Kind::from_letter(l).unwrap_or(Kind::WorldWritable))
                            .or_default()
                            .push(path.to_string()),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    match status.as_deref() {
        None => return Err("the scan did not report how find ended".into()),
        Some("none") => {
            return Err(format!(
                "found no local file system to scan in the mount table (findmnt): {}",
                found.mounts.join(", ")
            ))
        }
        Some("0") => {}
        Some(rc) => {
            // Files that vanish while the scan runs (under /run, /tmp) are no problem;
            // anything else (permission denied: not root) leaves the scan incomplete.
            let other: Vec<&str> = out
                .stderr
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.ends_with("No such file or directory"))
                .collect();
            if !other.is_empty() {
                return Err(format!(
                    "find stopped with status {rc}, so the scan is incomplete (does the check run \
                     as root?): {}",
                    other.iter().take(3).copied().collect::<Vec<_>>().join("; ")
                ));
            }
        }
    }
    for lines in found.files.values_mut() {
        lines.sort();
        lines.dedup();
    }
    Ok(found)
}

pub(super) fn evaluate(checks: &[&LocalFilesCheck], out: &ExecOutput) -> Vec<Outcome> {
    let found = match parse(out) {
        Ok(f) => f,
        Err(e) => return all_errors(checks.len(), &format!("local-files: {e}"), out),
    };
    let shown = |k: Kind| {
        let mut lines = found.files.get(&k).cloned().unwrap_or_default();
        if let Some(n) = found.more.get(&k) {
            lines.push(format!("... and {n} more"));
        }
        lines.join("\n")
    };
    checks
        .iter()
        .map(|c| {
            let mut a = Assert::new("local-files");
            let mut output = format!("scanned: {}\n", found.mounts.join(", "));
            for k in Kind::ALL {
                if let Some(m) = k.wanted(c) {
                    let text = shown(k);
                    a.matcher(k.attr(), m, &Value::from(text.as_str()));
                    output += &format!(
                        "{}: {}\n",
                        k.attr(),
                        if text.is_empty() { "none" } else { &text }
                    );
                }
            }
            a.finish(output)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::resources::marker;
    use crate::suites::resources::test_support::{evaluate_output, output, parse_all};
    use crate::suites::result::Status;

    /// What the pass printed on a Debian 12 guest after `chmod o+w /etc/motd`,
    /// `mkdir -m 777 /srv/drop`, `touch /srv/orphan && chown 4242:4242 /srv/orphan`.
    fn captured(rc: &str) -> String {
        let m = marker();
        format!(
            "\n{m} mounts -\n/ ext4\n/dev/shm tmpfs\n/run tmpfs\n/run/lock tmpfs\n\
             \n{m} scan -\nW\t/etc/motd\nD\t/srv/drop\nU\t4242\t/srv/orphan\nG\t4242\t/srv/orphan\n\
             R\t{rc}\n\
             \n{m} end -\n"
        )
    }

    #[test]
    fn one_pass_answers_every_check() {
        let checks: Vec<LocalFilesCheck> = parse_all(&[
            "{world-writable: '', world-writable-dirs-without-sticky: ''}",
            "{unowned: '', ungrouped: ''}",
            "{world-writable: ['/etc/motd']}",
        ]);
        let o = evaluate_output(evaluate, &checks, &output(0, &captured("0"), ""));
        assert_eq!(o[0].status, Status::Failed);
        assert_eq!(
            o[0].message,
            "local-files: world-writable: expected \"\", got /etc/motd; \
             world-writable-dirs-without-sticky: expected \"\", got /srv/drop"
        );
        assert!(o[0].output.starts_with("scanned: / ext4, /dev/shm tmpfs"));
        assert_eq!(o[1].status, Status::Failed);
        assert!(
            o[1].message.contains("got /srv/orphan (uid 4242)"),
            "{}",
            o[1].message
        );
        assert!(o[1].message.contains("/srv/orphan (gid 4242)"));
        assert_eq!(o[2].status, Status::Passed, "{}", o[2].message);
    }

    #[test]
    fn vanished_files_are_no_error_but_unreadable_ones_are() {
        let checks: Vec<LocalFilesCheck> = parse_all(&["{world-writable: ''}"]);
        let vanished = output(
            0,
            &captured("1"),
            "find: '/run/systemd/transient/x.scope': No such file or directory\n",
        );
        let o = evaluate_output(evaluate, &checks, &vanished);
        assert_eq!(o[0].status, Status::Failed, "{}", o[0].message);
        let denied = output(0, &captured("1"), "find: '/root': Permission denied\n");
        let o = evaluate_output(evaluate, &checks, &denied);
        assert_eq!(o[0].status, Status::Error);
        assert!(o[0].message.contains("as root"), "{}", o[0].message);
        // Cut off before the end: an error, never a pass.
        let cut = output(
            0,
            &captured("0").replace(&format!("\n{} end -\n", marker()), ""),
            "",
        );
        assert_eq!(
            evaluate_output(evaluate, &checks, &cut)[0].status,
            Status::Error
        );
    }

    #[test]
    fn only_what_is_asked_is_looked_for() {
        let checks: Vec<LocalFilesCheck> = parse_all(&["{unowned: ''}"]);
        let refs: Vec<&LocalFilesCheck> = checks.iter().collect();
        let s = script(&refs, Duration::from_secs(60));
        assert!(s.contains("$nu -printf"));
        assert!(!s.contains("-perm -0002"));
        assert!(validate(&parse_all::<LocalFilesCheck>(&["{}"])[0]).is_err());
    }
}
