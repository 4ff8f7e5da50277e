//! `addr`: whether a TCP, UDP or Unix-socket address accepts connections, from the probe (all
//! checks in one exec, in parallel, with bash's `/dev/tcp`, or with Perl's core socket modules
//! for Unix sockets and a given local address) or from the runner (a socket opened here).

use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use super::{all_errors, Assert, Outcome, RunnerView};
use crate::suites::model::AddrCheck;
use crate::transport::{shell_quote, ExecOutput};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Splits `tcp://host:port`, `udp://host:port` or `host:port` into protocol, host and port;
/// `unix:///path` into `unix`, the path and 0.
pub(super) fn parse_address(address: &str) -> Result<(&str, &str, u16), String> {
    let (proto, rest) = match address.split_once("://") {
        Some(("unix", path)) if path.starts_with('/') && !path.contains('\n') => {
            return Ok(("unix", path, 0))
        }
        Some(("unix", _)) => {
            return Err(format!(
                "`{address}` is not of the form unix:///absolute/path"
            ))
        }
        Some((p @ ("tcp" | "udp"), rest)) => (p, rest),
        Some((p, _)) => {
            return Err(format!(
                "`{p}://` is not supported in `{address}`; use tcp://, udp:// or unix://"
            ))
        }
        None => ("tcp", address),
    };
    let bad = || format!("`{address}` is not of the form tcp://host:port");
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/' || c == '\'') {
        return Err(bad());
    }
    Ok((proto, host, port))
}

/// Checks the address, and that a local address is given only where it can be used.
pub(super) fn validate(a: &AddrCheck) -> Result<(), String> {
    let (proto, _, _) = parse_address(&a.address)?;
    match &a.local_address {
        Some(_) if a.from == crate::suites::model::Side::Runner => {
            Err("`local-address` is supported from the probe only".into())
        }
        Some(_) if proto == "unix" => {
            Err("`local-address` does not apply to a unix:// address".into())
        }
        Some(l) if l.parse::<std::net::IpAddr>().is_err() => {
            Err(format!("local-address `{l}` is not an IP address"))
        }
        _ => Ok(()),
    }
}

/// Connects to a Unix socket (`$ARGV[0]`), with Perl's core modules (Debian's perl-base).
const PERL_UNIX: &str = "exit(IO::Socket::UNIX->new(Peer => $ARGV[0]) ? 0 : 1)";
/// Connects from a local address: host, port, protocol, local address, timeout.
const PERL_IP: &str = "exit(IO::Socket::IP->new(PeerHost => $ARGV[0], PeerPort => $ARGV[1], Proto => $ARGV[2], LocalHost => $ARGV[3], Timeout => $ARGV[4]) ? 0 : 1)";

/// How long starting perl may take on top of the connection timeout.
pub(crate) const PERL_START: Duration = Duration::from_secs(10);

fn connect_timeout(a: &AddrCheck) -> Duration {
    a.timeout.map(|t| t.0).unwrap_or(DEFAULT_TIMEOUT)
}

pub(super) fn script(checks: &[&AddrCheck], _timeout: Duration) -> String {
    let mut s = String::from("if command -v bash >/dev/null 2>&1; then\n");
    for (i, c) in checks.iter().enumerate() {
        let Ok((proto, host, port)) = parse_address(&c.address) else {
            continue;
        };
        let secs = connect_timeout(c).as_secs_f64().max(0.1);
        let attempt = match (proto, &c.local_address) {
            ("unix", _) => format!(
                "perl -MIO::Socket::UNIX -e {} {}",
                shell_quote(PERL_UNIX),
                shell_quote(host)
            ),
            (_, Some(local)) => format!(
                "perl -MIO::Socket::IP -e {} {} {port} {proto} {} {secs:.1}",
                shell_quote(PERL_IP),
                shell_quote(host),
                shell_quote(local)
            ),
            _ => format!(
                "bash -c {}",
                shell_quote(&format!("exec 3<>/dev/{proto}/{host}/{port}"))
            ),
        };
        let needs_perl = proto == "unix" || c.local_address.is_some();
        // The timeout is the connection's (perl's own `Timeout`); starting perl on a slow
        // probe gets its own allowance on top.
        let (guard, limit) = if needs_perl {
            (
                format!("if ! command -v perl >/dev/null 2>&1; then echo '@addr {i} 2'; el"),
                secs + PERL_START.as_secs_f64(),
            )
        } else {
            (String::new(), secs)
        };
        s += &format!(
            "( {guard}if timeout {limit:.1} {attempt} 2>/dev/null; then echo '@addr {i} 0'; else echo '@addr {i} 1'; fi ) &\n"
        );
    }
    s + "wait\nelse echo @no-bash; fi\necho @end\n"
}

pub(super) fn evaluate(checks: &[&AddrCheck], out: &ExecOutput) -> Vec<Outcome> {
    if out.stdout.contains("@no-bash") {
        return all_errors(
            checks.len(),
            "the probe has no bash to open connections with",
            out,
        );
    }
    if !out.stdout.ends_with("@end\n") {
        return all_errors(checks.len(), "the connection attempts did not finish", out);
    }
    checks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let reached = out.stdout.lines().find_map(|l| {
                let rest = l.strip_prefix(&format!("@addr {i} "))?;
                Some(rest.to_string())
            });
            if reached.as_deref() == Some("2") {
                return Outcome::error(
                    "the probe has no perl to open this connection with (Unix sockets and local-address need it)",
                    &out.stdout,
                );
            }
            let reached = reached.map(|r| r == "0");
            match reached {
                Some(ok) => judge(
                    c,
                    ok,
                    &format!(
                        "from the probe: {}",
                        if ok { "connected" } else { "no connection" }
                    ),
                ),
                None => Outcome::error("no result recorded for this address", &out.stdout),
            }
        })
        .collect()
}

