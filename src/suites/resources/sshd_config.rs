//! `sshd-config`: sshd's effective configuration, from one `sshd -T` with a connection context,
//! so `Include`d drop-ins and matching `Match` blocks count as sshd would apply them.

use std::collections::HashMap;
use std::time::Duration;

use super::{all_errors, end_section, section, sections, Outcome};
use crate::suites::model::SshdConfigCheck;
use crate::transport::ExecOutput;

pub(super) fn validate(c: &SshdConfigCheck) -> Result<(), String> {
    if c.keywords.is_empty() {
        return Err("`sshd-config` names no keyword; write `{keyword: matcher}`".into());
    }
    for k in c.keywords.keys() {
        if k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(format!(
                "`{k}` is not an sshd keyword as `sshd -T` prints it (lower case letters, e.g. \
                 `permitrootlogin`)"
            ));
        }
    }
    Ok(())
}

pub(super) fn script(_checks: &[&SshdConfigCheck], _timeout: Duration) -> String {
    // The connection context: the root user from this host's name and the loopback address.
    // Reading the host name with the shell's `read` starts no process.
    format!(
        "{}if [ -x /usr/sbin/sshd ]; then h=localhost; read -r h < /proc/sys/kernel/hostname; \
         /usr/sbin/sshd -T -C \"user=root,host=$h,addr=127.0.0.1\" 2>&1; echo \"@rc $?\"; \
         else echo '@missing'; fi\n{}",
        section("sshd", "-"),
        end_section()
    )
}

/// Keyword → every value `sshd -T` printed for it, in order.
fn parse(body: &str) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for line in body.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with("@rc ") {
            continue;
        }
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        map.entry(k.to_ascii_lowercase())
            .or_default()
            .push(v.to_string());
    }
    map
}

