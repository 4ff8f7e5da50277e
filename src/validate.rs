//! `bakery validate`: reads the pipeline file and everything it names (suite files, Goss files
//! and their vars, built-in suites with their variables, CIS benchmarks with their tailoring,
//! waivers and attestations, provisioner scripts and file sources, image name templates)
//! without booting anything or calling a cloud API, and reports every problem found, each as
//! `file:line:col: what is wrong; what is accepted`.

use std::path::Path;

use crate::error::Error;

/// Every problem in the pipeline file at `path` and the files it names; empty when it is valid.
pub fn validate(path: &Path) -> Vec<String> {
    let loaded = match crate::config::read(path) {
        Ok(l) => l,
        // A file that does not parse hides whatever else is wrong; this one problem is all.
        Err(e) => return vec![e.to_string()],
    };
    let mut problems = crate::config::problems(&loaded);
    let (_, errors) = crate::verify::read_suites(&loaded, &[], &Default::default());
    for e in errors {
        // A missing file was reported above, with its place in the pipeline file.
        if let Error::Io { source, .. } = &e {
            if source.kind() == std::io::ErrorKind::NotFound {
                continue;
            }
        }
        problems.extend(e.to_string().lines().map(str::to_string));
    }
    problems.dedup();
    problems
}

/// What `bakery validate` prints and returns: the problems one a line on stderr, then a
/// summary; exit 0 when there are none, 2 otherwise.
pub fn run(path: &Path) -> crate::Result<i32> {
    let problems = validate(path);
    for p in &problems {
        crate::say!("{p}");
    }
    if problems.is_empty() {
        crate::say!(
            "{}: valid: the pipeline and every file it names",
            path.display()
        );
        return Ok(crate::error::EXIT_OK);
    }
    Err(Error::Config(summary(path, problems.len())))
}

/// The closing line of a validation that found `n` problems.
pub fn summary(path: &Path, n: usize) -> String {
    format!(
        "{}: {n} problem{} in the pipeline and the files it names",
        path.display(),
        if n == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bakery.yml");
        std::fs::write(dir.path().join("web.yml"), "- id: a\n  servise: {}\n").unwrap();
        std::fs::write(
            dir.path().join("waivers.yml"),
            "\"5.1.4\": {justification: ok}\n\"9.9\": {justification: typo}\n",
        )
        .unwrap();
        std::fs::write(
            &p,
            "source:\n  local: debian-12\nimage:\n  name: web-{{git.branch}}\nbuild:\n  provisioners:\n    - shell: {script: setup.sh}\nverify:\n  concurrency: 0\n  suites:\n    - web.yml\n    - builtin: smok\n    - cis: {benchmark: debian-12, waivers: waivers.yml}\n    - goss: missing.yaml\n",
        )
        .unwrap();
        let problems = validate(&p);
        let shown: Vec<String> = problems
            .iter()
            .map(|l| l.replace(&format!("{}/", dir.path().display()), ""))
            .collect();
        let starts = [
            "bakery.yml:4:3: image.name: unknown template variable `git.branch`",
            "bakery.yml:7:7: build.provisioners[0].shell.script: setup.sh is not a file",
            "bakery.yml:9:3: verify.concurrency: must be at least 1",
            "bakery.yml:14:5: verify.suites[3]: missing.yaml is not a file",
            "web.yml:2:3: [0]: unknown field `servise`",
            "bakery.yml:12:7: verify.suites[1].builtin: there is no built-in suite `smok`",
            "waivers.yml:2:1: a waiver for `9.9`",
        ];
        assert_eq!(shown.len(), starts.len(), "{shown:#?}");
        for (line, start) in shown.iter().zip(starts) {
            assert!(
                line.starts_with(start),
                "{line}\ndoes not start with\n{start}"
            );
        }
    }

    #[test]
    fn a_file_that_does_not_parse_is_one_problem() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bakery.yml");
        std::fs::write(&p, "source:\n  local: debian-12\n image:\n").unwrap();
        let problems = validate(&p);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("bakery.yml:3:2: "), "{problems:?}");
    }
}
