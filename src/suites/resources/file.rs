//! `file`: existence, type, mode, ownership, size, digests, link target and contents of paths,
//! from one `stat` for all paths (plus one `sha256sum`/`md5sum` for all digests, and a read per
//! link or contents check).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::{all_errors, marker, quote_all, unique, Assert, Outcome};
use crate::suites::model::FileCheck;
use crate::transport::ExecOutput;

/// The most bytes of a file read for a `contents` check.
const CONTENTS_LIMIT: usize = 1 << 20;
const STAT_FORMAT: &str = r"%F\t%a\t%U\t%G\t%u\t%g\t%s\t%n\n";

pub(super) fn validate(f: &FileCheck) -> Result<(), String> {
    if f.path.is_empty() || f.path.contains(['\n', '\\']) {
        return Err(format!("`{}` is not a usable path", f.path.escape_debug()));
    }
    if let Some(m) = &f.max_mode {
        parse_mode(m).ok_or_else(|| {
            format!("`max-mode: {m}` is not an octal mode; write it like \"0640\"")
        })?;
    }
    Ok(())
}

/// An octal permission mode (`"0640"`, `"640"`, `"1777"`).
fn parse_mode(m: &str) -> Option<u32> {
    let m = m.trim();
    (!m.is_empty() && m.len() <= 5)
        .then(|| u32::from_str_radix(m, 8).ok())
        .flatten()
        .filter(|v| *v <= 0o7777)
}

pub(super) fn script(checks: &[&FileCheck], _timeout: Duration) -> String {
    let m = marker();
    let paths = |pred: fn(&FileCheck) -> bool| {
        unique(checks.iter().filter(|c| pred(c)).map(|c| c.path.as_str()))
    };
    let all = quote_all(paths(|_| true));
    let mut s = format!(
        "M='{m}'\nprintf '\\n%s missing\\n' \"$M\"\n\
         for p in {all}; do [ -e \"$p\" ] || [ -L \"$p\" ] || printf '%s\\n' \"$p\"; done\n\
         printf '\\n%s stat\\n' \"$M\"\nLC_ALL=C stat --printf='{STAT_FORMAT}' -- {all}\n"
    );
    for (tool, wanted) in [
        ("sha256sum", paths(|c| c.sha256.is_some())),
        ("sha512sum", paths(|c| c.sha512.is_some())),
        ("md5sum", paths(|c| c.md5.is_some())),
    ] {
        if !wanted.is_empty() {
            s += &format!(
                "printf '\\n%s {tool}\\n' \"$M\"\n{tool} -- {}\n",
                quote_all(wanted)
            );
        }
    }
    for p in paths(|c| c.linked_to.is_some()) {
        let q = quote_all([p]);
        s += &format!("printf '\\n%s link %s\\n' \"$M\" {q}\nreadlink -- {q}\n");
    }
    for p in paths(|c| c.contents.is_some()) {
        let q = quote_all([p]);
        s +=
            &format!("printf '\\n%s contents %s\\n' \"$M\" {q}\nhead -c {CONTENTS_LIMIT} -- {q}\n");
    }
    s += "printf '\\n%s end\\n' \"$M\"\n";
    s
}

/// What `stat` said about one path.
#[derive(Debug, Clone, Default)]
struct Stat {
    filetype: String,
    mode: String,
    owner: String,
    group: String,
    uid: String,
    gid: String,
    size: String,
    line: String,
}

#[derive(Debug, Default)]
struct Facts {
    missing: Vec<String>,
    stat: HashMap<String, Stat>,
    sha256: HashMap<String, String>,
    sha512: HashMap<String, String>,
    md5: HashMap<String, String>,
    link: HashMap<String, String>,
    contents: HashMap<String, String>,
}

pub(super) fn evaluate(checks: &[&FileCheck], out: &ExecOutput) -> Vec<Outcome> {
    let facts = match parse(&out.stdout) {
        Some(f) => f,
        None => {
            let e = format!("could not read the file facts: {}", out.stderr.trim());
            return all_errors(checks.len(), &e, out);
        }
    };
    checks
        .iter()
        .map(|c| evaluate_one(c, &facts, &out.stderr))
        .collect()
}

