//! Promotion to four regions vs one (issue 11): does copying in parallel keep a four-region
//! promotion within 1.5 times a one-region one?
//!
//! moto behind the test proxy (tests/aws_common): the proxy holds each copy `pending` in
//! `DescribeImages` for `--delay` seconds after `CopyImage` returns, as a real copy takes a
//! while, so the time is dominated by waiting for copies, as on AWS. Each run starts from a
//! fresh moto with one verified image, then times `bakery promote` (the binary built for the
//! bench) to one region (the baking region, re-encrypted with a key: one copy) or four (the
//! baking region and three others, a key each: four copies), shared with an account and
//! deprecated, as the example does. The two settings alternate, `--runs` times each; medians
//! and their ratio are printed.
//!
//! Run with `scripts/bench-promote.sh [--runs N] [--delay SECONDS]`.

#[path = "../../tests/aws_common/mod.rs"]
mod aws_common;

use std::path::Path;
use std::time::{Duration, Instant};

use aws_common::{bakery, example_copy, repo, Endpoint};

const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1"];

fn pipeline(dir: &Path, regions: usize) -> tempfile::TempPath {
    let text = std::fs::read_to_string(repo().join("examples/aws/bakery.yml")).unwrap();
    let start = text.find("\npromote:").unwrap();
    let mut text = text[..start].replace(
        "  junit: bakery-results/junit.xml",
        &format!("  junit: {}/junit.xml", dir.display()),
    );
    text.push_str("\npromote:\n  pointer: /golden/bench/latest\n  regions:\n");
    for r in &REGIONS[..regions] {
        text.push_str(&format!("    - {{region: {r}, kms_key: alias/golden}}\n"));
    }
    text.push_str("  share: {accounts: ['111122223333']}\n  deprecate_after: 90d\n");
    example_copy(".bench-promote-", &text)
}

/// One timed promotion to `regions` regions.
fn run_once(regions: usize, delay: Duration) -> Duration {
    let e = Endpoint::start();
    *e.images.copy_delay.lock().unwrap() = delay;
    let results = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let file = pipeline(results.path(), regions);
    let image = aws_common::verified_image(&e, "golden-bench");
    let started = Instant::now();
    let out = bakery(&e, data.path())
        .args(["promote", "-f"])
        .arg(&file)
        .args(["--image", &image])
        .output()
        .unwrap();
    let took = started.elapsed();
    let copies = e.images.copies.lock().unwrap().len();
    if !out.status.success() || copies != regions {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        panic!("promotion to {regions} region(s) failed or made {copies} copies");
    }
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut runs = 3;
    let mut delay = 20.0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--delay" => {
                delay = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--delay SECONDS")
            }
            "--bench" => {}
            other => panic!("unknown argument `{other}`; use --runs N, --delay SECONDS"),
        }
    }
    let delay = Duration::from_secs_f64(delay);
    let (mut one, mut four) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        let a = run_once(1, delay);
        let b = run_once(4, delay);
        println!(
            "run {run}: 1 region {:.1} s, 4 regions {:.1} s",
            a.as_secs_f64(),
            b.as_secs_f64()
        );
        one.push(a);
        four.push(b);
    }
    let (m1, m4) = (median(one.clone()), median(four.clone()));
    let fmt = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.1} s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "\ncopy delay {:.0} s, {runs} runs each\n",
        delay.as_secs_f64()
    );
    println!("| regions | copies | runs | **median** |\n|---|---:|---|---:|");
    println!(
        "| 1 (us-east-1) | 1 | {} | **{:.1} s** |",
        fmt(&one),
        m1.as_secs_f64()
    );
    println!(
        "| 4 (us-east-1, eu-west-1, ap-southeast-2, sa-east-1) | 4 | {} | **{:.1} s** |",
        fmt(&four),
        m4.as_secs_f64()
    );
    let ratio = m4.as_secs_f64() / m1.as_secs_f64();
    println!(
        "\nfour regions / one region: {ratio:.2} (target: at most 1.5) — {}",
        if ratio <= 1.5 { "met" } else { "NOT met" }
    );
}
