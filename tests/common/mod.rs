//! Helpers shared by the integration tests: a temp project with a tiny
//! manifest, and the converge binary run inside it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn data_dir() -> PathBuf {
    repo().join("data/mnist")
}

/// A scratch folder holding manifests and a `results/` folder.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        Project {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn results(&self) -> PathBuf {
        self.path().join("results")
    }

    /// Write `exp.toml`: a tiny LSTM sweep over `lrs` (TOML list body).
    pub fn write_manifest(&self, name: &str, lrs: &str, extra_training: &str) -> PathBuf {
        let text = format!(
            r#"name = "{name}"

[data]
dataset = "mnist"
dir = {dir:?}
train_subset = 256
test_subset = 128

[model]
kind = "rnn"
hidden = 8

[training]
epochs = 2
batch_size = 64
{extra_training}

[grid]
lr = [{lrs}]
"#,
            dir = data_dir().display().to_string()
        );
        let path = self.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn converge(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("converge").unwrap();
        cmd.current_dir(self.path()).args(args);
        cmd
    }

    /// Run converge, require success, return its stdout.
    pub fn stdout_ok(&self, args: &[&str]) -> String {
        let out = self.converge(args).assert().success().get_output().clone();
        stdout(&out)
    }

    pub fn run_dirs(&self, experiment: &str) -> Vec<PathBuf> {
        let dir = self.results().join(experiment).join("runs");
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        dirs
    }
}

pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// metrics.csv without its `seconds` column: what must be bit-identical.
pub fn losses(metrics: &Path) -> String {
    std::fs::read_to_string(metrics)
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn status(run_dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run_dir.join("status.json")).unwrap()).unwrap()
}