fn evaluate_one(c: &FileCheck, facts: &Facts, stderr: &str) -> Outcome {
    let mut a = Assert::new(format!("file {}", c.path));
    if facts.missing.contains(&c.path) {
        a.flag_matcher("exists", &c.exists, true, false);
        return a.finish(format!("{}: no such file or directory", c.path));
    }
    let Some(st) = facts.stat.get(&c.path) else {
        let why: Vec<&str> = stderr.lines().filter(|l| l.contains(&c.path)).collect();
        return Outcome::error(
            &format!("could not stat {}: {}", c.path, why.join("; ")),
            stderr,
        );
    };
    a.flag_matcher("exists", &c.exists, true, true);
    // As in Goss, the other attributes are not compared when `exists` did not hold.
    if !a.ok() {
        return a.finish(st.line.clone());
    }
    let s = |v: &str| Value::from(v.to_string());
    a.opt("filetype", &c.filetype, || s(&st.filetype));
    a.opt("mode", &c.mode, || s(&st.mode));
    if let Some(max) = &c.max_mode {
        // Validated when the suite was read; stat prints the mode in octal.
        let allowed = parse_mode(max).unwrap_or(0);
        let ok = parse_mode(&st.mode).is_some_and(|m| m & !allowed == 0);
        a.row(
            "max-mode",
            &format!("{max} or more restrictive"),
            &format!("{:0>4}", st.mode),
            ok,
        );
    }
    a.opt("owner", &c.owner, || s(&st.owner));
    a.opt("group", &c.group, || s(&st.group));
    a.opt("uid", &c.uid, || s(&st.uid));
    a.opt("gid", &c.gid, || s(&st.gid));
    a.opt("size", &c.size, || s(&st.size));
    let fact = |map: &HashMap<String, String>, what: &str| -> Result<Value, String> {
        map.get(&c.path)
            .map(|v| s(v))
            .ok_or_else(|| format!("could not read the {what} of {}: {}", c.path, stderr.trim()))
    };
    let mut output = st.line.clone();
    for (attr, m, map, what) in [
        ("sha256", &c.sha256, &facts.sha256, "SHA-256 digest"),
        ("sha512", &c.sha512, &facts.sha512, "SHA-512 digest"),
        ("md5", &c.md5, &facts.md5, "MD5 digest"),
        ("contents", &c.contents, &facts.contents, "contents"),
    ] {
        if let Some(m) = m {
            match fact(map, what) {
                Ok(v) => a.matcher(attr, m, &v),
                Err(e) => return Outcome::error(&e, stderr),
            }
        }
    }
    if let Some(m) = &c.linked_to {
        let target = facts.link.get(&c.path).cloned().unwrap_or_default();
        output += &format!("\n-> {target}");
        a.matcher("linked-to", m, &Value::from(target));
    }
    if let Some(text) = facts.contents.get(&c.path) {
        output += &format!("\n--- contents ---\n{text}");
    }
    a.finish(output)
}

fn filetype(stat: &str) -> &str {
    match stat {
        "regular file" | "regular empty file" => "file",
        "directory" => "directory",
        "symbolic link" => "symlink",
        "character special file" => "character-device",
        "block special file" => "block-device",
        "fifo" => "pipe",
        "socket" => "socket",
        other => other,
    }
}

