//! The same spec and seed on CPU give the same curve, bit for bit, for every
//! model family; another seed gives another curve. Each run is its own
//! process, as libtorch's generator is global to a process.

mod common;

use common::*;

fn manifest(model: &str, seed: u64) -> String {
    format!(
        r#"name = "det"

[data]
dataset = "mnist"
dir = {dir:?}
train_subset = 96
test_subset = 48

[model]
{model}

[training]
epochs = 2
batch_size = 32
seeds = [{seed}]

[grid]
lr = [2e-3]
"#,
        dir = data_dir().display().to_string()
    )
}

fn curve(model: &str, seed: u64) -> String {
    let p = Project::new();
    std::fs::write(p.path().join("det.toml"), manifest(model, seed)).unwrap();
    p.converge(&["run", "det.toml", "-q"]).assert().success();
    let runs = p.run_dirs("det");
    assert_eq!(runs.len(), 1);
    losses(&runs[0].join("metrics.csv"))
}

fn check(model: &str) {
    let a = curve(model, 7);
    assert_eq!(a.lines().count(), 4, "{a}");
    assert_eq!(a, curve(model, 7), "same seed, same bits: {model}");
    assert_ne!(a, curve(model, 8), "another seed, another curve: {model}");
}

#[test]
fn rnn_curves_are_bit_identical() {
    check("kind = \"rnn\"\nhidden = 8");
}

#[test]
fn transformer_curves_are_bit_identical() {
    check("kind = \"transformer\"\nd_model = 16\nlayers = 1\nmlp = 32");
}

#[test]
fn diffusion_curves_are_bit_identical() {
    check(
        "kind = \"diffusion\"\nsteps = 20\nchannels = [8, 8, 8]\ngroups = 4\nsample_steps = 2\nsamples = 0",
    );
}