fn judge(c: &AddrCheck, reached: bool, output: &str) -> Outcome {
    let mut a = Assert::new(format!("addr {}", c.address));
    a.flag_matcher("reachable", &c.reachable, true, reached);
    a.finish(output.to_string())
}

/// Opens the connection from the runner; the host `probe` is mapped through `view`.
pub(super) fn connect_from_runner(c: &AddrCheck, view: Option<&RunnerView>) -> Outcome {
    let (proto, host, port) = match parse_address(&c.address) {
        Ok(p) => p,
        Err(e) => return Outcome::error(&e, ""),
    };
    if proto == "unix" {
        return match std::os::unix::net::UnixStream::connect(host) {
            Ok(_) => judge(c, true, &format!("from the runner: connected to {host}")),
            Err(e) => judge(c, false, &format!("from the runner: {host}: {e}")),
        };
    }
    let (host, port) = match view {
        Some(v) => v.map(host, port),
        None if host == "probe" => {
            return Outcome::error("`from: runner` with host `probe` needs the provider's view of the probe, and none was given", "")
        }
        None => (host.to_string(), port),
    };
    let addrs = match (host.as_str(), port).to_socket_addrs() {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => {
            return judge(
                c,
                false,
                &format!("from the runner: {host}:{port} does not resolve: {e}"),
            )
        }
    };
    let timeout = connect_timeout(c);
    let mut last = String::from("no address");
    for sa in addrs {
        let result = if proto == "udp" {
            UdpSocket::bind(if sa.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })
                .and_then(|s| s.connect(sa))
        } else {
            TcpStream::connect_timeout(&sa, timeout).map(|_| ())
        };
        match result {
            Ok(()) => return judge(c, true, &format!("from the runner: connected to {sa}")),
            Err(e) => last = format!("{sa}: {e}"),
        }
    }
    judge(c, false, &format!("from the runner: {last}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::result::Status;
    use std::collections::BTreeMap;
    use std::net::TcpListener;

    fn addr(y: &str) -> AddrCheck {
        serde_yaml::from_str(y).unwrap()
    }

    #[test]
    fn addresses_parse() {
        assert_eq!(
            parse_address("tcp://10.0.0.1:443").unwrap(),
            ("tcp", "10.0.0.1", 443)
        );
        assert_eq!(parse_address("udp://[::1]:53").unwrap(), ("udp", "::1", 53));
        assert_eq!(
            parse_address("example.org:80").unwrap(),
            ("tcp", "example.org", 80)
        );
        assert!(parse_address("http://x:1").is_err());
        assert_eq!(
            parse_address("unix:///run/a.sock").unwrap(),
            ("unix", "/run/a.sock", 0)
        );
        assert!(parse_address("unix://run/a.sock").is_err());
        assert!(validate(&addr("{address: 'unix:///a', local-address: 127.0.0.1}")).is_err());
        assert!(validate(&addr("{address: 'tcp://a:1', local-address: nope}")).is_err());
        assert!(validate(&addr("{address: 'tcp://a:1', local-address: '::1'}")).is_ok());
        assert!(parse_address("x").is_err());
    }

    #[test]
    fn probe_side_results_are_read_per_check() {
        let checks = [
            addr("{address: 'tcp://10.0.0.1:22'}"),
            addr("{address: 'tcp://10.0.0.1:23', reachable: false}"),
            addr("{address: 'a:1'}"),
        ];
        let refs: Vec<&AddrCheck> = checks.iter().collect();
        let s = script(&refs, Duration::from_secs(10));
        assert!(
            s.contains("timeout 5.0 bash -c 'exec 3<>/dev/tcp/10.0.0.1/22'"),
            "{s}"
        );
        let out = ExecOutput {
            stdout: "@addr 1 1\n@addr 0 0\n@addr 2 1\n@end\n".into(),
            ..Default::default()
        };
        let o = evaluate(&refs, &out);
        assert_eq!(o[0].status, Status::Passed);
        assert_eq!(o[1].status, Status::Passed);
        assert_eq!(
            o[2].message,
            "addr a:1: reachable: expected true, got false"
        );
    }

    #[test]
    fn runner_side_maps_the_probe_through_forwarded_ports() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let forwarded = l.local_addr().unwrap().port();
        let view = RunnerView {
            host: "127.0.0.1".into(),
            ports: BTreeMap::from([(22, forwarded)]),
        };
        let o = connect_from_runner(&addr("{address: 'probe:22', from: runner}"), Some(&view));
        assert_eq!(o.status, Status::Passed, "{}", o.message);
        drop(l);
        let o = connect_from_runner(
            &addr("{address: 'probe:22', from: runner, timeout: 1s}"),
            Some(&view),
        );
        assert_eq!(o.status, Status::Failed);
        let o = connect_from_runner(&addr("{address: 'probe:22', from: runner}"), None);
        assert_eq!(o.status, Status::Error);
    }
}