/// Splits the script's output into its sections; `None` when it did not run to the end.
fn parse(stdout: &str) -> Option<Facts> {
    let sep = format!("\n{} ", marker());
    let mut facts = Facts::default();
    let mut ended = false;
    for section in stdout.split(&sep).skip(1) {
        let (head, body) = section.split_once('\n').unwrap_or((section, ""));
        let (kind, arg) = head.split_once(' ').unwrap_or((head, ""));
        match kind {
            "missing" => facts.missing = body.lines().map(str::to_string).collect(),
            "stat" => {
                for line in body.lines() {
                    let f: Vec<&str> = line.splitn(8, '\t').collect();
                    let [ty, mode, owner, group, uid, gid, size, name] = f[..] else {
                        return None;
                    };
                    let mode = format!("{:0>4}", mode);
                    let st = Stat {
                        filetype: filetype(ty).to_string(),
                        mode: mode.clone(),
                        owner: owner.into(),
                        group: group.into(),
                        uid: uid.into(),
                        gid: gid.into(),
                        size: size.into(),
                        line: format!(
                            "{name}: {} mode {mode} owner {owner}({uid}) group {group}({gid}) size {size}",
                            filetype(ty)
                        ),
                    };
                    facts.stat.insert(name.to_string(), st);
                }
            }
            "sha256sum" | "sha512sum" | "md5sum" => {
                let map = match kind {
                    "sha256sum" => &mut facts.sha256,
                    "sha512sum" => &mut facts.sha512,
                    _ => &mut facts.md5,
                };
                for line in body.lines() {
                    if let Some((digest, name)) = line.split_once("  ") {
                        map.insert(name.to_string(), digest.to_string());
                    }
                }
            }
            "link" => {
                if !body.is_empty() {
                    facts
                        .link
                        .insert(arg.to_string(), body.trim_end_matches('\n').to_string());
                }
            }
            "contents" => {
                facts.contents.insert(arg.to_string(), body.to_string());
            }
            "end" => ended = true,
            _ => return None,
        }
    }
    ended.then_some(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::resources::test_support::{evaluate_output, output};
    use crate::suites::result::Status;

    fn file(yaml: &str) -> FileCheck {
        serde_yaml::from_str(yaml).unwrap()
    }

    /// Output in the shape the script produces on Debian 12 (stat from coreutils 9.1).
    fn captured() -> String {
        let m = marker();
        format!(
            "\n{m} missing\n/nonexist\n\n{m} stat\nregular file\t644\troot\troot\t0\t0\t1221\t/etc/passwd\n\
             symbolic link\t777\troot\troot\t0\t0\t7\t/bin\ndirectory\t1777\troot\troot\t0\t0\t4096\t/tmp\n\
             regular file\t4755\troot\troot\t0\t0\t68248\t/usr/bin/passwd\n\
             \n{m} sha256sum\n98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4  /etc/passwd\n\
             \n{m} link /bin\nusr/bin\n\n{m} contents /etc/passwd\nroot:x:0:0:root:/root:/bin/bash\n\n{m} end\n"
        )
    }

    fn run(checks: &[FileCheck], stdout: &str, stderr: &str) -> Vec<Outcome> {
        evaluate_output(evaluate, checks, &output(1, stdout, stderr))
    }

    #[test]
    fn stat_facts_answer_every_file_check() {
        let checks = [
            file("{path: /etc/passwd, mode: '0644', owner: root, filetype: file, size: {gt: 100}}"),
            file("{path: /bin, filetype: symlink, linked-to: usr/bin}"),
            file("{path: /nonexist}"),
            file("{path: /nonexist, exists: false}"),
            file("{path: /tmp, mode: 1777, filetype: directory}"),
            file("{path: /usr/bin/passwd, mode: '0755'}"),
            file("{path: /etc/passwd, sha256: 98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4, contents: {regex: '^root:'}}"),
            file("{path: /etc/missing-from-output}"),
        ];
        let o = run(
            &checks,
            &captured(),
            "stat: cannot statx '/etc/missing-from-output': Permission denied\n",
        );
        assert_eq!(o[0].status, Status::Passed, "{}", o[0].message);
        assert_eq!(o[1].status, Status::Passed, "{}", o[1].message);
        assert_eq!(o[2].status, Status::Failed);
        assert_eq!(
            o[2].message,
            "file /nonexist: exists: expected true, got false"
        );
        assert_eq!(o[3].status, Status::Passed);
        assert_eq!(o[4].status, Status::Passed, "{}", o[4].message);
        assert_eq!(o[5].status, Status::Failed);
        assert_eq!(
            o[5].message,
            "file /usr/bin/passwd: mode: expected \"0755\", got 4755"
        );
        assert_eq!(o[6].status, Status::Passed, "{}", o[6].message);
        assert_eq!(o[7].status, Status::Error);
        assert!(
            o[7].message.contains("Permission denied"),
            "{}",
            o[7].message
        );
    }

    #[test]
    fn max_mode_allows_only_stricter_modes() {
        let checks = [
            file("{path: /etc/passwd, max-mode: '0644'}"),
            file("{path: /etc/passwd, max-mode: '0640'}"),
            file("{path: /usr/bin/passwd, max-mode: '0755'}"),
            file("{path: /tmp, max-mode: '1777'}"),
        ];
        let o = run(&checks, &captured(), "");
        assert_eq!(o[0].status, Status::Passed, "{}", o[0].message);
        assert_eq!(
            o[1].message,
            "file /etc/passwd: max-mode: expected 0640 or more restrictive, got 0644"
        );
        assert_eq!(o[2].status, Status::Failed, "setuid is outside 0755");
        assert_eq!(o[3].status, Status::Passed, "{}", o[3].message);
        let bad: FileCheck = serde_yaml::from_str("{path: /x, max-mode: rw-r}").unwrap();
        assert!(validate(&bad).unwrap_err().contains("not an octal mode"));
    }

    #[test]
    fn truncated_output_is_an_error() {
        let cut = captured().replace(&format!("{} end", marker()), "");
        let o = run(&[file("{path: /etc/passwd}")], &cut, "");
        assert_eq!(o[0].status, Status::Error);
    }

    #[test]
    fn the_script_stats_all_paths_at_once() {
        let checks = [
            file("{path: /etc/passwd}"),
            file("{path: /etc/group, contents: x}"),
        ];
        let refs: Vec<&FileCheck> = checks.iter().collect();
        let s = script(&refs, Duration::from_secs(60));
        assert_eq!(s.matches("stat --printf").count(), 1);
        assert!(s.contains("-- /etc/group /etc/passwd\n"), "{s}");
        assert_eq!(s.matches("head -c").count(), 1);
    }
}
