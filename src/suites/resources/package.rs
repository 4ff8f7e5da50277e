//! `package`: installed packages and their versions, from one `dpkg-query` (or `rpm -q`) for all.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::{all_errors, quote_all, unique, Assert, Outcome};
use crate::suites::model::PackageCheck;
use crate::transport::ExecOutput;

const DPKG_FORMAT: &str = r"${Package}\t${Architecture}\t${db:Status-Status}\t${Version}\n";
const RPM_FORMAT: &str = r"%{NAME}\t%{ARCH}\tinstalled\t%{VERSION}-%{RELEASE}\n";

pub(super) fn validate(p: &PackageCheck) -> Result<(), String> {
    if p.name.is_empty() || p.name.contains(char::is_whitespace) {
        return Err(format!("`{}` is not a package name", p.name));
    }
    Ok(())
}

pub(super) fn script(checks: &[&PackageCheck], _timeout: Duration) -> String {
    let names = quote_all(unique(checks.iter().map(|c| c.name.as_str())));
    format!(
        "if command -v dpkg-query >/dev/null 2>&1; then echo dpkg; \
         LC_ALL=C dpkg-query -W -f='{DPKG_FORMAT}' -- {names}; \
         elif command -v rpm >/dev/null 2>&1; then echo rpm; \
         LC_ALL=C rpm -q --qf '{RPM_FORMAT}' {names}; \
         else echo none; fi"
    )
}

/// One installed or known package instance.
#[derive(Debug, Clone, PartialEq)]
struct Pkg {
    arch: String,
    installed: bool,
    version: String,
}

pub(super) fn evaluate(checks: &[&PackageCheck], out: &ExecOutput) -> Vec<Outcome> {
    let facts = match parse(out) {
        Ok(f) => f,
        Err(e) => return all_errors(checks.len(), &e, out),
    };
    checks.iter().map(|c| evaluate_one(c, &facts)).collect()
}

fn evaluate_one(c: &PackageCheck, facts: &HashMap<String, Vec<Pkg>>) -> Outcome {
    let found: &[Pkg] = facts.get(&c.name).map(Vec::as_slice).unwrap_or(&[]);
    let versions: Vec<Value> = found
        .iter()
        .filter(|p| p.installed)
        .map(|p| Value::from(p.version.clone()))
        .collect();
    let mut a = Assert::new(format!("package {}", c.name));
    a.flag_matcher("installed", &c.installed, true, !versions.is_empty());
    if a.ok() {
        a.opt("version", &c.version, || Value::Array(versions.clone()));
    }
    let output = if found.is_empty() {
        format!("{}: not known to the package manager", c.name)
    } else {
        found
            .iter()
            .map(|p| {
                let state = if p.installed {
                    "installed"
                } else {
                    "not installed"
                };
                format!("{}:{} {} {}", c.name, p.arch, p.version, state)
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    a.finish(output)
}

/// Reads the script's output into packages by name (and by `name:arch`).
fn parse(out: &ExecOutput) -> Result<HashMap<String, Vec<Pkg>>, String> {
    let mut lines = out.stdout.lines();
    let manager = lines.next().unwrap_or("");
    match manager {
        "dpkg" if out.exit_code > 1 => {
            return Err(format!("dpkg-query failed: {}", out.stderr.trim()));
        }
        "rpm" if out.stderr.contains("error:") => {
            return Err(format!("rpm -q failed: {}", out.stderr.trim()));
        }
        "dpkg" | "rpm" => {}
        "none" => return Err("the probe has neither dpkg-query nor rpm".into()),
        _ => {
            return Err(format!(
                "could not read the package query's output (exit status {}): {}",
                out.exit_code,
                out.stderr.trim()
            ))
        }
    }
    let mut facts: HashMap<String, Vec<Pkg>> = HashMap::new();
    for line in lines {
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, arch, status, version] = fields[..] else {
            continue; // rpm's "package x is not installed"
        };
        let pkg = Pkg {
            arch: arch.to_string(),
            installed: status == "installed",
            version: version.to_string(),
        };
        facts
            .entry(format!("{name}:{arch}"))
            .or_default()
            .push(pkg.clone());
        facts.entry(name.to_string()).or_default().push(pkg);
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::resources::test_support::{evaluate_output, output};
    use crate::suites::result::Status;

    /// Captured on Debian 12 with the format above: `bash libc6:amd64 nosuchpkg dpkg`, exit 1.
    const DPKG: &str = "dpkg\nbash\tamd64\tinstalled\t5.2.15-2+b8\ndpkg\tamd64\tinstalled\t1.21.22\nlibc6\tamd64\tinstalled\t2.36-9+deb12u14\nnginx\tamd64\tconfig-files\t1.22.1-9\n";

    fn pkg(yaml: &str) -> PackageCheck {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn run(checks: &[PackageCheck], stdout: &str, code: i32, stderr: &str) -> Vec<Outcome> {
        evaluate_output(evaluate, checks, &output(code, stdout, stderr))
    }

    #[test]
    fn dpkg_facts_answer_every_package_check() {
        let checks = [
            pkg("{name: bash}"),
            pkg("{name: 'libc6:amd64', version: {semver: '>=2.36'}}"),
            pkg("{name: nosuchpkg}"),
            pkg("{name: nginx, installed: false}"),
            pkg("{name: dpkg, versions: ['1.21.22']}"),
            pkg("{name: bash, version: '5.1'}"),
        ];
        let o = run(
            &checks,
            DPKG,
            1,
            "dpkg-query: no packages found matching nosuchpkg\n",
        );
        assert_eq!(o[0].status, Status::Passed, "{}", o[0].message);
        assert_eq!(o[1].status, Status::Passed, "{}", o[1].message);
        assert_eq!(o[2].status, Status::Failed);
        assert_eq!(
            o[2].message,
            "package nosuchpkg: installed: expected true, got false"
        );
        assert_eq!(o[3].status, Status::Passed, "config-files is not installed");
        assert_eq!(o[4].status, Status::Passed, "{}", o[4].message);
        assert_eq!(o[5].status, Status::Failed);
        assert_eq!(o[5].actual.as_deref(), Some("version: 5.2.15-2+b8"));
    }

    #[test]
    fn rpm_output_is_understood() {
        let stdout =
            "rpm\nbash\tx86_64\tinstalled\t5.2.15-3.amzn2023\npackage nginx is not installed\n";
        let o = run(&[pkg("{name: bash}"), pkg("{name: nginx}")], stdout, 1, "");
        assert_eq!(o[0].status, Status::Passed);
        assert_eq!(o[1].status, Status::Failed);
    }

    #[test]
    fn a_broken_query_is_an_error() {
        let o = run(
            &[pkg("{name: bash}")],
            "dpkg\n",
            2,
            "dpkg-query: error: database locked\n",
        );
        assert_eq!(o[0].status, Status::Error);
        let o = run(&[pkg("{name: bash}")], "", 255, "");
        assert_eq!(o[0].status, Status::Error);
    }

    #[test]
    fn the_script_asks_once_for_all_names() {
        let checks = [
            pkg("{name: bash}"),
            pkg("{name: curl}"),
            pkg("{name: bash}"),
        ];
        let refs: Vec<&PackageCheck> = checks.iter().collect();
        let s = script(&refs, Duration::from_secs(60));
        assert_eq!(s.matches("dpkg-query -W").count(), 1);
        assert!(s.contains("-- bash curl;"), "{s}");
    }
}
