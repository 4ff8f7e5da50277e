//! The CIS Debian 12 Level 1 Server gate on real Debian 12 guests (QEMU, OpenSSH, cloud-init).
//!
//! - `stock_base_image_matches_the_golden_verdicts`: one probe of the stock base image runs the
//!   suite of `examples/local/cis/stock.yml`. Every control's verdict must equal
//!   `tests/golden/cis-debian-12-base.txt`, so a change that flips one shows in review
//!   (`BAKERY_UPDATE_GOLDEN=1` rewrites the file; review the diff). On the same probe, copies of
//!   the suite tailored down to a few controls show what a waiver, an expired waiver, an
//!   attestation, an exclusion and `min-score` do to the verdict.
//! - `hardening_example_passes_and_each_step_counts`: `examples/local/cis/bakery.yml` is baked
//!   once (without installing pending updates, `UPGRADE=no`), and one probe of that image runs
//!   the example's suites, which pass the gate; then, on the same probe, one hardening step is
//!   undone (the sshd drop-in) and the CIS suite runs again: exactly the controls that step
//!   covers fail, with expected and actual shown.
//!
//! Three guests in all (a probe, a builder, a probe): CI runs both tests.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

const GOLDEN: &str = "tests/golden/cis-debian-12-base.txt";

/// The CIS entry of the example pipelines, as YAML flow text, with `extra` keys added.
fn cis_entry(extra: &str) -> String {
    format!(
        "    - cis:\n        benchmark: debian-12\n        profile: level-1-server\n        \
         variables: {{log_system: rsyslog}}\n{extra}"
    )
}

/// `exclude:` lines leaving out every control of `all` except `keep`.
fn exclude_all_but(all: &[String], keep: &[&str]) -> String {
    let mut s = String::from("        exclude:\n");
    for id in all.iter().filter(|id| !keep.contains(&id.as_str())) {
        s.push_str(&format!("          \"{id}\": not part of this scenario\n"));
    }
    s
}

/// A scratch directory for one test's pipeline files.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// id → (status, result) of one suite of a results document.
fn statuses(suite: &Value) -> BTreeMap<String, (String, Value)> {
    suite["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                (r["status"].as_str().unwrap().to_string(), r.clone()),
            )
        })
        .collect()
}

/// The golden file: `id status` per line, in benchmark order; `#` lines are comments.
fn golden() -> Vec<(String, String)> {
    std::fs::read_to_string(repo().join(GOLDEN))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (id, status) = l.split_once(' ').expect("`id status` lines");
            (id.to_string(), status.trim().to_string())
        })
        .collect()
}

fn render_golden(suite: &Value) -> String {
    let mut s = String::from(
        "# Verdicts of the CIS Debian 12 Level 1 Server suite (examples/local/cis/stock.yml) on\n\
         # the stock Debian 12 base image, one control per line. Asserted by tests/cis_guest.rs;\n\
         # BAKERY_UPDATE_GOLDEN=1 rewrites it from a run.\n",
    );
    for r in suite["results"].as_array().unwrap() {
        s.push_str(&format!(
            "{} {}\n",
            r["id"].as_str().unwrap(),
            r["status"].as_str().unwrap()
        ));
    }
    s
}

/// Passed and applicable controls (passed, failed, error, waived count; the rest do not).
fn score_of(results: &BTreeMap<String, (String, Value)>) -> (usize, usize) {
    results
        .values()
        .fold((0, 0), |(p, a), (status, _)| match status.as_str() {
            "passed" => (p + 1, a + 1),
            "failed" | "error" | "waived" => (p, a + 1),
            _ => (p, a),
        })
}

/// The gate's reasons that name control `id` of a CIS suite.
fn reasons_for<'a>(doc: &'a Value, id: &str) -> Vec<&'a str> {
    let needle = format!("/{id} ");
    doc["verdict"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|r| r.contains(&needle))
        .collect()
}

