//! Links libtorch_cuda for real and records the torch version.
//!
//! torch-sys exports the libtorch library directory as `DEP_TCH_LIBTORCH_LIB`.
//! We add it as an rpath (the binary runs without LD_LIBRARY_PATH) and force
//! `libtorch_cuda.so` into the link: with `--as-needed` the linker would drop
//! it, since no symbol of ours references it, and CUDA would silently vanish.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=DEP_TCH_LIBTORCH_LIB is not set; CUDA will not be linked");
        println!("cargo:rustc-env=CONVERGE_TORCH_VERSION=unknown");
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
    // PyPI's torch keeps `version.py` one level above `lib/`.
    let version_py = Path::new(&lib).join("..").join("version.py");
    println!("cargo:rerun-if-changed={}", version_py.display());
    let version = std::fs::read_to_string(&version_py)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("__version__ = "))
                .map(|v| v.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=CONVERGE_TORCH_VERSION={version}");
}
