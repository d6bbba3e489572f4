//! Link-time setup for libtorch.
//!
//! `torch-sys` tells us (through its `links = "tch"` metadata) where the
//! libtorch shared libraries live. We embed that directory as an rpath so the
//! built binaries run with no hand-set `LD_LIBRARY_PATH`, and we link
//! `libtorch_cuda.so` with `--no-as-needed`: nothing references its symbols
//! directly, so the default `--as-needed` would drop it and CUDA would be
//! reported missing even on a GPU box.
//!
//! It also compiles `src/train/amp/autocast.cpp`, the small C++ shim that
//! switches libtorch's autocast per device and reduced type (tch exposes
//! CUDA float16 only), against the same libtorch's headers.

use std::path::{Path, PathBuf};

const AUTOCAST_SHIM: &str = "src/train/amp/autocast.cpp";

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-changed={AUTOCAST_SHIM}");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!(
            "torch-sys did not report its libtorch directory (DEP_TCH_LIBTORCH_LIB); \
             build with LIBTORCH_USE_PYTORCH=1 in the project's .venv or set LIBTORCH \
             (see the README's build section)"
        );
    };
    let lib = Path::new(&lib_dir);
    compile_autocast_shim(lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-search=native={lib_dir}");
        // Only where tensors live: the light `scintigan` front must not load
        // libtorch at all (start-up time and memory of the CLI, daemon and
        // dashboard).
        let force_cuda = "-Wl,--no-as-needed,-ltorch_cuda,--as-needed";
        println!("cargo:rustc-link-arg-bin=scintigan-torch={force_cuda}");
        println!("cargo:rustc-link-arg-tests={force_cuda}");
        println!("cargo:rustc-link-arg-benches={force_cuda}");
    }
}

/// Build the autocast shim against libtorch's headers: `LIBTORCH_INCLUDE`
/// when set (as torch-sys reads it, for headers installed apart from the
/// libraries), else the `include/` next to libtorch's `lib/` (`torch/include`
/// in the PyTorch wheel, `include` in a libtorch download).
fn compile_autocast_shim(lib: &Path) {
    println!("cargo:rerun-if-env-changed=LIBTORCH_INCLUDE");
    let include = match std::env::var_os("LIBTORCH_INCLUDE") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => lib.parent().map(|root| root.join("include")),
    };
    let Some(include) = include.filter(|dir| dir.join("c10/core/ScalarType.h").exists()) else {
        panic!(
            "no libtorch headers (c10/core/ScalarType.h) in LIBTORCH_INCLUDE or next to {}; \
             the PyTorch wheel and the libtorch archive both ship them",
            lib.display()
        );
    };
    cc::Build::new()
        .cpp(true)
        .file(AUTOCAST_SHIM)
        .include(&include)
        .flag("-std=c++17")
        .warnings(false)
        .compile("scintigan_autocast");
}