#[test]
fn stock_base_image_matches_the_golden_verdicts() {
    let _vm = vm_lock();
    let data = data_dir("cis-stock");
    let base = base_image(&data);
    let dir = scratch("cis-stock-pipeline");

    // The ids of every Level 1 Server control, in benchmark order.
    let listed = run(bakery(&data).args(["suites", "show", "cis-debian-12"]));
    assert!(listed.status.success());
    let listing = String::from_utf8_lossy(&listed.stdout).to_string();
    let all: Vec<String> = listing
        .lines()
        // Control lines: four spaces, then the id (`1.1.1.1`); section lines have two.
        .filter(|l| l.starts_with("    "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.contains('.') && w.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .map(str::to_string)
        .collect();
    assert!(
        all.len() >= 200,
        "`bakery suites show cis-debian-12` lists {} controls",
        all.len()
    );

    // Tailored copies, each down to a few controls of the stock image:
    //  1 a waiver in force for a failing control (root may log in over SSH),
    //  2 an expired waiver for another failing one (MaxAuthTries 6),
    //  3 attestations for two manual controls, one passed and one failed,
    //  4 an exclusion with its own reason for a failing control,
    //  5/6 the SSH section with a min-score it reaches and one it does not.
    let waivers = dir.join("waivers.yml");
    std::fs::write(
        &waivers,
        "\"5.1.20\":\n  justification: root logs in with a key until the admin account is rolled out\n  \
         expiration_date: 2099-12-31\n\"5.1.16\":\n  justification: old clients retry keys\n  \
         expiration_date: 2020-01-31\n",
    )
    .unwrap();
    let attestations = dir.join("attestations.yml");
    std::fs::write(
        &attestations,
        "\"1.2.1.1\":\n  status: passed\n  justification: apt trusts only the Debian archive keys\n  \
         evidence_url: https://example.org/review/1\n  expiration_date: 2099-12-31\n\
         \"1.2.1.2\":\n  status: failed\n  justification: sources.list lacks the security suite\n",
    )
    .unwrap();
    let ssh: Vec<&str> = all
        .iter()
        .filter(|id| id.starts_with("5.1."))
        .map(String::as_str)
        .collect();
    let mut exclude_reason = exclude_all_but(&all, &["7.1.1"]);
    exclude_reason = exclude_reason.replace(
        "\"5.1.20\": not part of this scenario",
        "\"5.1.20\": root logins are closed by the network layer here",
    );
    // Each tailored copy has a name of its own (one benchmark and profile twice needs one).
    let named =
        |n: usize, extra: String| cis_entry(&format!("        name: cis-case-{n}\n{extra}"));
    let pipeline = format!(
        "provider: local\nsource:\n  local: debian-12\nimage:\n  name: cis-stock\nverify:\n  suites:\n{}{}{}{}{}{}{}  junit: results/junit.xml\n",
        cis_entry(""),
        named(
            1,
            format!(
                "{}        waivers: {}\n",
                exclude_all_but(&all, &["5.1.20", "5.1.19"]),
                waivers.display()
            )
        ),
        named(
            2,
            format!(
                "{}        waivers: {}\n",
                exclude_all_but(&all, &["5.1.16"]),
                waivers.display()
            )
        ),
        named(
            3,
            format!(
                "{}        attestations: {}\n",
                exclude_all_but(&all, &["1.2.1.1", "1.2.1.2"]),
                attestations.display()
            )
        ),
        named(4, exclude_reason),
        named(
            5,
            format!("{}        min-score: 10\n", exclude_all_but(&all, &ssh))
        ),
        named(
            6,
            format!("{}        min-score: 99\n", exclude_all_but(&all, &ssh))
        ),
    );
    let file = dir.join("bakery.yml");
    std::fs::write(&file, pipeline).unwrap();

    let out = run(bakery(&data)
        .args(["verify", "--image", &base, "-f"])
        .arg(&file));
    assert_eq!(
        out.status.code(),
        Some(1),
        "the stock image fails the CIS gate"
    );
    // The terminal report (the table and the scores) goes to stderr.
    let terminal = String::from_utf8_lossy(&out.stderr);
    let doc = read_json(&dir.join("results/junit.json"));
    let suites = doc["suites"].as_array().unwrap();
    assert_eq!(suites.len(), 7);

    // 0: every control's verdict is the golden one.
    let got = render_golden(&suites[0]);
    if std::env::var_os("BAKERY_UPDATE_GOLDEN").is_some() {
        std::fs::write(repo().join(GOLDEN), &got).unwrap();
    }
    let want: Vec<(String, String)> = golden();
    let have: Vec<(String, String)> = got
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (a.to_string(), b.to_string())
        })
        .collect();
    let full = statuses(&suites[0]);
    let flipped: Vec<String> = want
        .iter()
        .zip(have.iter())
        .filter(|(w, h)| w != h)
        .map(|(w, h)| {
            format!(
                "{} golden {} now {} {}: {}",
                w.0,
                w.1,
                h.0,
                h.1,
                full.get(&h.0)
                    .map(|r| r.1["message"].to_string())
                    .unwrap_or_default()
            )
        })
        .collect();
    assert!(
        flipped.is_empty() && want.len() == have.len(),
        "verdicts differ from {GOLDEN} ({} golden lines, {} now):\n{}",
        want.len(),
        have.len(),
        flipped.join("\n")
    );
    assert_eq!(
        have.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        all,
        "one verdict per Level 1 Server control, in benchmark order"
    );
    // The stock image is far from hardened, and the terminal says so with the score of the
    // first suite: passed over applicable controls.
    let (passed, applicable) = score_of(&full);
    let shown = terminal
        .lines()
        .find(|l| l.contains("): score "))
        .unwrap_or_default();
    assert!(
        shown.contains(&format!("({passed}/{applicable})")),
        "the first score line shows {passed}/{applicable}: {shown:?}"
    );
    assert!(
        passed * 10 < applicable * 8,
        "the stock image scores {shown}"
    );
    for id in ["5.1.20", "5.1.16", "1.2.1.2"] {
        assert!(
            full[id].0 == "failed" || full[id].0 == "not-reviewed",
            "{id} on the stock image: {}",
            full[id].0
        );
    }
    assert_eq!(full["5.1.20"].0, "failed");
    assert_eq!(full["5.1.16"].0, "failed");
    assert_eq!(full["1.2.1.1"].0, "not-reviewed");

    // 1: the waiver in force turns the failure into `waived`, with its justification, and the
    // gate names 5.1.20 only for the untailored suite.
    let s = statuses(&suites[1]);
    assert_eq!(s["5.1.20"].0, "waived");
    assert!(s["5.1.20"].1["message"]
        .as_str()
        .unwrap()
        .contains("until the admin account is rolled out"));
    assert_eq!(s["5.1.19"].0, "passed");
    assert_eq!(
        reasons_for(&doc, "5.1.20").len(),
        1,
        "only suite 0 fails on 5.1.20"
    );

    // 2: an expired waiver does not apply, and the run says so.
    let s = statuses(&suites[2]);
    assert_eq!(s["5.1.16"].0, "failed");
    let notes = suites[2]["benchmark"]["notes"].to_string();
    assert!(
        notes.contains("5.1.16") && notes.contains("expired"),
        "{notes}"
    );
    let r = reasons_for(&doc, "5.1.16");
    assert_eq!(r.len(), 2, "suites 0 and 2 fail on 5.1.16: {r:?}");
    assert!(r.iter().any(|r| r.contains("2020-01-31")), "{r:?}");

    // 3: attestations decide manual controls.
    let s = statuses(&suites[3]);
    assert_eq!(s["1.2.1.1"].0, "passed");
    assert!(s["1.2.1.1"].1["message"]
        .as_str()
        .unwrap()
        .contains("https://example.org/review/1"));
    assert_eq!(s["1.2.1.2"].0, "failed");
    let r = reasons_for(&doc, "1.2.1.2");
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].contains("security suite"), "{r:?}");

    // 4: an excluded control is skipped with its reason and does not count.
    let s = statuses(&suites[4]);
    assert_eq!(s["5.1.20"].0, "skipped");
    assert!(s["5.1.20"].1["message"]
        .as_str()
        .unwrap()
        .contains("closed by the network layer"));
    assert_eq!(s["7.1.1"].0, "passed");
    assert!(s.values().all(|(st, _)| st == "skipped" || st == "passed"));

    // 5, 6: the SSH section's score passes a min-score of 10 and fails one of 99.
    let (passed, applicable) = score_of(&statuses(&suites[5]));
    let percent = (passed as f64 * 1000.0 / applicable as f64).round() / 10.0;
    assert!(
        (10.0..99.0).contains(&percent),
        "the stock SSH section scores {percent}%"
    );
    let below: Vec<&str> = doc["verdict"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|r| r.contains("min-score"))
        .collect();
    assert_eq!(
        below.len(),
        1,
        "only the min-score 99 suite is below: {below:?}"
    );
    assert!(
        below[0].contains("99") && below[0].contains(&format!("({passed}/{applicable})")),
        "{below:?}"
    );
    assert_nothing_left(&data);
}

