//! `port`: listening sockets, from one read of `/proc/net/{tcp,tcp6,udp,udp6}` for all checks
//! (the same source Goss uses; no dependency on `ss` or `netstat`).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde_json::Value;

use super::{all_errors, Assert, Outcome};
use crate::suites::model::{PortCheck, Protocol};
use crate::transport::ExecOutput;

const TABLES: [&str; 4] = ["tcp", "tcp6", "udp", "udp6"];

pub(super) fn script(_checks: &[&PortCheck], _timeout: Duration) -> String {
    let files: Vec<String> = TABLES.iter().map(|t| format!("/proc/net/{t}")).collect();
    format!("grep -H '' {}", files.join(" "))
}

/// A socket in the listening state (TCP LISTEN, or an unconnected bound UDP socket).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Listener {
    /// `tcp`, `tcp6`, `udp` or `udp6`.
    pub table: &'static str,
    pub ip: String,
    pub port: u16,
}

/// Every listener in `grep -H '' /proc/net/…` output (none when nothing could be read).
pub(crate) fn listeners(stdout: &str) -> Vec<Listener> {
    parse(stdout).unwrap_or_default()
}

pub(super) fn evaluate(checks: &[&PortCheck], out: &ExecOutput) -> Vec<Outcome> {
    let listeners = match parse(&out.stdout) {
        Some(l) => l,
        None => {
            let e = format!("could not read /proc/net/tcp: {}", out.stderr.trim());
            return all_errors(checks.len(), &e, out);
        }
    };
    checks.iter().map(|c| evaluate_one(c, &listeners)).collect()
}

fn tables(p: Protocol) -> &'static [&'static str] {
    match p {
        Protocol::Tcp => &["tcp", "tcp6"],
        Protocol::Tcp4 => &["tcp"],
        Protocol::Tcp6 => &["tcp6"],
        Protocol::Udp => &["udp", "udp6"],
        Protocol::Udp4 => &["udp"],
        Protocol::Udp6 => &["udp6"],
    }
}

fn evaluate_one(c: &PortCheck, listeners: &[Listener]) -> Outcome {
    let proto = format!("{:?}", c.protocol).to_lowercase();
    let matching: Vec<&Listener> = listeners
        .iter()
        .filter(|l| l.port == c.port && tables(c.protocol).contains(&l.table))
        .collect();
    let mut ips: Vec<String> = matching.iter().map(|l| l.ip.clone()).collect();
    ips.dedup();
    let mut a = Assert::new(format!("port {proto}/{}", c.port));
    a.flag_matcher("listening", &c.listening, true, !matching.is_empty());
    if a.ok() {
        a.opt("ip", &c.ip, || Value::from(ips.clone()));
    }
    let output = if matching.is_empty() {
        format!("nothing listens on {proto} port {}", c.port)
    } else {
        matching
            .iter()
            .map(|l| format!("{} {}:{}", l.table, l.ip, l.port))
            .collect::<Vec<_>>()
            .join("\n")
    };
    a.finish(output)
}

/// Reads `grep -H '' /proc/net/…` output; `None` when not even the IPv4 TCP table was read.
fn parse(stdout: &str) -> Option<Vec<Listener>> {
    let mut seen_tcp = false;
    let mut out = Vec::new();
    for line in stdout.lines() {
        let Some((file, rest)) = line.split_once(':') else {
            continue;
        };
        let Some(table) = TABLES.iter().find(|t| file == format!("/proc/net/{t}")) else {
            continue;
        };
        seen_tcp |= *table == "tcp";
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() < 4 || f[0] == "sl" {
            continue;
        }
        let (local, remote, state) = (f[1], f[2], f[3]);
        let listening = if table.starts_with("tcp") {
            state == "0A"
        } else {
            state == "07" && remote.ends_with(":0000")
        };
        if !listening {
            continue;
        }
        let (ip, port) = local.split_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        out.push(Listener {
            table,
            ip: decode_ip(ip)?,
            port,
        });
    }
    seen_tcp.then_some(out)
}

/// Decodes the kernel's hex address: 32-bit words in host (little-endian) byte order.
fn decode_ip(hex: &str) -> Option<String> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).map(u32::swap_bytes))
        .collect::<Result<_, _>>()
        .ok()?;
    match words[..] {
        [a] => Some(Ipv4Addr::from(a.to_be_bytes()).to_string()),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (i, w) in [a, b, c, d].iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
            }
            Some(Ipv6Addr::from(bytes).to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::resources::test_support::evaluate_stdout;
    use crate::suites::result::Status;

    /// Captured on Debian 12 (sshd on 0.0.0.0:22 and [::]:22, resolved on 127.0.0.53:53,
    /// an established connection, chrony on udp 127.0.0.1:323 and ::1:323).
    const PROC: &str = "\
/proc/net/tcp:  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
/proc/net/tcp:   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1527 1 0000000034efb490 100 0 0 10 0
/proc/net/tcp:   1: 3500007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 43224 1 000000005fc12b6a 100 0 0 10 0
/proc/net/tcp:   2: 0F02000A:0016 0202000A:EAD2 01 00000000:00000000 02:00000236 00000000     0        0 0 3 0000000038a808da
/proc/net/tcp6:  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
/proc/net/tcp6:   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1529 1 0000000000000000 100 0 0 10 0
/proc/net/udp:   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
/proc/net/udp:  1: 0100007F:0143 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1300 2 0000000000000000 0
/proc/net/udp6:   sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
/proc/net/udp6:  2: 00000000000000000000000001000000:0143 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1301 2 0000000000000000 0
";

    fn port(yaml: &str) -> PortCheck {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn run(checks: &[PortCheck], stdout: &str) -> Vec<Outcome> {
        evaluate_stdout(evaluate, checks, stdout)
    }

    #[test]
    fn listeners_are_found_per_family() {
        let checks = [
            port("{port: 22, ip: {contains: '0.0.0.0'}}"),
            port("{port: 22, protocol: tcp6, ip: ['::']}"),
            port("{port: 53, ip: ['127.0.0.53']}"),
            port("{port: 80}"),
            port("{port: 80, listening: false}"),
            port("{port: 323, protocol: udp, ip: {consist-of: ['127.0.0.1', '::1']}}"),
            port("{port: 323, protocol: tcp}"),
        ];
        let o = run(&checks, PROC);
        for i in [0, 1, 2, 4, 5] {
            assert_eq!(o[i].status, Status::Passed, "{i}: {}", o[i].message);
        }
        assert_eq!(
            o[3].message,
            "port tcp/80: listening: expected true, got false"
        );
        assert_eq!(o[6].status, Status::Failed);
        assert!(o[0].output.contains("tcp6 :::22"), "{}", o[0].output);
    }

    #[test]
    fn unreadable_tables_are_an_error() {
        let o = run(&[port("{port: 22}")], "");
        assert_eq!(o[0].status, Status::Error);
    }

    #[test]
    fn addresses_decode_like_ss_prints_them() {
        assert_eq!(decode_ip("0100007F").unwrap(), "127.0.0.1");
        assert_eq!(
            decode_ip("0000000000000000FFFF00000100007F").unwrap(),
            "::ffff:127.0.0.1"
        );
        assert_eq!(
            decode_ip("B80D0120000000000000000001000000").unwrap(),
            "2001:db8::1"
        );
    }
}
