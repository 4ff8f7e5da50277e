//! `user` and `group`: accounts from one `getent passwd` for all users and one `getent group`.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::{
    all_errors, end_section, missing_tool, quote_all, section, sections, unique, Assert, Outcome,
};
use crate::suites::model::UserCheck;
use crate::transport::ExecOutput;

pub(super) fn script(checks: &[&UserCheck], _timeout: Duration) -> String {
    let names = quote_all(unique(checks.iter().map(|c| c.name.as_str())));
    format!(
        "{}getent passwd {names}\n{}getent group\n{}",
        section("passwd", "-"),
        section("group", "-"),
        end_section()
    )
}

/// One `passwd` entry.
#[derive(Debug, Clone)]
struct Passwd {
    uid: String,
    gid: String,
    home: String,
    shell: String,
    line: String,
}

/// One `group` entry.
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub name: String,
    pub gid: String,
    pub members: Vec<String>,
    pub line: String,
}

pub(super) fn evaluate(checks: &[&UserCheck], out: &ExecOutput) -> Vec<Outcome> {
    if let Some(e) = missing_tool(out, "getent") {
        return all_errors(checks.len(), &e, out);
    }
    let Some(parts) = sections(&out.stdout) else {
        return all_errors(checks.len(), "could not read the account database", out);
    };
    let mut users: HashMap<&str, Passwd> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for (kind, _, body) in parts {
        match kind {
            "passwd" => {
                for line in body.lines() {
                    let f: Vec<&str> = line.split(':').collect();
                    if let [name, _, uid, gid, _, home, shell] = f[..] {
                        let p = Passwd {
                            uid: uid.into(),
                            gid: gid.into(),
                            home: home.into(),
                            shell: shell.into(),
                            line: line.into(),
                        };
                        users.insert(name, p);
                    }
                }
            }
            "group" => groups = parse_groups(body),
            _ => {}
        }
    }
    checks
        .iter()
        .map(|c| {
            let mut a = Assert::new(format!("user {}", c.name));
            let Some(p) = users.get(c.name.as_str()) else {
                a.flag_matcher("exists", &c.exists, true, false);
                return a.finish(format!("{}: no such user", c.name));
            };
            a.flag_matcher("exists", &c.exists, true, true);
            let mut member_of: Vec<Value> = Vec::new();
            for g in &groups {
                let name = Value::from(g.name.clone());
                if (g.gid == p.gid || g.members.contains(&c.name)) && !member_of.contains(&name) {
                    if g.gid == p.gid {
                        member_of.insert(0, name);
                    } else {
                        member_of.push(name);
                    }
                }
            }
            a.opt("uid", &c.uid, || Value::from(p.uid.clone()));
            a.opt("gid", &c.gid, || Value::from(p.gid.clone()));
            a.opt("groups", &c.groups, || Value::Array(member_of.clone()));
            a.opt("home", &c.home, || Value::from(p.home.clone()));
            a.opt("shell", &c.shell, || Value::from(p.shell.clone()));
            let groups: Vec<String> = member_of
                .iter()
                .map(|g| g.as_str().unwrap_or("").to_string())
                .collect();
            a.finish(format!("{}\ngroups: {}", p.line, groups.join(", ")))
        })
        .collect()
}

pub(super) fn parse_groups(body: &str) -> Vec<Group> {
    body.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let [name, _, gid, members] = f[..] else {
                return None;
            };
            Some(Group {
                name: name.into(),
                gid: gid.into(),
                members: members
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
                line: line.into(),
            })
        })
        .collect()
}

/// `group`: local groups from one `getent group`.
pub(super) mod group {
    use std::time::Duration;

    use serde_json::Value;

    use super::super::{all_errors, end_section, missing_tool, section, sections, Assert, Outcome};
    use super::parse_groups;
    use crate::suites::model::GroupCheck;
    use crate::transport::ExecOutput;

    pub(in super::super) fn script(_checks: &[&GroupCheck], _timeout: Duration) -> String {
        format!("{}getent group\n{}", section("group", "-"), end_section())
    }

    pub(in super::super) fn evaluate(checks: &[&GroupCheck], out: &ExecOutput) -> Vec<Outcome> {
        if let Some(e) = missing_tool(out, "getent") {
            return all_errors(checks.len(), &e, out);
        }
        let Some(parts) = sections(&out.stdout) else {
            return all_errors(checks.len(), "could not read the group database", out);
        };
        let groups = parts
            .iter()
            .find(|(k, _, _)| *k == "group")
            .map(|(_, _, body)| parse_groups(body))
            .unwrap_or_default();
        checks
            .iter()
            .map(|c| {
                let mut a = Assert::new(format!("group {}", c.name));
                let Some(g) = groups.iter().find(|g| g.name == c.name) else {
                    a.flag_matcher("exists", &c.exists, true, false);
                    return a.finish(format!("{}: no such group", c.name));
                };
                a.flag_matcher("exists", &c.exists, true, true);
                a.opt("gid", &c.gid, || Value::from(g.gid.clone()));
                a.finish(g.line.clone())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::model::GroupCheck;
    use crate::suites::resources::marker;
    use crate::suites::result::Status;

    fn output() -> String {
        let m = marker();
        format!(
            "\n{m} passwd -\nroot:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000:Admin,,,:/home/admin:/bin/bash\n\
             \n{m} group -\nroot:x:0:\nadm:x:4:admin\nsudo:x:27:admin\nadmin:x:1000:\nnogroup:x:65534:\n\n{m} end -\n"
        )
    }

    #[test]
    fn users_with_their_groups() {
        let u = |y: &str| -> UserCheck { serde_yaml::from_str(y).unwrap() };
        let checks = [
            u("{name: admin, uid: 1000, groups: [sudo, adm], home: /home/admin, shell: /bin/bash}"),
            u("{name: admin, groups: {consist-of: [admin, adm, sudo]}}"),
            u("{name: ghost}"),
            u("{name: ghost, exists: false}"),
            u("{name: root, groups: [wheel]}"),
        ];
        let refs: Vec<&UserCheck> = checks.iter().collect();
        let out = ExecOutput {
            exit_code: 0,
            stdout: output(),
            ..Default::default()
        };
        let o = evaluate(&refs, &out);
        assert_eq!(o[0].status, Status::Passed, "{}", o[0].message);
        assert_eq!(o[1].status, Status::Passed, "{}", o[1].message);
        assert_eq!(o[2].message, "user ghost: exists: expected true, got false");
        assert_eq!(o[3].status, Status::Passed);
        assert_eq!(
            o[4].message,
            "user root: groups: expected [\"wheel\"], got root"
        );
    }

    #[test]
    fn groups_and_a_missing_getent() {
        let g = |y: &str| -> GroupCheck { serde_yaml::from_str(y).unwrap() };
        let checks = [g("{name: sudo, gid: 27}"), g("{name: wheel}")];
        let refs: Vec<&GroupCheck> = checks.iter().collect();
        let out = ExecOutput {
            stdout: output(),
            ..Default::default()
        };
        let o = group::evaluate(&refs, &out);
        assert_eq!(o[0].status, Status::Passed, "{}", o[0].message);
        assert_eq!(o[1].status, Status::Failed);
        let out = ExecOutput {
            stderr: "sh: 1: getent: not found\n".into(),
            ..Default::default()
        };
        assert_eq!(group::evaluate(&refs, &out)[0].status, Status::Error);
    }
}