pub(super) fn evaluate(checks: &[&SshdConfigCheck], out: &ExecOutput) -> Vec<Outcome> {
    let body = sections(&out.stdout).and_then(|p| {
        p.into_iter()
            .find(|(k, _, _)| *k == "sshd")
            .map(|(_, _, b)| b.to_string())
    });
    let Some(body) = body else {
        return all_errors(checks.len(), "could not run sshd -T on the probe", out);
    };
    if body.trim() == "@missing" {
        return all_errors(
            checks.len(),
            "sshd is not installed on the probe (/usr/sbin/sshd is missing)",
            out,
        );
    }
    let rc = body
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("@rc "))
        .and_then(|c| c.trim().parse::<i32>().ok());
    if rc != Some(0) {
        let said: Vec<&str> = body.lines().filter(|l| !l.starts_with("@rc ")).collect();
        let e = format!(
            "`sshd -T` failed on the probe: {}",
            said.join("; ").chars().take(300).collect::<String>()
        );
        return all_errors(checks.len(), &e, out);
    }
    let config = parse(&body);
    checks
        .iter()
        .map(|c| {
            super::assert_settings("sshd-config", &c.keywords, |k| {
                config.get(k).map(|v| v.join("\n")).unwrap_or_default()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::resources::marker;
    use crate::suites::resources::test_support::{evaluate_output, evaluate_stdout, output};
    use crate::suites::result::Status;

    /// `sshd -T -C user=root,host=debian,addr=127.0.0.1` on a stock Debian 12 (OpenSSH 9.2p1)
    /// with a drop-in `/etc/ssh/sshd_config.d/50-cloud-init.conf` setting
    /// `PasswordAuthentication no`; cut to the keywords the tests use and a few neighbours.
    const STOCK: &str = "port 22\naddressfamily any\nlistenaddress [::]:22\nlistenaddress 0.0.0.0:22\n\
usepam yes\nlogingracetime 120\nx11displayoffset 10\nmaxauthtries 6\nmaxsessions 10\n\
clientaliveinterval 0\nclientalivecountmax 3\nmaxstartups 10:30:100\npermitrootlogin without-password\n\
passwordauthentication no\nkbdinteractiveauthentication no\nx11forwarding yes\nignorerhosts yes\n\
hostbasedauthentication no\npermitemptypasswords no\npermituserenvironment no\nloglevel INFO\n\
banner none\ndisableforwarding no\n\
ciphers chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com\n\
macs umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1\n\
kexalgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256\n\
hostkey /etc/ssh/ssh_host_rsa_key\nhostkey /etc/ssh/ssh_host_ecdsa_key\nhostkey /etc/ssh/ssh_host_ed25519_key\n\
acceptenv LANG\nacceptenv LC_*\nsubsystem sftp /usr/lib/openssh/sftp-server\n";

    fn checks(yamls: &[&str]) -> Vec<SshdConfigCheck> {
        yamls
            .iter()
            .map(|y| serde_yaml::from_str(y).unwrap())
            .collect()
    }

    fn gathered(body: &str, rc: i32) -> String {
        let m = marker();
        format!("\n{m} sshd -\n{body}@rc {rc}\n\n{m} end -\n")
    }

    #[test]
    fn effective_values_are_matched() {
        let c = checks(&[
            "{maxauthtries: {le: 4}}",
            "{permitrootlogin: 'no'}",
            "{passwordauthentication: 'no', permitemptypasswords: 'no'}",
            "{ciphers: ['!3des-cbc', '!/-cbc/']}",
            "{clientaliveinterval: {gt: 0}, clientalivecountmax: {gt: 0}}",
            "{macs: {not: {regex: 'hmac-md5|-96'}}}",
            "{hostkey: {contains: ed25519_key}, acceptenv: ['LC_*']}",
            "{allowusers: {not: ''}}",
            "{maxstartups: {regex: '^10:30:(60|100)$'}}",
        ]);
        let o = evaluate_stdout(evaluate, &c, &gathered(STOCK, 0));
        assert_eq!(o[0].status, Status::Failed);
        assert_eq!(
            o[0].message,
            "sshd-config: maxauthtries: expected <= 4, got 6"
        );
        assert_eq!(
            o[1].message,
            "sshd-config: permitrootlogin: expected \"no\", got without-password"
        );
        // The drop-in's `PasswordAuthentication no` counts: sshd -T applies it.
        assert_eq!(o[2].status, Status::Passed, "{}", o[2].message);
        assert_eq!(o[3].status, Status::Passed, "{}", o[3].message);
        assert_eq!(o[4].status, Status::Failed);
        assert!(o[4]
            .message
            .contains("clientaliveinterval: expected > 0, got 0"));
        assert!(
            !o[4].message.contains("clientalivecountmax"),
            "{}",
            o[4].message
        );
        assert_eq!(o[5].status, Status::Passed, "{}", o[5].message);
        assert_eq!(o[6].status, Status::Passed, "{}", o[6].message);
        // A keyword sshd -T does not print is the empty string.
        assert_eq!(o[7].status, Status::Failed);
        assert_eq!(o[8].status, Status::Passed, "{}", o[8].message);
    }

    #[test]
    fn sshd_that_cannot_start_or_is_missing_is_an_error() {
        let c = checks(&["{maxauthtries: 4}"]);
        let o = evaluate_stdout(
            evaluate,
            &c,
            &gathered("Missing privilege separation directory: /run/sshd\n", 255),
        );
        assert_eq!(o[0].status, Status::Error);
        assert!(
            o[0].message.contains("Missing privilege separation"),
            "{}",
            o[0].message
        );
        let m = marker();
        let o = evaluate_stdout(
            evaluate,
            &c,
            &format!("\n{m} sshd -\n@missing\n\n{m} end -\n"),
        );
        assert_eq!(o[0].status, Status::Error);
        assert!(o[0].message.contains("not installed"));
        let o = evaluate_output(evaluate, &c, &output(1, "", "connection lost"));
        assert_eq!(o[0].status, Status::Error);
    }

    #[test]
    fn keywords_must_be_written_as_sshd_prints_them() {
        let bad: Result<SshdConfigCheck, _> = serde_yaml::from_str("{MaxAuthTries: 4}");
        assert!(validate(&bad.unwrap())
            .unwrap_err()
            .contains("`MaxAuthTries`"));
        let empty: SshdConfigCheck = serde_yaml::from_str("{}").unwrap();
        assert!(validate(&empty).is_err());
    }
}
