//! Bad input gets a clear error, a distinct exit code, and writes nothing.

mod common;

use common::*;
use predicates::str::contains;

#[test]
fn every_broken_manifest_exits_2_names_the_place_and_writes_nothing() {
    let dir = repo().join("tests/fixtures/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 15);
    for file in files {
        let first = std::fs::read_to_string(&file).unwrap();
        let expect = first
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("# expect: ");
        let (place, message) = expect.split_at(expect.find(": ").unwrap());
        let p = Project::new();
        for cmd in ["plan", "run", "report"] {
            let out = p.converge(&[cmd, file.to_str().unwrap()]).output().unwrap();
            let err = stderr(&out);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{cmd} {}: {err}",
                file.display()
            );
            let headline = format!("error: {}:{place}", file.display());
            assert!(
                err.starts_with(&headline),
                "{cmd}: expected {headline}\ngot: {err}"
            );
            assert!(err.contains(message.trim_start_matches(": ")), "{err}");
            assert!(!err.contains("panicked"), "{err}");
            assert!(
                !p.results().exists(),
                "{cmd} wrote results for a broken manifest"
            );
        }
    }
}

#[test]
fn a_broken_manifest_in_a_study_stops_the_whole_study_before_training() {
    let p = Project::new();
    let study = p.path().join("study");
    std::fs::create_dir(&study).unwrap();
    p.write_manifest("good", "1e-3", "");
    std::fs::rename(p.path().join("good.toml"), study.join("a.toml")).unwrap();
    std::fs::copy(
        repo().join("tests/fixtures/bad/zero_epochs.toml"),
        study.join("b.toml"),
    )
    .unwrap();
    p.converge(&["run", "study"])
        .assert()
        .code(2)
        .stderr(contains("b.toml:"));
    assert!(!p.results().exists());
}

#[test]
fn missing_dataset_files_exit_3_naming_the_file() {
    let p = Project::new();
    let empty = p.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let manifest = p.write_manifest("nodata", "1e-3", "");
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        &data_dir().display().to_string(),
        &empty.display().to_string(),
    );
    std::fs::write(&manifest, text).unwrap();
    p.converge(&["run", "nodata.toml"])
        .assert()
        .code(3)
        .stderr(contains("train-images-idx3-ubyte.gz"));
}

#[test]
fn an_unavailable_device_exits_6() {
    let p = Project::new();
    p.write_manifest("dev", "1e-3", "device = \"cuda:7\"");
    p.converge(&["run", "dev.toml"])
        .assert()
        .code(6)
        .stderr(contains("cuda:7"));
}

#[test]
fn a_held_lock_exits_4() {
    let p = Project::new();
    p.write_manifest("locked", "1e-3", "");
    let exp = p.results().join("locked");
    std::fs::create_dir_all(&exp).unwrap();
    let lock = std::fs::File::create(exp.join(".lock")).unwrap();
    lock.lock().unwrap();
    p.converge(&["run", "locked.toml"])
        .assert()
        .code(4)
        .stderr(contains("another converge process"));
}

#[test]
fn usage_errors_exit_2() {
    let p = Project::new();
    p.converge(&["frobnicate"]).assert().code(2);
    p.converge(&["plan", "no-such.toml"])
        .assert()
        .code(2)
        .stderr(contains("no-such.toml"));
}

#[test]
fn the_binary_links_libtorch_cuda() {
    // CI has no GPU to notice if the linker dropped CUDA: check the link.
    let out = std::process::Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_converge"))
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("libtorch_cuda.so"), "{text}");
    assert!(!text.contains("not found"), "{text}");
}
