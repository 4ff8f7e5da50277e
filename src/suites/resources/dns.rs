//! `dns`: name resolution on the probe, all checks in one exec: `getent ahosts` (the system
//! resolver, as Goss uses without a server) or `dig` against a given server.

use std::time::Duration;

use serde_json::Value;

use super::{all_errors, end_section, section, sections, Assert, Outcome};
use crate::suites::model::DnsCheck;
use crate::transport::{shell_quote, ExecOutput};

const SERVER_TYPES: &[&str] = &["A", "AAAA", "CNAME", "MX", "NS", "PTR", "SRV", "TXT", "CAA"];

pub(super) fn validate(d: &DnsCheck) -> Result<(), String> {
    if d.name.is_empty() || d.name.contains(char::is_whitespace) {
        return Err(format!("`{}` is not a host name", d.name));
    }
    match (d.record_type.as_deref(), &d.server) {
        (None | Some("A" | "AAAA"), _) => Ok(()),
        (Some(t), Some(_)) if SERVER_TYPES.contains(&t) => Ok(()),
        (Some(t), None) if SERVER_TYPES.contains(&t) => {
            Err(format!("a `{t}` record can only be checked with `server`"))
        }
        (Some(t), _) => Err(format!(
            "unknown record type `{t}`; accepted: {}",
            SERVER_TYPES.join(", ")
        )),
    }
}

fn command(d: &DnsCheck) -> String {
    let name = shell_quote(&d.name);
    match &d.server {
        None => {
            let db = match d.record_type.as_deref() {
                Some("A") => "ahostsv4",
                Some("AAAA") => "ahostsv6",
                _ => "ahosts",
            };
            format!("getent {db} {name}")
        }
        Some(server) => {
            let (host, port) = match server.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h, p),
                _ => (server.as_str(), "53"),
            };
            let t = d.record_type.as_deref().unwrap_or("A");
            format!(
                "if command -v dig >/dev/null 2>&1; then dig +short +time=2 +tries=1 @{} -p {} {t} {name}; else echo @no-dig; fi",
                shell_quote(host),
                shell_quote(port)
            )
        }
    }
}

pub(super) fn script(checks: &[&DnsCheck], _timeout: Duration) -> String {
    let mut s = String::new();
    for (i, c) in checks.iter().enumerate() {
        s += &section("dns", &i.to_string());
        s += &format!("{}; echo \"@rc=$?\"\n", command(c));
    }
    s + &end_section()
}

pub(super) fn evaluate(checks: &[&DnsCheck], out: &ExecOutput) -> Vec<Outcome> {
    let Some(parts) = sections(&out.stdout) else {
        return all_errors(checks.len(), "the name lookups did not finish", out);
    };
    checks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let Some((_, _, body)) = parts
                .iter()
                .find(|(k, a, _)| *k == "dns" && *a == i.to_string())
            else {
                return Outcome::error("no answer recorded for this lookup", &out.stdout);
            };
            if body.contains("@no-dig") {
                return Outcome::error(
                    "`dig` is not available on the probe to ask a given server",
                    body,
                );
            }
            let answers: Vec<&str> = body
                .lines()
                .filter(|l| !l.starts_with("@rc=") && !l.starts_with(";;"))
                .collect();
            let mut addrs: Vec<Value> = Vec::new();
            for line in &answers {
                let value = match (&c.server, c.record_type.as_deref()) {
                    (None, _) => line.split_whitespace().next().unwrap_or(""),
                    (Some(_), None | Some("A" | "AAAA"))
                        if line.parse::<std::net::IpAddr>().is_err() =>
                    {
                        continue
                    }
                    (Some(_), _) => line.trim(),
                };
                let v = Value::from(value.to_string());
                if !value.is_empty() && !addrs.contains(&v) {
                    addrs.push(v);
                }
            }
            let mut a = Assert::new(format!("dns {}", c.name));
            a.flag_matcher("resolvable", &c.resolvable, true, !addrs.is_empty());
            a.opt("addrs", &c.addrs, || Value::Array(addrs.clone()));
            a.finish(format!("$ {}\n{body}", command(c)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::resources::marker;
    use crate::suites::result::Status;

    fn dns(y: &str) -> DnsCheck {
        serde_yaml::from_str(y).unwrap()
    }

    #[test]
    fn lookups_through_getent_and_dig() {
        let m = marker();
        let checks = [
            dns("{name: localhost, addrs: {contains: 127.0.0.1}}"),
            dns("{name: nx.invalid}"),
            dns("{name: example.org, server: '10.0.2.3', addrs: ['93.184.215.14']}"),
            dns("{name: example.org, type: MX, server: '10.0.2.3:5353'}"),
        ];
        let refs: Vec<&DnsCheck> = checks.iter().collect();
        let s = script(&refs, Duration::from_secs(5));
        assert!(s.contains("getent ahosts localhost; echo"), "{s}");
        assert!(s.contains("@10.0.2.3 -p 5353 MX example.org"), "{s}");
        // getent output captured on Debian 12.
        let stdout = format!(
            "\n{m} dns 0\n127.0.0.1       STREAM localhost\n127.0.0.1       DGRAM  \n127.0.0.1       RAW    \n@rc=0\n\
             \n{m} dns 1\n@rc=2\n\n{m} dns 2\nexample.org.cdn.\n93.184.215.14\n@rc=0\n\n{m} dns 3\n@no-dig\n@rc=0\n\n{m} end -\n"
        );
        let o = evaluate(
            &refs,
            &ExecOutput {
                stdout,
                ..Default::default()
            },
        );
        assert_eq!(o[0].status, Status::Passed, "{}", o[0].message);
        assert_eq!(
            o[1].message,
            "dns nx.invalid: resolvable: expected true, got false"
        );
        assert_eq!(o[2].status, Status::Passed, "{}", o[2].message);
        assert_eq!(o[3].status, Status::Error);
    }

    #[test]
    fn record_types_need_a_server() {
        assert!(validate(&dns("{name: x, type: MX}"))
            .unwrap_err()
            .contains("only be checked with `server`"));
        assert!(validate(&dns("{name: x, type: BOGUS, server: 1.1.1.1}"))
            .unwrap_err()
            .contains("unknown record type"));
    }
}
