//! What changed between two images: packages added, removed, upgraded and downgraded, the
//! kernel and OS release, enabled units, listening ports and local users.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::{version, Manifest, Package, Port};

/// A value that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub from: String,
    pub to: String,
}

/// A package whose version changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionChange {
    pub name: String,
    pub arch: String,
    pub from: String,
    pub to: String,
}

/// The differences from one image (`from`) to another (`to`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// The older image, the one compared against.
    pub from: String,
    /// The newer image.
    pub to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<Change>,
    /// The kernel each image boots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<Change>,
    pub added: Vec<Package>,
    pub removed: Vec<Package>,
    pub upgraded: Vec<VersionChange>,
    pub downgraded: Vec<VersionChange>,
    pub units_enabled: Vec<String>,
    pub units_disabled: Vec<String>,
    pub ports_opened: Vec<Port>,
    pub ports_closed: Vec<Port>,
    pub users_added: Vec<String>,
    pub users_removed: Vec<String>,
}

/// Compares `old` with `new`.
pub fn diff(old: &Manifest, new: &Manifest) -> Diff {
    let changed = |a: &str, b: &str| {
        (a != b).then(|| Change {
            from: a.to_string(),
            to: b.to_string(),
        })
    };
    let keyed = |m: &Manifest| -> BTreeMap<(String, String), String> {
        m.packages
            .iter()
            .map(|p| ((p.name.clone(), p.arch.clone()), p.version.clone()))
            .collect()
    };
    let (before, after) = (keyed(old), keyed(new));
    let package = |(name, arch): &(String, String), version: &String| Package {
        name: name.clone(),
        arch: arch.clone(),
        version: version.clone(),
    };
    let mut d = Diff {
        from: old.image.clone(),
        to: new.image.clone(),
        os: changed(&old.os.pretty_name, &new.os.pretty_name),
        kernel: changed(&old.kernel.boots, &new.kernel.boots),
        ..Diff::default()
    };
    for (key, v) in &after {
        match before.get(key) {
            None => d.added.push(package(key, v)),
            Some(was) if was != v => {
                let change = VersionChange {
                    name: key.0.clone(),
                    arch: key.1.clone(),
                    from: was.clone(),
                    to: v.clone(),
                };
                match version::compare(&new.package_manager, was, v) {
                    Ordering::Greater => d.downgraded.push(change),
                    // Versions that differ in spelling only count as an upgrade.
                    Ordering::Less | Ordering::Equal => d.upgraded.push(change),
                }
            }
            Some(_) => {}
        }
    }
    for (key, v) in &before {
        if !after.contains_key(key) {
            d.removed.push(package(key, v));
        }
    }
    fn only_in<T: Ord + Clone>(a: &[T], b: &[T]) -> Vec<T> {
        a.iter().filter(|x| !b.contains(x)).cloned().collect()
    }
    d.units_enabled = only_in(&new.units, &old.units);
    d.units_disabled = only_in(&old.units, &new.units);
    d.ports_opened = only_in(&new.ports, &old.ports);
    d.ports_closed = only_in(&old.ports, &new.ports);
    let names = |m: &Manifest| -> Vec<String> { m.users.iter().map(|u| u.name.clone()).collect() };
    d.users_added = only_in(&names(new), &names(old));
    d.users_removed = only_in(&names(old), &names(new));
    d
}

impl Diff {
    /// True when the images hold the same.
    pub fn is_empty(&self) -> bool {
        self.os.is_none()
            && self.kernel.is_none()
            && self.added.is_empty()
            && self.removed.is_empty()
            && self.upgraded.is_empty()
            && self.downgraded.is_empty()
            && self.units_enabled.is_empty()
            && self.units_disabled.is_empty()
            && self.ports_opened.is_empty()
            && self.ports_closed.is_empty()
            && self.users_added.is_empty()
            && self.users_removed.is_empty()
    }

