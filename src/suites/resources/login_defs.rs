//! `login-defs`: settings of `/etc/login.defs`, from one read of the file.

use std::collections::HashMap;
use std::time::Duration;

use super::{all_errors, end_section, section, sections, Outcome};
use crate::suites::model::LoginDefsCheck;
use crate::transport::ExecOutput;

const PATH: &str = "/etc/login.defs";

pub(super) fn validate(c: &LoginDefsCheck) -> Result<(), String> {
    if c.keys.is_empty() {
        return Err("`login-defs` names no key; write `{PASS_MAX_DAYS: {le: 365}}`".into());
    }
    for k in c.keys.keys() {
        if k.is_empty() || k.contains(|c: char| c.is_whitespace() || c == '#') {
            return Err(format!(
                "`{k}` is not a login.defs key (e.g. `PASS_MAX_DAYS`)"
            ));
        }
    }
    Ok(())
}

pub(super) fn script(_checks: &[&LoginDefsCheck], _timeout: Duration) -> String {
    format!(
        "{}if [ -e {PATH} ]; then cat {PATH} && echo @ok; else echo @missing; fi\n{}",
        section("login.defs", "-"),
        end_section()
    )
}

/// Key → the value of its last uncommented assignment.
fn parse(text: &str) -> HashMap<&str, &str> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        map.insert(k, v.trim().trim_matches('"'));
    }
    map
}

pub(super) fn evaluate(checks: &[&LoginDefsCheck], out: &ExecOutput) -> Vec<Outcome> {
    let body = sections(&out.stdout).and_then(|p| {
        p.into_iter()
            .find(|(k, _, _)| *k == "login.defs")
            .map(|(_, _, b)| b)
    });
    let text = match body {
        Some(b) if b.trim_end().ends_with("@missing") => "",
        Some(b) => match b.trim_end().strip_suffix("@ok") {
            Some(t) => t,
            None => return all_errors(checks.len(), &format!("could not read {PATH}"), out),
        },
        None => return all_errors(checks.len(), &format!("could not read {PATH}"), out),
    };
    let defs = parse(text);
    checks
        .iter()
        .map(|c| {
            super::assert_settings("login-defs", &c.keys, |k| {
                defs.get(k).copied().unwrap_or("").to_string()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::resources::marker;
    use crate::suites::resources::test_support::{evaluate_stdout, parse_all};
    use crate::suites::result::Status;

    /// The relevant part of Debian 12's stock `/etc/login.defs` (login 1:4.13), with a later
    /// override of `PASS_MAX_DAYS` appended as a hardening script would.
    const STOCK: &str =
        "#\n# /etc/login.defs - Configuration control definitions for the login package.\n\
MAIL_DIR        /var/mail\n#FAILLOG_ENAB\nLOG_OK_LOGINS\t\tno\nUMASK\t\t022\nHOME_MODE\t0700\n\
PASS_MAX_DAYS\t99999\nPASS_MIN_DAYS\t0\nPASS_WARN_AGE\t7\nUID_MIN\t\t\t 1000\n\
#ENCRYPT_METHOD DES\n#SHA_CRYPT_MIN_ROUNDS 5000\nPASS_MAX_DAYS 365\n";

    #[test]
    fn last_uncommented_assignment_counts() {
        let m = marker();
        let stdout = format!("\n{m} login.defs -\n{STOCK}@ok\n\n{m} end -\n");
        let checks: Vec<LoginDefsCheck> = parse_all(&[
            "{PASS_MAX_DAYS: {le: 365}, PASS_MIN_DAYS: {ge: 1}}",
            "{ENCRYPT_METHOD: {regex: '^(SHA512|YESCRYPT)$'}}",
            "{UMASK: {regex: '^0?[0-7]27$'}}",
            "{PASS_WARN_AGE: {ge: 7}, UID_MIN: 1000}",
        ]);
        let o = evaluate_stdout(evaluate, &checks, &stdout);
        assert_eq!(
            o[0].message,
            "login-defs: PASS_MIN_DAYS: expected >= 1, got 0"
        );
        // Commented out: unset, the empty string.
        assert_eq!(o[1].status, Status::Failed);
        assert!(o[1]
            .actual
            .as_deref()
            .unwrap()
            .ends_with("ENCRYPT_METHOD: "));
        assert_eq!(o[2].status, Status::Failed);
        assert_eq!(o[3].status, Status::Passed, "{}", o[3].message);
    }

    #[test]
    fn a_missing_file_leaves_every_key_unset() {
        let m = marker();
        let stdout = format!("\n{m} login.defs -\n@missing\n\n{m} end -\n");
        let checks: Vec<LoginDefsCheck> = parse_all(&["{PASS_MAX_DAYS: ''}"]);
        let o = evaluate_stdout(evaluate, &checks, &stdout);
        assert_eq!(o[0].status, Status::Passed, "{}", o[0].message);
    }
}
