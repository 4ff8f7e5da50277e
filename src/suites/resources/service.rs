//! `service`: a systemd unit, running and enabled, from one `systemctl show` for all units.

use std::collections::HashMap;
use std::time::Duration;

use super::{all_errors, missing_tool, quote_all, unique, Assert, Outcome};
use crate::suites::model::ServiceCheck;
use crate::transport::ExecOutput;

const PROPS: &str = "Id,LoadState,ActiveState,SubState,UnitFileState";
const UNIT_SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "target",
    "timer",
    "mount",
    "automount",
    "swap",
    "path",
    "slice",
    "scope",
    "device",
];
/// `systemctl is-enabled` exits 0 for these unit-file states.
const ENABLED_STATES: &[&str] = &[
    "enabled",
    "enabled-runtime",
    "static",
    "alias",
    "indirect",
    "generated",
    "transient",
];

pub(super) fn validate(s: &ServiceCheck) -> Result<(), String> {
    if s.name.is_empty() || s.name.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(format!("`{}` is not a systemd unit name", s.name));
    }
    Ok(())
}

/// The full unit name: `.service` is implied when the name has no unit-type suffix.
pub(crate) fn unit_name(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((_, suffix)) if UNIT_SUFFIXES.contains(&suffix) => name.to_string(),
        _ => format!("{name}.service"),
    }
}

fn units(checks: &[&ServiceCheck]) -> Vec<String> {
    let names: Vec<String> = checks.iter().map(|c| unit_name(&c.name)).collect();
    unique(names.iter().map(String::as_str))
        .into_iter()
        .map(str::to_string)
        .collect()
}

pub(super) fn script(checks: &[&ServiceCheck], _timeout: Duration) -> String {
    let units = units(checks);
    format!(
        "LC_ALL=C systemctl show --no-pager -p {PROPS} -- {}",
        quote_all(units.iter().map(String::as_str))
    )
}

pub(super) fn evaluate(checks: &[&ServiceCheck], out: &ExecOutput) -> Vec<Outcome> {
    if let Some(e) = missing_tool(out, "systemctl") {
        return all_errors(checks.len(), &e, out);
    }
    let units = units(checks);
    if out.exit_code != 0 {
        let e = format!("systemctl show failed: {}", out.stderr.trim());
        return all_errors(checks.len(), &e, out);
    }
    let facts = match parse(&units, &out.stdout) {
        Ok(f) => f,
        Err(e) => return all_errors(checks.len(), &e, out),
    };
    checks
        .iter()
        .map(|c| {
            let unit = unit_name(&c.name);
            let props = &facts[&unit];
            let get = |k: &str| props.get(k).map(String::as_str).unwrap_or("");
            let mut a = Assert::new(format!("service {unit}"));
            if c.running.is_some() || c.enabled.is_none() {
                a.flag_matcher("running", &c.running, true, get("ActiveState") == "active");
            }
            if c.enabled.is_some() {
                let enabled = ENABLED_STATES.contains(&get("UnitFileState"));
                a.flag_matcher("enabled", &c.enabled, true, enabled);
            }
            let mut output: Vec<String> = props.iter().map(|(k, v)| format!("{k}={v}")).collect();
            output.sort();
            a.finish(output.join("\n"))
        })
        .collect()
}

/// Splits `systemctl show` output into one property map per unit, in argument order.
fn parse(
    units: &[String],
    stdout: &str,
) -> Result<HashMap<String, HashMap<String, String>>, String> {
    let blocks: Vec<HashMap<String, String>> = stdout
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            b.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect();
    if blocks.len() != units.len() || blocks.iter().any(|b| !b.contains_key("ActiveState")) {
        return Err(format!(
            "could not read `systemctl show` output: expected {} property blocks with ActiveState, got {}",
            units.len(),
            blocks.len()
        ));
    }
    Ok(units.iter().cloned().zip(blocks).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::result::Status;

    /// Captured on Debian 12 (systemd 252): `systemctl show -p … ssh cron nosuch`.
    const SHOW: &str = "Id=cron.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n\nId=nosuch.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\n\nId=ssh.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n\nId=systemd-journald.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=static\n";

    fn svc(yaml: &str) -> ServiceCheck {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn out(stdout: &str) -> ExecOutput {
        ExecOutput {
            stdout: stdout.into(),
            ..Default::default()
        }
    }

    #[test]
    fn evaluates_every_unit_from_one_show() {
        let checks = [
            svc("{name: ssh, running: true, enabled: true}"),
            svc("{name: nosuch}"),
            svc("{name: cron.service, enabled: false}"),
            svc("{name: systemd-journald, enabled: true}"),
        ];
        let refs: Vec<&ServiceCheck> = checks.iter().collect();
        assert_eq!(
            script(&refs, Duration::from_secs(60)),
            "LC_ALL=C systemctl show --no-pager -p Id,LoadState,ActiveState,SubState,UnitFileState -- cron.service nosuch.service ssh.service systemd-journald.service"
        );
        let o = evaluate(&refs, &out(SHOW));
        assert_eq!(o[0].status, Status::Passed, "{}", o[0].message);
        assert_eq!(o[1].status, Status::Failed);
        assert_eq!(
            o[1].message,
            "service nosuch.service: running: expected true, got false"
        );
        assert!(o[1].output.contains("LoadState=not-found"));
        assert_eq!(o[2].status, Status::Failed);
        assert_eq!(o[2].expected.as_deref(), Some("enabled: false"));
        assert_eq!(o[3].status, Status::Passed, "static units count as enabled");
    }

    #[test]
    fn no_systemd_is_an_error_not_a_failure() {
        let checks = [svc("{name: ssh}")];
        let refs: Vec<&ServiceCheck> = checks.iter().collect();
        let o = evaluate(
            &refs,
            &ExecOutput {
                exit_code: 1,
                stderr: "System has not been booted with systemd as init system (PID 1). Can't operate.\n".into(),
                ..Default::default()
            },
        );
        assert_eq!(o[0].status, Status::Error);
        assert!(
            o[0].message.contains("not been booted with systemd"),
            "{}",
            o[0].message
        );
        let o = evaluate(&refs, &out("Id=ssh.service\n"));
        assert_eq!(o[0].status, Status::Error);
    }

    #[test]
    fn unit_names_get_a_service_suffix_when_needed() {
        assert_eq!(unit_name("ssh"), "ssh.service");
        assert_eq!(unit_name("php8.2-fpm"), "php8.2-fpm.service");
        assert_eq!(unit_name("tmp.mount"), "tmp.mount");
        assert!(validate(&svc("{name: 'a b'}")).is_err());
    }
}
