//! `kernel-param`: sysctl values, from one `grep` over the `/proc/sys` files of all parameters.

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
    format!("grep -H '' -- {}; echo @end", quote_all(paths))
}

pub(super) fn evaluate(checks: &[&KernelParamCheck], out: &ExecOutput) -> Vec<Outcome> {
    if let Some(e) = missing_tool(out, "grep") {
        return all_errors(checks.len(), &e, out);
    }
    let Some(listing) = out.stdout.strip_suffix("@end\n") else {
        return all_errors(checks.len(), "could not read /proc/sys", out);
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
            let value = match values.get(path.as_str()) {
                Some(lines) => lines.join("\n"),
                None if out.stderr.contains(&format!("{path}: No such file")) => {
                    a.row(
                        "value",
                        &c.value.to_string(),
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
            a.matcher("value", &c.value, &Value::from(value.clone()));
            a.finish(format!("{} = {value}", c.name))
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
}
