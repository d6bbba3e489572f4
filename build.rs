//! Link-time setup for libtorch.
//!
//! `torch-sys` tells us (through its `links = "tch"` metadata) where the
//! libtorch shared libraries live. We embed that directory as an rpath so the
//! built binaries run with no hand-set `LD_LIBRARY_PATH`, and we link
//! `libtorch_cuda.so` with `--no-as-needed`: nothing references its symbols
//! directly, so the default `--as-needed` would drop it and CUDA would be
//! reported missing even on a GPU box.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!(
            "cargo:warning=torch-sys did not report its libtorch directory; \
             the binary will need LD_LIBRARY_PATH to find libtorch"
        );
        return;
    };
    let lib = Path::new(&lib_dir);
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
