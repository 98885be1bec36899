use std::path::{Path, PathBuf};

use super::*;
use crate::plan;

fn data_dir() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/mnist")
        .display()
        .to_string()
}

fn manifest(model: &str, training: &str, grid: &str) -> String {
    format!(
        "[data]\ndataset = \"mnist\"\ndir = {:?}\n\n[model]\n{model}\n\n[training]\n{training}\n\n[grid]\n{grid}\n",
        data_dir()
    )
}

fn load_str(text: &str) -> Experiment {
    parse(Path::new("exp.toml"), text).unwrap_or_else(|e| panic!("{e}"))
}

fn ids(text: &str) -> Vec<String> {
    plan::expand(&load_str(text))
        .into_iter()
        .map(|r| r.id)
        .collect()
}

#[test]
fn paper_grid_expands_to_ten_exact_learning_rates() {
    let exp = load_str(&manifest(
        "kind = \"rnn\"",
        "epochs = 100",
        "lr = { start = 1e-4, stop = 1e-3, step = 1e-4 }",
    ));
    let texts: Vec<&str> = exp.lrs.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "0.0001", "0.0002", "0.0003", "0.0004", "0.0005", "0.0006", "0.0007", "0.0008",
            "0.0009", "0.001"
        ]
    );
    assert_eq!(exp.lrs[2].value, 0.0003);
    let runs = plan::expand(&exp);
    assert_eq!(runs.len(), 10);
    assert_eq!(runs[2].label(), "lr=0.0003 seed=0");
    assert!(runs[2].spec.canonical_json().contains("\"lr\":0.0003,"));
}

#[test]
fn log_grid_and_lists_expand() {
    let exp = load_str(&manifest(
        "kind = \"rnn\"",
        "",
        "lr = { start = 1e-4, stop = 1e-2, num = 3, scale = \"log\" }",
    ));
    let texts: Vec<&str> = exp.lrs.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["0.0001", "0.001", "0.01"]);
    let exp = load_str(&manifest("kind = \"rnn\"", "", "lr = [3e-4, 1e-3, 1]"));
    let texts: Vec<&str> = exp.lrs.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["0.0003", "0.001", "1"]);
}

#[test]
fn other_swept_keys_form_a_product_in_a_pinned_order() {
    let exp = load_str(&manifest(
        "kind = \"rnn\"\nhidden = 32",
        "seeds = [1, 2]",
        "lr = [1e-3, 2e-3]\nbatch_size = [64, 128]\ncell = [\"lstm\", \"gru\"]",
    ));
    let labels: Vec<String> = plan::expand(&exp).iter().map(|r| r.label()).collect();
    assert_eq!(labels.len(), 16);
    assert_eq!(labels[0], "batch_size=64 cell=lstm lr=0.001 seed=1");
    assert_eq!(labels[1], "batch_size=64 cell=lstm lr=0.001 seed=2");
    assert_eq!(labels[2], "batch_size=64 cell=lstm lr=0.002 seed=1");
    assert_eq!(labels[4], "batch_size=64 cell=gru lr=0.001 seed=1");
    assert_eq!(labels[8], "batch_size=128 cell=lstm lr=0.001 seed=1");
    let runs = plan::expand(&exp);
    assert_eq!(runs[8].spec.training.batch_size, 128);
    let mut unique: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 16, "every run has its own id");
}

#[test]
fn ids_ignore_key_order_layout_comments_and_float_spelling() {
    let a = manifest(
        "kind = \"rnn\"\nhidden = 32\nlayers = 1",
        "epochs = 3\nbatch_size = 64",
        "lr = [1e-4, 3e-4]",
    );
    let b = format!(
        "# a comment\n[grid]\nlr = [ 0.0001 , 0.0003 ]   # spelled out\n\n[training]\nbatch_size=64\nepochs=3\n\n[model]\nlayers = 1\nhidden = 32\nkind = \"rnn\"\n\n[data]\ndir = {:?}\ndataset = \"mnist\"\n",
        data_dir()
    );
    assert_eq!(ids(&a), ids(&b));
    // Defaults written out change nothing either.
    let c = manifest(
        "kind = \"rnn\"\nhidden = 32\nlayers = 1\ncell = \"lstm\"\nbidirectional = false",
        "epochs = 3\nbatch_size = 64\noptimizer = \"adam\"\nweight_decay = 0.0",
        "lr = [1e-4, 3e-4]",
    );
    assert_eq!(ids(&a), ids(&c));
}

