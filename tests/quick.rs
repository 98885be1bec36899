//! Every quick manifest runs end to end, shrunk to a tiny subset.

mod common;

use common::*;
use predicates::str::contains;

/// The manifest's text with a tiny subset, one epoch and an absolute data
/// folder; everything else (model, grid) as shipped.
fn shrunk(name: &str) -> String {
    let text = std::fs::read_to_string(repo().join("experiments/quick").join(name)).unwrap();
    text.lines()
        .map(|line| {
            let key = line.split('=').next().unwrap_or("").trim();
            match key {
                "train_subset" => "train_subset = 96".to_string(),
                "test_subset" => "test_subset = 48".to_string(),
                "epochs" => "epochs = 1".to_string(),
                "dir" => format!("dir = {:?}", data_dir().display().to_string()),
                "samples" => "samples = 4".to_string(),
                _ => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn run_quick(name: &str, experiment: &str) -> Project {
    let p = Project::new();
    let study = p.path().join("quick");
    std::fs::create_dir(&study).unwrap();
    std::fs::write(study.join(name), shrunk(name)).unwrap();
    let runs = converge::plan::expand(&converge::manifest::load(&study.join(name)).unwrap()).len();
    p.converge(&["run", "quick", "-q"])
        .assert()
        .success()
        .stdout(contains(format!("computed {runs}, reused 0")));
    p.converge(&["report", "quick"])
        .assert()
        .success()
        .stdout(contains(format!("{experiment}: ranked by L_fin")));
    let ranking =
        std::fs::read_to_string(p.results().join(experiment).join("report/ranking.csv")).unwrap();
    assert_eq!(ranking.lines().count(), runs + 1, "{ranking}");
    p
}

#[test]
fn quick_rnn_runs_end_to_end() {
    run_quick("rnn.toml", "quick-rnn");
}

#[test]
fn quick_transformer_runs_end_to_end() {
    let p = run_quick("transformer.toml", "quick-transformer");
    for run in p.run_dirs("quick-transformer") {
        assert_eq!(status(&run)["state"], "done");
    }
}

#[test]
fn quick_diffusion_runs_end_to_end_and_draws_samples() {
    let p = run_quick("diffusion.toml", "quick-diffusion");
    for run in p.run_dirs("quick-diffusion") {
        assert_eq!(status(&run)["state"], "done");
        let png = std::fs::read(run.join("samples.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        let epoch0: Vec<&str> = metrics.lines().nth(1).unwrap().split(',').collect();
        // No accuracy for a generative model; the noise MSE starts near 1.
        assert_eq!(epoch0[3], "");
        let l0: f64 = epoch0[2].parse().unwrap();
        assert!(
            (0.5..1.5).contains(&l0),
            "held-out noise MSE at epoch 0: {l0}"
        );
    }
}
