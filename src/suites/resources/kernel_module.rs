//! `kernel-module`: what is loaded (`/proc/modules`), what `modprobe -n -v` would do for each
//! module, and the deny-list in modprobe's configuration, gathered in one exec.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::{all_errors, end_section, section, sections, unique, Assert, Outcome};
use crate::suites::model::KernelModuleCheck;
use crate::transport::ExecOutput;

/// modprobe treats `-` and `_` in module names alike.
fn norm(name: &str) -> String {
    name.replace('-', "_")
}

pub(super) fn script(checks: &[&KernelModuleCheck], _timeout: Duration) -> String {
    let mut s = section("loaded", "-");
    // The shell's `read` lists /proc/modules without starting a process.
    s += "while read -r n _; do echo \"$n\"; done < /proc/modules\n";
    s += &section("config", "-");
    s += "modprobe --showconfig 2>&1 | grep -E '^(blacklist|install) '\n";
    for name in unique(checks.iter().map(|c| c.name.as_str())) {
        s += &section("probe", name);
        s += &format!(
            "modprobe -n -v {} 2>&1; echo \"@rc $?\"\n",
            crate::transport::shell_quote(name)
        );
    }
    s + &end_section()
}

/// What `modprobe -n -v NAME` said.
struct Probe {
    exists: bool,
    loadable: bool,
    text: String,
}

fn probe(body: &str) -> Result<Probe, String> {
    let rc = body
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("@rc "))
        .and_then(|c| c.trim().parse::<i32>().ok());
    let text: String = body
        .lines()
        .filter(|l| !l.starts_with("@rc "))
        .collect::<Vec<_>>()
        .join("\n");
    match rc {
        Some(0) => {
            // `install /bin/false` (or /bin/true, or their /usr/bin twins) stops a load.
            let refused = text.lines().any(|l| {
                let mut w = l.split_whitespace();
                w.next() == Some("install")
                    && w.next().is_some_and(|cmd| {
                        matches!(
                            cmd,
                            "/bin/false" | "/bin/true" | "/usr/bin/false" | "/usr/bin/true"
                        )
                    })
            });
            Ok(Probe {
                exists: true,
                loadable: !refused,
                text,
            })
        }
        Some(_) if text.contains("not found") && !text.contains("modprobe: not found") => {
            Ok(Probe {
                exists: false,
                loadable: false,
                text,
            })
        }
        _ => Err(text),
    }
}