    /// `kernel 6.1.0-27-amd64 → 6.1.0-28-amd64; packages: 3 added, 1 removed, 12 upgraded,
    /// 0 downgraded; units: 1 enabled; ports: 1 opened`, or `no changes`.
    pub fn headline(&self) -> String {
        if self.is_empty() {
            return "no changes".into();
        }
        let mut parts = Vec::new();
        if let Some(k) = &self.kernel {
            parts.push(format!("kernel {} → {}", k.from, k.to));
        }
        if let Some(o) = &self.os {
            parts.push(format!("OS {} → {}", o.from, o.to));
        }
        parts.push(format!(
            "packages: {} added, {} removed, {} upgraded, {} downgraded",
            self.added.len(),
            self.removed.len(),
            self.upgraded.len(),
            self.downgraded.len()
        ));
        let counted = |what: &str, a: (usize, &str), b: (usize, &str)| {
            let items: Vec<String> = [a, b]
                .iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, verb)| format!("{n} {verb}"))
                .collect();
            (!items.is_empty()).then(|| format!("{what}: {}", items.join(", ")))
        };
        parts.extend(counted(
            "units",
            (self.units_enabled.len(), "enabled"),
            (self.units_disabled.len(), "disabled"),
        ));
        parts.extend(counted(
            "ports",
            (self.ports_opened.len(), "opened"),
            (self.ports_closed.len(), "closed"),
        ));
        parts.extend(counted(
            "users",
            (self.users_added.len(), "added"),
            (self.users_removed.len(), "removed"),
        ));
        parts.join("; ")
    }

    /// Every change, one a line: `+ nginx-light 1.22.1-9+deb12u1 (amd64)`, `~ libc6 2.36-9 →
    /// 2.36-9+deb12u9`, `- …` for removals and `< …` for downgrades, then units, ports, users.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(k) = &self.kernel {
            out.push(format!("kernel: {} → {}", k.from, k.to));
        }
        if let Some(o) = &self.os {
            out.push(format!("os: {} → {}", o.from, o.to));
        }
        for p in &self.added {
            out.push(format!("+ {} {} ({})", p.name, p.version, p.arch));
        }
        for p in &self.removed {
            out.push(format!("- {} {} ({})", p.name, p.version, p.arch));
        }
        for c in &self.upgraded {
            out.push(format!("↑ {} {} → {} ({})", c.name, c.from, c.to, c.arch));
        }
        for c in &self.downgraded {
            out.push(format!("↓ {} {} → {} ({})", c.name, c.from, c.to, c.arch));
        }
        for u in &self.units_enabled {
            out.push(format!("+ unit {u} enabled"));
        }
        for u in &self.units_disabled {
            out.push(format!("- unit {u} no longer enabled"));
        }
        for p in &self.ports_opened {
            out.push(format!("+ port {p} listening"));
        }
        for p in &self.ports_closed {
            out.push(format!("- port {p} no longer listening"));
        }
        for u in &self.users_added {
            out.push(format!("+ user {u}"));
        }
        for u in &self.users_removed {
            out.push(format!("- user {u}"));
        }
        out
    }

    /// The diff for a terminal: a headline, then at most `max_lines` changes.
    pub fn text(&self, max_lines: usize) -> String {
        let mut s = format!("{} → {}: {}\n", self.from, self.to, self.headline());
        let lines = self.lines();
        for l in lines.iter().take(max_lines) {
            let _ = writeln!(s, "  {l}");
        }
        if lines.len() > max_lines {
            let _ = writeln!(
                s,
                "  … and {} more (`bakery diff {} {}` lists every one)",
                lines.len() - max_lines,
                self.from,
                self.to
            );
        }
        s
    }

    /// The diff as Markdown of at most `limit` bytes: the headline, the kernel, then a table
    /// of changes, as many rows as fit.
    pub fn markdown(&self, against: &str, limit: usize) -> String {
        use crate::report::summary::{md, md_code};
        let mut s = format!(
            "### Image changes against {} ({})\n\n{}\n\n",
            md_code(against),
            md_code(&self.from),
            md(&self.headline())
        );
        if self.is_empty() {
            return crate::report::github::clip_bytes(&s, limit);
        }
        let mut rows: Vec<String> = Vec::new();
        let cell = |t: &str| md(&t.chars().take(200).collect::<String>());
        if let Some(k) = &self.kernel {
            rows.push(format!(
                "| kernel | | {} | {} |",
                cell(&k.from),
                cell(&k.to)
            ));
        }
        if let Some(o) = &self.os {
            rows.push(format!("| OS | | {} | {} |", cell(&o.from), cell(&o.to)));
        }
        for c in &self.downgraded {
            rows.push(format!(
                "| ⬇️ downgraded | {} | {} | {} |",
                md_code(&c.name),
                cell(&c.from),
                cell(&c.to)
            ));
        }
        for c in &self.upgraded {
            rows.push(format!(
                "| ⬆️ upgraded | {} | {} | {} |",
                md_code(&c.name),
                cell(&c.from),
                cell(&c.to)
            ));
        }
        for p in &self.added {
            rows.push(format!(
                "| ➕ added | {} | | {} |",
                md_code(&p.name),
                cell(&p.version)
            ));
        }
        for p in &self.removed {
            rows.push(format!(
                "| ➖ removed | {} | {} | |",
                md_code(&p.name),
                cell(&p.version)
            ));
        }
        for u in &self.units_enabled {
            rows.push(format!("| unit enabled | {} | | |", md_code(u)));
        }
        for u in &self.units_disabled {
            rows.push(format!("| unit disabled | {} | | |", md_code(u)));
        }
        for p in &self.ports_opened {
            rows.push(format!("| port opened | {} | | |", md_code(&p.to_string())));
        }
        for p in &self.ports_closed {
            rows.push(format!("| port closed | {} | | |", md_code(&p.to_string())));
        }
        for u in &self.users_added {
            rows.push(format!("| user added | {} | | |", md_code(u)));
        }
        for u in &self.users_removed {
            rows.push(format!("| user removed | {} | | |", md_code(u)));
        }
        const CUT_NOTE: usize = 160;
        s.push_str("| Change | Name | From | To |\n|---|---|---|---|\n");
        let mut shown = 0;
        for row in &rows {
            if s.len() + row.len() + 1 + CUT_NOTE > limit {
                break;
            }
            s.push_str(row);
            s.push('\n');
            shown += 1;
        }
        if shown < rows.len() {
            let _ = writeln!(
                s,
                "\n… and {} more changes: `bakery diff` and the results' manifest list every one.",
                rows.len() - shown
            );
        }
        s.push('\n');
        crate::report::github::clip_bytes(&s, limit)
    }
}

