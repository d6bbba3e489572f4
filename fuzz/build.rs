//! The fuzz binaries link libtorch through the main crate: embed its
//! directory as an rpath, as the main crate's build.rs does for its own
//! binaries, so they run without LD_LIBRARY_PATH.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib_dir = std::env::var("DEP_TCH_LIBTORCH_LIB").expect(
        "torch-sys did not report its libtorch directory (DEP_TCH_LIBTORCH_LIB); \
         build with LIBTORCH_USE_PYTORCH=1 in the project's .venv or set LIBTORCH",
    );
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
}
