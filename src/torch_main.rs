//! `scintigan-torch`: every command, libtorch linked. The light `scintigan`
//! front hands it the training, evaluation and model commands.

mod data_cli;
mod experiment_cli;
mod progress;
mod queue_cli;

// queue_cli reaches these through crate::, as in the light front.
use scintigan::{daemon, tui};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use scintigan::config::{self, KnownRuns};
use scintigan::store::{self, RunDir, RunState};
use scintigan::train::bench::BenchRequest;
use scintigan::worker::{self, WorkerOutcome};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "scintigan",
    bin_name = "scintigan",
    version,
    about = "Train and watch MU-ACGAN bone-scan classification runs from a terminal"
)]
struct Cli {
    #[command(flatten)]
    global: queue_cli::GlobalArgs,
    /// With no command: the dashboard.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate config files without running them; exits non-zero on any error.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a config's stages in the foreground, with a progress bar.
    ///
    /// `run CONFIG` starts a new run; `run CONFIG --resume` continues the newest
    /// unfinished run of that config; `run --resume RUN_DIR` continues that run.
    /// Ctrl-C stops at the next step, writes a checkpoint and exits 130.
    Run {
        /// A config file, or with --resume a run directory.
        target: PathBuf,
        /// Continue from the latest checkpoint instead of starting afresh.
        #[arg(long)]
        resume: bool,
    },
    /// Run or continue one run directory (what the daemon starts); no progress bar.
    Worker { run_dir: PathBuf },
    /// Time training steps of a model on random data already on the device:
    /// median and minimum step time and images per second.
    Bench(BenchArgs),
    /// Describe a model: parameters per layer group and output shapes.
    Model {
        #[command(subcommand)]
        action: ModelAction,
    },
    /// Metrics and confusion matrix of a trained classifier run.
    ///
    /// On the run's own test split, or with --data on a folder of class
    /// subfolders (every image). Precision, recall, specificity and F1 are
    /// one-vs-rest per class, 0 where undefined (a class never predicted).
    Eval {
        run_dir: PathBuf,
        /// A folder of class subfolders named like the run's classes.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Use the weights with the best test accuracy instead of the final ones.
        #[arg(long)]
        best: bool,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
        /// Write per-image predictions as CSV (file, true, predicted, probabilities).
        #[arg(long)]
        predictions: Option<PathBuf>,
    },
    /// Grad-CAM heat maps of a trained classifier run for some images.
    ///
    /// Writes, per image, `<stem>-<layer>.png`: the scan with the heat map
    /// laid over it (red = where the score of the class rose), for each target
    /// layer (one per branch of the multi-scale model, plus `combined`).
    Gradcam {
        /// A run directory whose last stage is a classifier.
        run_dir: PathBuf,
        /// PNG or JPEG images.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Class to explain (index or name); default: each image's prediction.
        #[arg(long)]
        class: Option<String>,
        /// Output folder.
        #[arg(long, default_value = "gradcam")]
        out: PathBuf,
    },
    /// Pretrained weights: import torchvision checkpoints.
    Weights {
        #[command(subcommand)]
        action: WeightsAction,
    },
    /// Queue one of the paper's experiments (its Tables 3-8) through the
    /// daemon, wait for the runs, and write runs/experiments/<table>/<tag>/report.md
    /// with charts, beside the paper's numbers.
    Experiment(experiment_cli::ExperimentArgs),
    /// Data sets: synthetic phantoms, DICOM ingestion, contact sheets.
    Data {
        #[command(subcommand)]
        action: data_cli::DataAction,
    },
    #[command(flatten)]
    Queue(queue_cli::QueueCommand),
}

