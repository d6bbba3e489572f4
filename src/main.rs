//! `scintigan`: the light front. The dashboard, the daemon and the queue
//! commands run here without loading libtorch (they start in milliseconds
//! and stay small); training, evaluation and model commands are handed to
//! `scintigan-torch` beside this binary (exec: same process, same pid).

// The torch-free parts of the library, compiled into this binary so that
// it links no libtorch (the library crate as a whole does).
#[allow(dead_code, unused_imports)]
#[path = "config/mod.rs"]
mod config;
#[allow(dead_code, unused_imports)]
#[path = "daemon/mod.rs"]
mod daemon;
mod queue_cli;
#[allow(dead_code, unused_imports)]
#[path = "store/mod.rs"]
mod store;
#[allow(dead_code, unused_imports)]
#[path = "tui/mod.rs"]
mod tui;

use clap::Parser;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

/// Commands that need libtorch (and `--help`, whose full text lives there).
const TORCH_COMMANDS: [&str; 11] = [
    "check",
    "run",
    "worker",
    "bench",
    "model",
    "eval",
    "gradcam",
    "weights",
    "data",
    "experiment",
    "help",
];

#[derive(Parser)]
#[command(name = "scintigan", version)]
struct Cli {
    #[command(flatten)]
    global: queue_cli::GlobalArgs,
    #[command(subcommand)]
    command: Option<queue_cli::QueueCommand>,
}

/// Whether `args` (without the program name) ask for a libtorch command.
fn needs_torch(args: &[OsString]) -> bool {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        match a.as_ref() {
            "--runs-dir" | "--configs-dir" => i += 2,
            s if s.starts_with("--runs-dir=") || s.starts_with("--configs-dir=") => i += 1,
            "-h" | "--help" | "-V" | "--version" => return true,
            s => return TORCH_COMMANDS.contains(&s),
        }
    }
    false
}

fn exec_torch(args: &[OsString]) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("scintigan"));
    let torch = exe.with_file_name("scintigan-torch");
    let err = std::process::Command::new(&torch).args(args).exec();
    eprintln!(
        "error: cannot start {}: {err}; scintigan-torch must sit beside scintigan (make build puts both in target/release/)",
        torch.display()
    );
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if needs_torch(&args) {
        return exec_torch(&args);
    }
    let cli = Cli::parse();
    let result = match &cli.command {
        None => {
            let paths = daemon::Paths::new(&cli.global.runs_dir, &cli.global.configs_dir);
            tui::run_dashboard(&paths).map(|()| ExitCode::SUCCESS)
        }
        Some(command) => {
            queue_cli::dispatch(command, &cli.global.runs_dir, &cli.global.configs_dir)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torch_commands_are_recognised_after_global_flags() {
        let v = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(needs_torch(&v(&["run", "x.toml"])));
        assert!(needs_torch(&v(&["--runs-dir", "r", "worker", "r/x"])));
        assert!(needs_torch(&v(&["--runs-dir=r", "--help"])));
        assert!(!needs_torch(&v(&["--runs-dir", "r", "status"])));
        assert!(!needs_torch(&v(&[])));
        assert!(!needs_torch(&v(&["--configs-dir", "c"])));
    }
}