/// The controls harden.sh's `sshd` step covers (its comment names 5.1.4-5.1.22).
fn sshd_step_covers(id: &str) -> bool {
    let Some(n) = id.strip_prefix("5.1.") else {
        return false;
    };
    n.parse::<u32>().is_ok_and(|n| (4..=22).contains(&n))
}

#[test]
fn hardening_example_passes_and_each_step_counts() {
    let _vm = vm_lock();
    let data = data_dir("cis-hardened");
    let example = repo().join("examples/local/cis");

    // The example's pipeline, with two changes for CI's sake: the bake skips installing
    // pending updates (`UPGRADE=no`, which the example offers for quick trials; it changes no
    // automated verdict and saves most of an emulated bake), and after the example's own
    // suites (smoke and the CIS suite with its waivers) one probe also runs: one hardening
    // step undone (the sshd drop-in removed; sshd -T reads the files again, so no restart is
    // needed and the login in use stays up), then the CIS suite again. One builder and one
    // probe in all.
    let dir = scratch("cis-hardened-pipeline");
    std::fs::write(
        dir.join("undo.yml"),
        "name: undo\nchecks:\n  - id: undo-sshd-step\n    command:\n      run: rm /etc/ssh/sshd_config.d/00-bakery-cis.conf && echo undone\n      stdout: undone\n",
    )
    .unwrap();
    let mut pipeline: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(example.join("bakery.yml")).unwrap())
            .unwrap();
    let shell = &mut pipeline["build"]["provisioners"][0]["shell"];
    shell["script"] = example.join("harden.sh").display().to_string().into();
    shell["environment"]["UPGRADE"] = "no".into();
    // Outside the repository's checkout, `{{git.short_sha}}` has no value.
    pipeline["image"]["name"] = "debian-12-cis-l1-{{timestamp}}".into();
    pipeline["verify"]["junit"] = dir.join("results/junit.xml").display().to_string().into();
    let suites = pipeline["verify"]["suites"].as_sequence_mut().unwrap();
    let cis_at = suites
        .iter()
        .position(|s| s.get("cis").is_some())
        .expect("the example has a CIS suite");
    suites[cis_at]["cis"]["waivers"] = example.join("waivers.yml").display().to_string().into();
    let mut after = suites[cis_at].clone();
    after["cis"]["name"] = "cis-without-sshd-step".into();
    suites.push(dir.join("undo.yml").display().to_string().into());
    suites.push(after);
    let file = dir.join("bakery.yml");
    std::fs::write(&file, serde_yaml::to_string(&pipeline).unwrap()).unwrap();

    let started = std::time::Instant::now();
    let out = run(bakery(&data).args(["bake", "-f"]).arg(&file));
    eprintln!("bakery bake took {:.0?}", started.elapsed());
    assert_eq!(
        out.status.code(),
        Some(0),
        "the hardening bakes; the run's verdicts:\n{}",
        verdicts(&String::from_utf8_lossy(&out.stderr))
    );
    let image = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        image.starts_with("ami-"),
        "bake prints the image id: {image}"
    );
    let out = run(bakery(&data)
        .args(["verify", "--image", &image, "-f"])
        .arg(&file));
    assert_eq!(
        out.status.code(),
        Some(1),
        "without the sshd step the gate fails"
    );
    let doc = read_json(&dir.join("results/junit.json"));
    let suites = doc["suites"].as_array().unwrap();
    let named = |name: &str| {
        suites
            .iter()
            .find(|s| s["suite"] == name)
            .unwrap_or_else(|| panic!("no suite {name}"))
    };

    // The example's suites pass the gate: every reason the gate gives is about the suite run
    // after the step was undone.
    let reasons: Vec<&str> = doc["verdict"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!reasons.is_empty());
    assert!(
        reasons
            .iter()
            .all(|r| r.starts_with("cis-without-sshd-step/")),
        "{reasons:#?}"
    );
    let before = statuses(named("cis-debian-12"));
    assert!(before.values().all(|(s, _)| s != "failed" && s != "error"));
    assert!(statuses(named("smoke"))
        .values()
        .all(|(s, _)| s == "passed"));
    // The partition controls are Level 2 here, so no waiver is in use at Level 1.
    assert!(before.values().all(|(s, _)| s != "waived"));
    assert_eq!(statuses(named("undo"))["undo-sshd-step"].0, "passed");
    let after = statuses(named("cis-without-sshd-step"));

    // Exactly the controls the step covers whose Debian default is not compliant now fail:
    // the golden file says which ones the stock image fails.
    let stock: BTreeMap<String, String> = golden().into_iter().collect();
    let want: BTreeSet<String> = stock
        .iter()
        .filter(|(id, st)| sshd_step_covers(id) && st.as_str() == "failed")
        .map(|(id, _)| id.clone())
        .collect();
    let changed: BTreeSet<String> = after
        .iter()
        .filter(|(id, (st, _))| before.get(*id).map(|b| &b.0) != Some(st))
        .map(|(id, _)| id.clone())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(
        changed, want,
        "controls whose verdict changed without the sshd step"
    );
    for id in &want {
        let (st, r) = &after[id];
        assert_eq!(st, "failed", "{id}");
        let (expected, actual) = (r["expected"].as_str(), r["actual"].as_str());
        assert!(
            expected.is_some_and(|s| !s.is_empty()) && actual.is_some_and(|s| !s.is_empty()),
            "{id} shows expected and actual: {r}"
        );
    }
    assert_nothing_left(&data);
}