/// `scintigan bench`'s options.
#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Any model.arch: mu-acgan, acgan, multiscale, resnet34, ...
    #[arg(long)]
    arch: String,
    /// HEIGHTxWIDTH.
    #[arg(long, default_value = "256x128")]
    size: String,
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Timed steps after one warm-up.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// fp32, bf16 or fp16 (autocast, as train.precision).
    #[arg(long, default_value = "fp32")]
    precision: String,
    /// NHWC weights and inputs (as train.channels_last).
    #[arg(long)]
    channels_last: bool,
    /// model.base_channels (default: the model's).
    #[arg(long)]
    base_channels: Option<usize>,
    /// model.latent_dim of a GAN (default: the model's).
    #[arg(long)]
    latent_dim: Option<usize>,
    /// train.mode_seeking of a GAN step (0: the literal objective, as the
    /// PyTorch yardstick; runs default to 0.3).
    #[arg(long, default_value_t = 0.0)]
    mode_seeking: f64,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ModelAction {
    /// Layer table, parameter count and output shapes of ARCH.
    Summary {
        /// mu-acgan, acgan, multiscale, densenet121, vgg16, resnext50_32x4d,
        /// resnet34, mobilenet_v3_large, inception_v3, efficientnet_b0, small-cnn.
        arch: String,
        /// Input size HEIGHTxWIDTH.
        #[arg(long, default_value = "256x128")]
        size: String,
        /// Number of classes.
        #[arg(long, default_value_t = 3)]
        classes: i64,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum WeightsAction {
    /// Check a torchvision checkpoint key for key and shape for shape against
    /// our model of ARCH (with its 1000-class ImageNet head) and write it as
    /// safetensors. Reads torch.save `.pth` files (DenseNet's legacy key names
    /// included) and `.safetensors`.
    Import {
        file: PathBuf,
        /// densenet121, vgg16, resnext50_32x4d, resnet34, mobilenet_v3_large,
        /// inception_v3 or efficientnet_b0.
        #[arg(long)]
        arch: String,
        /// The safetensors file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(command) = &cli.command else {
        let paths = scintigan::daemon::Paths::new(&cli.global.runs_dir, &cli.global.configs_dir);
        return match scintigan::tui::run_dashboard(&paths) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    };
    let result = match command {
        Command::Check { files } => check(files, &cli.global.runs_dir),
        Command::Run { target, resume } => run(target, *resume, &cli.global.runs_dir, true),
        Command::Worker { run_dir } => run(run_dir, true, &cli.global.runs_dir, false),
        Command::Weights {
            action: WeightsAction::Import { file, arch, out },
        } => weights_import(file, arch, out),
        Command::Eval {
            run_dir,
            data,
            best,
            json,
            predictions,
        } => eval(
            run_dir,
            data.as_deref(),
            *best,
            *json,
            predictions.as_deref(),
        ),
        Command::Gradcam {
            run_dir,
            images,
            class,
            out,
        } => gradcam(run_dir, images, class.as_deref(), out),
        Command::Bench(args) => bench(args),
        Command::Model {
            action:
                ModelAction::Summary {
                    arch,
                    size,
                    classes,
                    json,
                },
        } => model_summary(arch, size, *classes, *json),
        Command::Data { action } => data_cli::dispatch(action),
        Command::Experiment(args) => {
            experiment_cli::run(args, &cli.global.runs_dir, &cli.global.configs_dir)
        }
        Command::Queue(q) => queue_cli::dispatch(q, &cli.global.runs_dir, &cli.global.configs_dir),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(files: &[PathBuf], runs_dir: &Path) -> Result<ExitCode> {
    let mut failed = 0;
    for file in files {
        let dir = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let known = KnownRuns::scan(dir, Some(runs_dir));
        match config::load_config(file, &known) {
            Ok(spec) => {
                let stages: Vec<String> = spec
                    .stage
                    .iter()
                    .map(|s| format!("{} ({} {})", s.name, s.kind, s.model.arch))
                    .collect();
                println!(
                    "{}: ok: run '{}', stages: {}",
                    file.display(),
                    spec.name,
                    stages.join(", ")
                );
            }
            Err(errors) => {
                failed += 1;
                for e in errors {
                    eprintln!("{e}");
                }
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} config file(s) invalid", files.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Find or create the run directory, then work it in this process.
fn run(target: &Path, resume: bool, runs_dir: &Path, show_progress: bool) -> Result<ExitCode> {
    let run = if resume && target.is_dir() {
        RunDir::open(target)?
    } else {
        let known = KnownRuns::scan(
            target
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
            Some(runs_dir),
        );
        let spec = config::load_config(target, &known).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("invalid config:\n{}", lines.join("\n"))
        })?;
        if resume {
            newest_unfinished(runs_dir, &spec.name).with_context(|| {
                format!(
                    "no unfinished run named '{}' under {}; start one with: scintigan run {}",
                    spec.name,
                    runs_dir.display(),
                    target.display()
                )
            })?
        } else {
            RunDir::create(runs_dir, &spec)?
        }
    };
    // Before anything is written: one worker per run directory.
    let lock = store::lock::acquire(run.root())?;
    init_logging(&run)?;
    // A libtorch error surfaces as a panic inside tch; the worker turns it
    // into a failed run with a one-line reason. Keep the full text (a C++
    // backtrace) in worker.log instead of the terminal.
    std::panic::set_hook(Box::new(|info| tracing::error!("panic: {info}")));
    let control = worker::Control::default();
    let stop = &control.stop;
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping ends the process at once.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(stop))?;
        signal_hook::flag::register(signal, Arc::clone(stop))?;
    }
    // Slurm's warning ahead of the time limit (`--signal=B:USR1@N`).
    signal_hook::flag::register(
        signal_hook::consts::SIGUSR1,
        Arc::clone(&control.time_limit),
    )?;
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(stop))?;
    eprintln!("run {} in {}", run.id(), run.root().display());
    let mut bar = progress::Progress::new(show_progress);
    let outcome = worker::execute(&run, &lock, &control, |rec| bar.observe(rec));
    bar.finish();
    match outcome {
        Ok(WorkerOutcome::Done) => {
            eprintln!("done: {}", run.root().display());
            Ok(ExitCode::SUCCESS)
        }
        Ok(WorkerOutcome::Stopped { stage, step }) => {
            eprintln!(
                "stopped at step {step} of stage '{stage}'; checkpoint written. Continue with: scintigan run --resume {}",
                run.root().display()
            );
            Ok(ExitCode::from(130))
        }
        Err(e) => match run.status() {
            // Stopped for a cause outside the run (a full disk): it waits.
            Ok(status) if status.state == RunState::Paused => bail!(
                "run {} paused: {}",
                run.id(),
                status.exit_reason.unwrap_or_else(|| e.to_string())
            ),
            _ => bail!("run {} failed: {e}", run.id()),
        },
    }
}

fn newest_unfinished(runs_dir: &Path, name: &str) -> Option<RunDir> {
    store::list_runs(runs_dir)
        .into_iter()
        .filter_map(|r| r.status().ok().map(|s| (r, s)))
        .filter(|(_, s)| s.name == name && s.state != RunState::Done)
        .max_by(|(_, a), (_, b)| a.created_at.total_cmp(&b.created_at))
        .map(|(r, _)| r)
}

/// The worker's log goes to `worker.log` in the run directory.
fn init_logging(run: &RunDir) -> Result<()> {
    queue_cli::log_to_file(&run.log_path())
}

fn weights_import(file: &Path, arch: &str, out: &Path) -> Result<ExitCode> {
    use scintigan::config::ClassifierArch;
    use scintigan::nn::{backbones, weights};
    let importable = [
        "densenet121",
        "vgg16",
        "resnext50_32x4d",
        "resnet34",
        "mobilenet_v3_large",
        "inception_v3",
        "efficientnet_b0",
    ];
    let parsed = ClassifierArch::parse(arch).filter(|_| importable.contains(&arch));
    let Some(parsed) = parsed else {
        bail!(
            "unknown --arch '{arch}'; expected one of: {}",
            importable.join(", ")
        );
    };
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _model = backbones::backbone_classifier(vs.root(), parsed, 1000)?;
    let tensors = weights::normalise_keys(weights::read_tensors(file)?);
    let report = weights::compare(&vs, "", &tensors);
    if !report.is_exact() {
        return Err(weights::WeightsError::Mismatch {
            path: file.display().to_string(),
            arch: arch.to_string(),
            report: report.to_string(),
        }
        .into());
    }
    weights::write_safetensors(&tensors, out)?;
    println!(
        "{}: all {} tensors match {arch}; wrote {}",
        file.display(),
        report.matched,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `--size HEIGHTxWIDTH`, each side 8 to 4096.
fn parse_size(size: &str) -> Result<(i64, i64)> {
    let parsed = size
        .split_once('x')
        .and_then(|(h, w)| Some((h.trim().parse::<i64>().ok()?, w.trim().parse::<i64>().ok()?)))
        .filter(|&(h, w)| (8..=4096).contains(&h) && (8..=4096).contains(&w));
    parsed.with_context(|| {
        format!("--size '{size}' is not HEIGHTxWIDTH with each from 8 to 4096, e.g. 256x128")
    })
}

fn bench(args: &BenchArgs) -> Result<ExitCode> {
    let Some(device) = scintigan::config::DeviceChoice::parse(&args.device) else {
        bail!(
            "--device '{}' is not one of: auto, cpu, cuda, cuda:N",
            args.device
        );
    };
    let Some(precision) = scintigan::config::Precision::parse(&args.precision) else {
        bail!(
            "--precision '{}' is not one of: fp32, bf16, fp16",
            args.precision
        );
    };
    if !(1..=4096).contains(&args.batch) || !(1..=100_000).contains(&args.steps) {
        bail!("--batch must be 1 to 4096 and --steps 1 to 100000");
    }
    let (height, width) = parse_size(&args.size)?;
    let request = BenchRequest {
        device,
        precision,
        channels_last: args.channels_last,
        base_channels: args.base_channels,
        latent_dim: args.latent_dim,
        mode_seeking: args.mode_seeking,
        ..BenchRequest::new(
            &args.arch,
            [height as usize, width as usize],
            args.batch,
            args.steps,
        )
    };
    let r = scintigan::train::bench::bench(&request)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        let layout = if r.channels_last {
            ", channels-last"
        } else {
            ""
        };
        println!(
            "{} at {}x{} batch {} on {} ({} threads, {}{layout}): median {:.4} s, min {:.4} s per step, {:.1} images/s over {} steps",
            r.arch,
            r.size[0],
            r.size[1],
            r.batch,
            r.device,
            r.threads,
            r.precision,
            r.median_seconds,
            r.min_seconds,
            r.images_per_second,
            r.steps
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn model_summary(arch: &str, size: &str, classes: i64, json: bool) -> Result<ExitCode> {
    let (height, width) = parse_size(size)?;
    if !(2..=100_000).contains(&classes) {
        bail!("--classes {classes} is out of range; expected 2 to 100000");
    }
    let summary = scintigan::nn::summary::summarize(arch, height, width, classes)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{summary}");
    }
    Ok(ExitCode::SUCCESS)
}

fn gradcam(
    run_dir: &Path,
    images: &[PathBuf],
    class: Option<&str>,
    out: &Path,
) -> Result<ExitCode> {
    use scintigan::nn::gradcam;
    use scintigan::train::evaluate::{WhichWeights, load_trained};
    let run = RunDir::open(run_dir)?;
    let trained = load_trained(&run, WhichWeights::Final)?;
    let stage = &trained.stage;
    let classes = stage.class_names();
    let class_index = match class {
        None => None,
        Some(c) => Some(match c.parse::<i64>() {
            Ok(i) if (0..classes.len() as i64).contains(&i) => i,
            _ => classes.iter().position(|n| n == c).map(|i| i as i64).with_context(|| {
                format!(
                    "--class '{c}' is not a class of this run; expected an index 0-{} or one of: {}",
                    classes.len() - 1,
                    classes.join(", ")
                )
            })?,
        }),
    };
    let Some(model) = trained.model.cam() else {
        bail!(
            "Grad-CAM needs one of the ImageNet backbones or multiscale, not '{}'",
            stage.model.arch
        );
    };
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let [h, w] = stage.data.image_size;
    for image in images {
        let pixels = scintigan::data::folder::read_gray_resized(image, h, w, stage.data.fit)?;
        let x = tch::Tensor::from_slice(&pixels).view([1, 1, h as i64, w as i64]);
        let maps = gradcam::grad_cam(model, &x, class_index).map_err(anyhow::Error::msg)?;
        let stem = image
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (layer, cam) in maps {
            let path = out.join(format!("{stem}-{layer}.png"));
            scintigan::train::samples::write_overlay(&x, &cam, &path)
                .map_err(anyhow::Error::msg)?;
            println!("{}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn eval(
    run_dir: &Path,
    data: Option<&Path>,
    best: bool,
    json: bool,
    predictions: Option<&Path>,
) -> Result<ExitCode> {
    use scintigan::train::evaluate::{WhichWeights, evaluate, load_trained};
    let run = RunDir::open(run_dir)?;
    let which = if best {
        WhichWeights::Best
    } else {
        WhichWeights::Final
    };
    let trained = load_trained(&run, which)?;
    let stage = &trained.stage;
    let [h, w] = stage.data.image_size;
    let dataset = match data {
        Some(dir) => {
            scintigan::data::load_folder_all(dir, &stage.class_names(), h, w, stage.data.fit)?
        }
        None => scintigan::data::load(&stage.data)?.test,
    };
    if dataset.is_empty() {
        bail!(
            "no images to evaluate: the run's test split is empty (data.test_fraction = 0); pass --data DIR"
        );
    }
    let result = evaluate(trained.model.module(), &dataset, 8, predictions.is_some())
        .with_context(|| format!("{}: evaluating the classifier", run_dir.display()))?;
    let m = result.confusion.metrics();
    let classes = &dataset.classes;
    if let Some(path) = predictions {
        let mut csv = String::from("file,true,predicted");
        for c in classes {
            csv.push_str(&format!(",p_{}", c.replace(',', "_")));
        }
        csv.push('\n');
        for p in &result.predictions {
            let name = p.name.replace('"', "\"\"");
            csv.push_str(&format!(
                "\"{name}\",{},{}",
                classes[p.truth], classes[p.predicted]
            ));
            for prob in &p.probabilities {
                csv.push_str(&format!(",{prob:.6}"));
            }
            csv.push('\n');
        }
        scintigan::store::write_atomic(path, csv.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if json {
        let value = serde_json::json!({
            "run": run.id(),
            "weights": trained.weights.display().to_string(),
            "images": dataset.len(),
            "loss": result.loss,
            "accuracy": m.accuracy,
            "classes": classes,
            "confusion": result.confusion.counts,
            "precision": m.precision,
            "recall": m.recall,
            "specificity": m.specificity,
            "f1": m.f1,
            "macro_precision": m.macro_precision,
            "macro_recall": m.macro_recall,
            "macro_specificity": m.macro_specificity,
            "macro_f1": m.macro_f1,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} ({}), {} images, weights {}",
        run.id(),
        stage.name,
        dataset.len(),
        trained.weights.display()
    );
    let width = classes.iter().map(String::len).max().unwrap_or(5).max(5);
    println!(
        "{:<width$}  precision  recall  specificity     F1  support",
        "class"
    );
    for (i, c) in classes.iter().enumerate() {
        let support: u64 = result.confusion.counts[i].iter().sum();
        println!(
            "{c:<width$}  {:>9.3}  {:>6.3}  {:>11.3}  {:>5.3}  {support:>7}",
            m.precision[i], m.recall[i], m.specificity[i], m.f1[i]
        );
    }
    println!(
        "{:<width$}  {:>9.3}  {:>6.3}  {:>11.3}  {:>5.3}",
        "macro", m.macro_precision, m.macro_recall, m.macro_specificity, m.macro_f1
    );
    println!("accuracy {:.3}, loss {:.4}", m.accuracy, result.loss);
    println!("confusion matrix (rows: true, columns: predicted)");
    print!("{:<width$}", "");
    for c in classes {
        print!("  {c:>width$}");
    }
    println!();
    for (i, row) in result.confusion.counts.iter().enumerate() {
        print!("{:<width$}", classes[i]);
        for v in row {
            print!("  {v:>width$}");
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}
