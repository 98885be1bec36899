//! The PyTorch reference of bench/ builds the same architectures: its
//! parameter counts equal converge's for every paper manifest.

mod common;

use common::*;

fn python() -> std::path::PathBuf {
    let venv = std::env::var_os("VIRTUAL_ENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv"));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no venv at {}: run `make venv`",
        venv.display()
    );
    python
}

#[test]
fn reference_models_have_converge_parameter_counts() {
    for model in ["rnn", "transformer", "diffusion"] {
        let manifest = repo().join(format!("experiments/paper/{model}.toml"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_converge"))
            .args([
                "bench",
                manifest.to_str().unwrap(),
                "--steps",
                "1",
                "--warmup",
                "0",
                "--threads",
                "1",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let bench: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        assert_eq!(bench["model"], model);
        let spec = bench["spec"].to_string();
        let out = std::process::Command::new(python())
            .arg(repo().join("bench/reference.py"))
            .args(["--spec", &spec, "--count"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let reference: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        assert_eq!(reference["parameters"], bench["parameters"], "{model}");
    }
}