pub(super) fn evaluate(checks: &[&KernelModuleCheck], out: &ExecOutput) -> Vec<Outcome> {
    let Some(parts) = sections(&out.stdout) else {
        return all_errors(checks.len(), "could not read the kernel module facts", out);
    };
    let mut loaded: HashSet<String> = HashSet::new();
    let mut deny: HashSet<String> = HashSet::new();
    let mut probes: HashMap<&str, &str> = HashMap::new();
    let mut config = String::new();
    for (kind, arg, body) in parts {
        match kind {
            "loaded" => loaded.extend(body.lines().map(norm)),
            "config" => {
                config = body.to_string();
                for l in body.lines() {
                    let mut w = l.split_whitespace();
                    if w.next() == Some("blacklist") {
                        deny.extend(w.next().map(norm));
                    }
                }
            }
            "probe" => {
                probes.insert(arg, body);
            }
            _ => {}
        }
    }
    checks
        .iter()
        .map(|c| {
            let Some(body) = probes.get(c.name.as_str()) else {
                return Outcome::error(
                    &format!("modprobe did not report on {}", c.name),
                    &out.stdout,
                );
            };
            let p = match probe(body) {
                Ok(p) => p,
                Err(text) => {
                    return Outcome::error(
                        &format!("could not ask modprobe about {}: {}", c.name, text.trim()),
                        &text,
                    )
                }
            };
            let n = norm(&c.name);
            let is_loaded = loaded.contains(&n);
            let denied = deny.contains(&n);
            let available = is_loaded || (p.exists && (p.loadable || !denied));
            let mut a = Assert::new(format!("kernel-module {}", c.name));
            for (attr, want, got) in [
                ("loaded", c.loaded, is_loaded),
                ("loadable", c.loadable, p.loadable),
                ("deny-listed", c.deny_listed, denied),
                ("available", c.available, available),
            ] {
                if let Some(want) = want {
                    a.flag(attr, want, got);
                }
            }
            let config_lines: Vec<&str> = config
                .lines()
                .filter(|l| l.split_whitespace().nth(1).map(norm) == Some(n.clone()))
                .collect();
            a.finish(format!(
                "loaded: {is_loaded}\nmodprobe -n -v {}: {}\n{}",
                c.name,
                if p.text.is_empty() {
                    "(nothing to do)"
                } else {
                    p.text.trim()
                },
                config_lines.join("\n")
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::resources::marker;
    use crate::suites::resources::test_support::{evaluate_stdout, parse_all};
    use crate::suites::result::Status;

    /// Gathered on a Debian 12 guest (kernel 6.1.0-27-cloud-amd64) after
    /// `printf 'install cramfs /bin/false\nblacklist cramfs\n' > /etc/modprobe.d/cramfs.conf`
    /// and `install usb-storage /bin/true` without a blacklist line.
    fn captured() -> String {
        let m = marker();
        format!(
            "\n{m} loaded -\nisofs\nfuse\nvirtio_net\next4\n\
             \n{m} config -\nblacklist cramfs\nblacklist evbug\ninstall cramfs /bin/false\ninstall usb_storage /bin/true\n\
             \n{m} probe cramfs\ninstall /bin/false \n@rc 0\n\
             \n{m} probe freevxfs\nmodprobe: FATAL: Module freevxfs not found in directory /lib/modules/6.1.0-27-cloud-amd64\n@rc 1\n\
             \n{m} probe squashfs\ninsmod /lib/modules/6.1.0-27-cloud-amd64/kernel/fs/squashfs/squashfs.ko \n@rc 0\n\
             \n{m} probe isofs\n@rc 0\n\
             \n{m} probe usb-storage\ninstall /bin/true \n@rc 0\n\
             \n{m} probe udf\nmodprobe: ERROR: could not insert 'udf': Operation not permitted\n@rc 1\n\
             \n{m} end -\n"
        )
    }

    #[test]
    fn modules_by_what_modprobe_would_do() {
        let checks: Vec<KernelModuleCheck> = parse_all(&[
            "{name: cramfs, loaded: false, loadable: false, deny-listed: true, available: false}",
            "{name: freevxfs, available: false}",
            "{name: squashfs, available: false}",
            "{name: isofs, loaded: true, available: true}",
            "{name: usb-storage, loadable: false, deny-listed: true}",
            "{name: usb-storage, available: true}",
            "{name: udf, available: false}",
        ]);
        let o = evaluate_stdout(evaluate, &checks, &captured());
        assert_eq!(o[0].status, Status::Passed, "{}", o[0].message);
        // Not in the running kernel's modules: not available.
        assert_eq!(o[1].status, Status::Passed, "{}", o[1].message);
        assert_eq!(
            o[2].message,
            "kernel-module squashfs: available: expected false, got true"
        );
        assert!(
            o[2].output.contains("insmod /lib/modules"),
            "{}",
            o[2].output
        );
        assert_eq!(o[3].status, Status::Passed, "{}", o[3].message);
        // `install /bin/true` stops a load by name; without a blacklist line the module still
        // counts as available (the benchmark wants both).
        assert_eq!(
            o[4].message,
            "kernel-module usb-storage: deny-listed: expected true, got false"
        );
        assert_eq!(o[5].status, Status::Passed, "{}", o[5].message);
        assert_eq!(o[6].status, Status::Error);
        assert!(o[6].message.contains("Operation not permitted"));
    }
}
