//! A kill mid-run corrupts nothing, and the rerun gives the same curve as an
//! uninterrupted run.

mod common;

use std::time::{Duration, Instant};

use common::*;
use predicates::str::contains;

#[test]
fn a_killed_run_is_retrained_to_the_same_curve() {
    let p = Project::new();
    p.write_manifest("killed", "1e-3", "epochs = 6");
    let manifest = p.path().join("killed.toml");
    // write_manifest sets `epochs = 2`: drop it so `epochs = 6` stands
    // alone, and train on more images so the kill lands mid-run.
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("epochs = 2\n", "")
        .replace("train_subset = 256", "train_subset = 2048");
    std::fs::write(&manifest, text).unwrap();

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_converge"))
        .current_dir(p.path())
        .args(["run", "killed.toml", "-q"])
        .spawn()
        .unwrap();
    let started = Instant::now();
    let metrics = loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no epoch finished"
        );
        if let Ok(dirs) = std::fs::read_dir(p.results().join("killed/runs"))
            && let Some(dir) = dirs.flatten().next()
        {
            let m = dir.path().join("metrics.csv");
            let rows = std::fs::read_to_string(&m)
                .map(|t| t.lines().count())
                .unwrap_or(0);
            if rows >= 3 {
                break m;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let run_dir = metrics.parent().unwrap().to_path_buf();
    assert_eq!(status(&run_dir)["state"], "running");
    // Whatever was on disk at the kill is a whole file.
    let partial = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        partial.ends_with('\n') && partial.lines().count() < 8,
        "{partial}"
    );

    p.converge(&["plan", "killed.toml"])
        .assert()
        .success()
        .stdout(contains("1 interrupted"));
    p.converge(&["run", "killed.toml", "-q"])
        .assert()
        .success()
        .stdout(contains("computed 1, reused 0"));
    assert_eq!(status(&run_dir)["state"], "done");
    let resumed = losses(&metrics);
    assert_eq!(resumed.lines().count(), 8);

    // The same run, never interrupted, elsewhere.
    let q = Project::new();
    std::fs::copy(&manifest, q.path().join("killed.toml")).unwrap();
    q.converge(&["run", "killed.toml", "-q"]).assert().success();
    assert_eq!(
        losses(&q.run_dirs("killed")[0].join("metrics.csv")),
        resumed
    );
}
