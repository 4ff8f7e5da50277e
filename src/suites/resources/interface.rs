//! `interface`: network interfaces; MTUs from one `grep` over `/sys/class/net`, addresses from
//! one `ip -o addr show`.

use std::time::Duration;

use serde_json::Value;

use super::{all_errors, end_section, quote_all, section, sections, unique, Assert, Outcome};
use crate::suites::model::InterfaceCheck;
use crate::transport::ExecOutput;

fn mtu_path(name: &str) -> String {
    format!("/sys/class/net/{name}/mtu")
}

pub(super) fn script(checks: &[&InterfaceCheck], _timeout: Duration) -> String {
    let paths: Vec<String> = checks.iter().map(|c| mtu_path(&c.name)).collect();
    let paths = quote_all(unique(paths.iter().map(String::as_str)));
    let mut s = format!("{}grep -H '' -- {paths} 2>/dev/null\n", section("mtu", "-"));
    if checks.iter().any(|c| c.addrs.is_some()) {
        s += &format!("{}ip -o addr show || echo '@no-ip'\n", section("addr", "-"));
    }
    s + &end_section()
}

pub(super) fn evaluate(checks: &[&InterfaceCheck], out: &ExecOutput) -> Vec<Outcome> {
    let Some(parts) = sections(&out.stdout) else {
        return all_errors(checks.len(), "could not read the network interfaces", out);
    };
    let mut mtus: Vec<(String, String)> = Vec::new();
    let mut addrs: Option<Vec<(String, String)>> = None;
    for (kind, _, body) in parts {
        match kind {
            "mtu" => {
                for line in body.lines() {
                    if let Some((path, v)) = line.split_once(':') {
                        mtus.push((path.to_string(), v.to_string()));
                    }
                }
            }
            "addr" if !body.contains("@no-ip") => {
                let list = body
                    .lines()
                    .filter_map(|l| {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        let name = f.get(1)?.split('@').next()?;
                        matches!(*f.get(2)?, "inet" | "inet6").then(|| {
                            (
                                name.to_string(),
                                f.get(3).copied().unwrap_or("").to_string(),
                            )
                        })
                    })
                    .collect();
                addrs = Some(list);
            }
            _ => {}
        }
    }
    checks
        .iter()
        .map(|c| {
            let mut a = Assert::new(format!("interface {}", c.name));
            let Some((_, mtu)) = mtus.iter().find(|(p, _)| *p == mtu_path(&c.name)) else {
                a.flag_matcher("exists", &c.exists, true, false);
                return a.finish(format!("no interface {}", c.name));
            };
            a.flag_matcher("exists", &c.exists, true, true);
            a.opt("mtu", &c.mtu, || Value::from(mtu.clone()));
            let mine: Vec<String> = addrs
                .iter()
                .flatten()
                .filter(|(n, _)| *n == c.name)
                .map(|(_, a)| a.clone())
                .collect();
            if let Some(m) = &c.addrs {
                if addrs.is_none() {
                    return Outcome::error(
                        "`ip` is not available on the probe to list addresses",
                        &out.stderr,
                    );
                }
                a.matcher("addrs", m, &Value::from(mine.clone()));
            }
            a.finish(format!(
                "{}: mtu {mtu}; addresses {}",
                c.name,
                mine.join(", ")
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

    #[test]
    fn interfaces_from_sysfs_and_ip() {
        let m = marker();
        // Captured with the script above on Debian 12.
        let stdout = format!(
            "\n{m} mtu -\n/sys/class/net/eth0/mtu:1500\n/sys/class/net/lo/mtu:65536\n\
             \n{m} addr -\n1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n\
             1: lo    inet6 ::1/128 scope host \\       valid_lft forever preferred_lft forever\n\
             2: eth0    inet 10.0.2.15/24 brd 10.0.2.255 scope global dynamic eth0\\       valid_lft 86313sec preferred_lft 86313sec\n\
             \n{m} end -\n"
        );
        let checks: Vec<InterfaceCheck> = parse_all(&[
            "{name: eth0, mtu: 1500, addrs: ['10.0.2.15/24']}",
            "{name: lo, addrs: {consist-of: ['127.0.0.1/8', '::1/128']}}",
            "{name: eth1}",
            "{name: eth0, mtu: 9000}",
        ]);
        let o = evaluate_stdout(evaluate, &checks, &stdout);
        assert_eq!(o[0].status, Status::Passed, "{}", o[0].message);
        assert_eq!(o[1].status, Status::Passed, "{}", o[1].message);
        assert_eq!(
            o[2].message,
            "interface eth1: exists: expected true, got false"
        );
        assert_eq!(o[3].message, "interface eth0: mtu: expected 9000, got 1500");
    }
}
