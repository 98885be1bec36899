//! End to end: plan, run, rerun, grow the grid, report, determinism.

mod common;

use common::*;
use predicates::str::contains;

#[test]
fn sweep_trains_once_reuses_and_trains_only_what_is_new() {
    let p = Project::new();
    p.write_manifest("tiny", "1e-3, 3e-3", "");

    let out = p.stdout_ok(&["plan", "tiny.toml"]);
    assert!(out.contains("tiny (tiny.toml): 2 runs: 2 new"), "{}", out);
    assert!(!p.results().exists(), "plan writes nothing");

    p.converge(&["run", "tiny.toml"])
        .assert()
        .success()
        .stdout(contains("computed 2, reused 0"));
    let runs = p.run_dirs("tiny");
    assert_eq!(runs.len(), 2);
    for run in &runs {
        let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        let lines: Vec<&str> = metrics.lines().collect();
        assert_eq!(
            lines[0],
            "epoch,train_loss,test_loss,test_accuracy,lr,seconds"
        );
        assert_eq!(lines.len(), 4, "header + epochs 0..2:\n{metrics}");
        assert!(lines[1].starts_with("0,"));
        let s = status(run);
        assert_eq!(s["state"], "done");
        assert_eq!(s["device"], "cpu");
        assert!(s["parameters"].as_i64().unwrap() > 0);
        assert!(s["torch_version"].as_str().unwrap().starts_with("2.13.0"));
        assert!(s["finished"].is_string());
        let spec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("spec.json")).unwrap()).unwrap();
        assert_eq!(spec["model"]["kind"], "rnn");
        // The folder name is the hash of the spec.
        assert_eq!(run.file_name().unwrap().len(), 16);
    }
    // Epoch 0 is measured before any update: near ln 10 for 10 classes.
    let first = std::fs::read_to_string(runs[0].join("metrics.csv")).unwrap();
    let l0: f64 = first
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert!((l0 - 10f64.ln()).abs() < 0.2, "L_0 = {l0}");

    p.converge(&["run", "tiny.toml"])
        .assert()
        .success()
        .stdout(contains("computed 0, reused 2"));

    // One more learning rate: one more run; reformatting changes nothing.
    p.write_manifest("tiny", "0.001,   0.003, 2e-3", "# reformatted");
    let out = p.stdout_ok(&["plan", "tiny.toml", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let states: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["done", "done", "new"]);
    assert_eq!(rows[2]["label"], "lr=0.002 seed=0");
    p.converge(&["run", "tiny.toml"])
        .assert()
        .success()
        .stdout(contains("computed 1, reused 2"));

    // Dropping a learning rate leaves its results, shown as orphaned.
    p.write_manifest("tiny", "1e-3, 2e-3", "");
    let out = p.stdout_ok(&["plan", "tiny.toml"]);
    assert!(
        out.contains("2 done, 0 diverged, 0 failed, 0 interrupted, 1 orphaned"),
        "{}",
        out
    );

    // The report ranks the runs the manifest names.
    p.write_manifest("tiny", "1e-3, 3e-3, 2e-3", "");
    let out = p.stdout_ok(&["report", "tiny.toml"]);
    assert!(
        out.contains("tiny: ranked by L_fin of test_loss"),
        "{}",
        out
    );
    let ranking = std::fs::read_to_string(p.results().join("tiny/report/ranking.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(ranking.as_bytes());
    let header = reader.headers().unwrap().clone();
    for col in ["rank", "id", "lr", "L_0", "L_fin", "L_best", "T_tau", "AUC"] {
        assert!(
            header.iter().any(|h| h == col),
            "missing column {col}: {header:?}"
        );
    }
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let l_fin: Vec<f64> = rows
        .iter()
        .map(|r| r[col("L_fin")].parse().unwrap())
        .collect();
    assert!(
        l_fin.windows(2).all(|w| w[0] <= w[1]),
        "ranked by L_fin: {l_fin:?}"
    );
    let ranks: Vec<&str> = rows.iter().map(|r| &r[col("rank")]).collect();
    assert_eq!(ranks, ["1", "2", "3"]);
}

#[test]
fn a_diverging_run_is_kept_and_the_sweep_goes_on() {
    let p = Project::new();
    // With sgd, weight decay scales the weights by (1 - lr wd) each step:
    // at lr = 1e6 they overflow to inf within a few steps, and the loss to NaN.
    p.write_manifest(
        "boom",
        "1e-3, 1e6",
        "optimizer = \"sgd\"\nmomentum = 0.0\nweight_decay = 1.0",
    );
    p.converge(&["run", "boom.toml"])
        .assert()
        .success()
        .stdout(contains("computed 2, reused 0"))
        .stdout(contains("1 run(s) diverged"));
    let states: Vec<String> = p
        .run_dirs("boom")
        .iter()
        .map(|d| status(d)["state"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = states.clone();
    sorted.sort();
    assert_eq!(sorted, ["diverged", "done"]);
    // Diverged runs are final: a rerun trains nothing.
    p.converge(&["run", "boom.toml"])
        .assert()
        .success()
        .stdout(contains("computed 0, reused 2"));
    let out = p.stdout_ok(&["report", "boom.toml"]);
    let ranking = std::fs::read_to_string(p.results().join("boom/report/ranking.csv")).unwrap();
    let last = ranking.lines().last().unwrap();
    assert!(
        last.contains(",diverged,"),
        "diverged ranks last:\n{ranking}\n{}",
        out
    );
}