/// The new image compared with the one a pointer names, or why it could not be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// The pointer compared against.
    pub pointer: String,
    /// The image the pointer names, if it names one.
    pub against: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<Diff>,
    /// Why there is no diff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Comparison {
    /// For a terminal.
    pub fn text(&self, max_lines: usize) -> String {
        match (&self.diff, &self.note) {
            (Some(d), _) => format!("changes against {}: {}", self.pointer, d.text(max_lines)),
            (None, Some(n)) => format!("changes against {}: none shown: {n}\n", self.pointer),
            (None, None) => String::new(),
        }
    }

    /// One line for the run's closing summary: `image changes against /golden/web/latest
    /// (ami-…): kernel … → …; packages: 3 added, …`, or why none are shown.
    pub fn headline(&self) -> String {
        match (&self.diff, &self.note) {
            (Some(d), _) => format!(
                "image changes against {} ({}): {}",
                self.pointer,
                d.from,
                d.headline()
            ),
            (None, Some(n)) => format!("image changes against {}: none shown: {n}", self.pointer),
            (None, None) => format!("image changes against {}: none shown", self.pointer),
        }
    }

    /// For a job summary or a check run, at most `limit` bytes.
    pub fn markdown(&self, limit: usize) -> String {
        use crate::report::summary::{md, md_code};
        match (&self.diff, &self.note) {
            (Some(d), _) => d.markdown(&self.pointer, limit),
            (None, note) => crate::report::github::clip_bytes(
                &format!(
                    "### Image changes against {}\n\n{}\n\n",
                    md_code(&self.pointer),
                    md(note.as_deref().unwrap_or("none"))
                ),
                limit,
            ),
        }
    }
}