#[test]
fn ids_change_with_every_value_that_affects_training() {
    let base = ids(&manifest("kind = \"rnn\"", "epochs = 3", "lr = [1e-4]"))[0].clone();
    let variants = [
        manifest("kind = \"rnn\"\nhidden = 64", "epochs = 3", "lr = [1e-4]"),
        manifest(
            "kind = \"rnn\"\ncell = \"gru\"",
            "epochs = 3",
            "lr = [1e-4]",
        ),
        manifest(
            "kind = \"rnn\"\nbidirectional = true",
            "epochs = 3",
            "lr = [1e-4]",
        ),
        manifest("kind = \"rnn\"", "epochs = 4", "lr = [1e-4]"),
        manifest(
            "kind = \"rnn\"",
            "epochs = 3\nbatch_size = 64",
            "lr = [1e-4]",
        ),
        manifest(
            "kind = \"rnn\"",
            "epochs = 3\noptimizer = \"sgd\"",
            "lr = [1e-4]",
        ),
        manifest(
            "kind = \"rnn\"",
            "epochs = 3\nweight_decay = 0.01",
            "lr = [1e-4]",
        ),
        manifest("kind = \"rnn\"", "epochs = 3\nseeds = [1]", "lr = [1e-4]"),
        manifest("kind = \"rnn\"", "epochs = 3", "lr = [2e-4]"),
    ];
    for v in &variants {
        assert_ne!(ids(v)[0], base, "{v}");
    }
    // A subset of the data is another run too.
    let subset = manifest("kind = \"rnn\"", "epochs = 3", "lr = [1e-4]").replace(
        "dataset = \"mnist\"",
        "dataset = \"mnist\"\ntrain_subset = 100",
    );
    assert_ne!(ids(&subset)[0], base);
    // Momentum only matters to sgd; the device never enters the id.
    let unchanged = manifest(
        "kind = \"rnn\"",
        "epochs = 3\nmomentum = 0.5\ndevice = \"cpu\"",
        "lr = [1e-4]",
    );
    assert_eq!(ids(&unchanged)[0], base);
    let sgd = |m: &str| {
        ids(&manifest(
            "kind = \"rnn\"",
            &format!("epochs = 3\noptimizer = \"sgd\"\nmomentum = {m}"),
            "lr = [1e-4]",
        ))[0]
            .clone()
    };
    assert_ne!(sgd("0.5"), sgd("0.9"));
}

#[test]
fn the_name_defaults_to_the_file_stem() {
    let exp = parse(
        Path::new("x/paper-rnn.toml"),
        &manifest("kind = \"rnn\"", "", "lr = [1e-3]"),
    )
    .unwrap();
    assert_eq!(exp.name, "paper-rnn");
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// `# expect: LINE:COLUMN: message fragment` on each fixture's first line.
fn expectation(path: &Path) -> (usize, usize, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let first = text.lines().next().unwrap();
    let rest = first
        .strip_prefix("# expect: ")
        .expect("fixture starts with # expect:");
    let mut parts = rest.splitn(3, ':');
    let line = parts.next().unwrap().trim().parse().unwrap();
    let column = parts.next().unwrap().trim().parse().unwrap();
    (line, column, parts.next().unwrap().trim().to_string())
}

#[test]
fn every_broken_manifest_names_file_line_column_and_what_was_expected() {
    let files = fixtures();
    assert!(files.len() >= 15, "keep at least 15 broken manifests");
    for file in files {
        let (line, column, fragment) = expectation(&file);
        let err = load(&file).expect_err(&file.display().to_string());
        assert_eq!(err.path, file);
        assert_eq!(
            (err.line, err.column),
            (line, column),
            "{}: {err}",
            file.display()
        );
        assert!(
            err.message.contains(&fragment),
            "{}: {err}\nexpected: {fragment}",
            file.display()
        );
    }
}
