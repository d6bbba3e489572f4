//! A per-process scratch folder for the targets whose API takes a path:
//! each input is written to one file in it (parallel jobs are separate
//! processes, so they never share a file).

use std::path::PathBuf;
use std::sync::OnceLock;

/// `$TMPDIR/scintigan-fuzz-<target>-<pid>/`, created on first use.
pub fn dir(target: &str) -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("scintigan-fuzz-{target}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the fuzz scratch folder");
        dir
    })
}
