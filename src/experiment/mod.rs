//! The paper's experiments (its Tables 3 to 8) as sets of run configs: one
//! command queues them through the daemon, waits, and writes a report
//! beside the paper's numbers.
//!
//! Every row of a table is one config per seed; GAN pipelines that rows
//! share (a seed's ACGAN or MU-ACGAN with its generate stage) are configs of
//! their own that the rows name in `after` and `gan_samples`. Seed `k` sets
//! both `train.seed` and `data.split_seed`, so the spread over seeds covers
//! the choice of test patients as well as the initialisation: on a few
//! hundred images a difference of two test images is noise, and mean ± std
//! shows it.

pub mod paper;
pub mod plot;
pub mod report;

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One of the paper's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Table {
    /// SSIM per class: ACGAN against MU-ACGAN.
    T3,
    /// ResNet34 on training sets 1-5.
    T4,
    /// ResNet34 with ImageNet weights against from scratch.
    T5,
    /// The multi-scale model against each of its backbones, set 4.
    T6,
    /// The multi-scale model against ResNet34, MobileNetV3, InceptionV3,
    /// EfficientNet, set 4.
    T7,
    /// The multi-scale model on sets 4 and 5.
    T8,
}

impl Table {
    pub const NAMES: [&str; 6] = ["table3", "table4", "table5", "table6", "table7", "table8"];
    pub fn parse(s: &str) -> Option<Table> {
        let all = [
            Table::T3,
            Table::T4,
            Table::T5,
            Table::T6,
            Table::T7,
            Table::T8,
        ];
        Self::NAMES.iter().position(|n| *n == s).map(|i| all[i])
    }
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
    pub fn title(self) -> &'static str {
        match self {
            Table::T3 => "Table 3: SSIM of generated images per class, ACGAN against MU-ACGAN",
            Table::T4 => "Table 4: one classifier (the paper's ResNet34) on training sets 1-5",
            Table::T5 => {
                "Table 5: transfer learning (ImageNet weights) against training from scratch, ResNet34"
            }
            Table::T6 => {
                "Table 6: the multi-scale model against each of its backbones, training set 4"
            }
            Table::T7 => "Table 7: the multi-scale model against other classifiers, training set 4",
            Table::T8 => "Table 8: the multi-scale model on training sets 4 and 5",
        }
    }
}

/// How big the runs are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scale {
    /// Seconds per run: a check that the whole experiment runs (tests).
    Smoke,
    /// Minutes on 2 CPU cores: small images, few epochs, small GANs.
    Demo,
    /// Tables 3 and 4 with 3 seeds in under 2 hours on 2 CPU cores: the
    /// demo's sizes (128x32, GANs that learn bodies, a classifier that
    /// learns), `make study`.
    Study,
    /// The paper's settings (section 4.2): for a GPU box.
    Paper,
}

impl Scale {
    pub const NAMES: [&str; 4] = ["smoke", "demo", "study", "paper"];
    pub fn parse(s: &str) -> Option<Scale> {
        match s {
            "smoke" => Some(Scale::Smoke),
            "demo" => Some(Scale::Demo),
            "study" => Some(Scale::Study),
            "paper" => Some(Scale::Paper),
            _ => None,
        }
    }
}

/// The sizes a scale sets.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub image_size: [usize; 2],
    /// Phantom images per class (healthy, metastasis, benign).
    pub class_counts: [usize; 3],
    pub chest_per_class: usize,
    pub gan_epochs: usize,
    pub pretrain_epochs: usize,
    pub gan_batch: usize,
    pub gan_base: usize,
    pub latent: usize,
    pub classifier_epochs: usize,
    pub classifier_batch: usize,
    pub classifier_lr: f64,
    /// More `[train]` keys of a classifier, as TOML (empty: the defaults).
    pub classifier_train: &'static str,
    /// The classifier of table 4's rows (the paper's ResNet34, or one that
    /// learns from scratch at this scale).
    pub table4_arch: &'static str,
    /// `model` keys of that classifier beyond `arch`, as TOML (wherever
    /// the scale uses it).
    pub table4_model: &'static str,
    /// `augment.factor` of training sets 4 and 5 (the paper's x15).
    pub augment_factor: usize,
    pub rotation: f64,
    pub translation: f64,
    pub device: &'static str,
}

impl Settings {
    pub fn of(scale: Scale, table: Table) -> Settings {
        // InceptionV3 needs 75 pixels on the short side.
        let wide = table == Table::T7;
        match scale {
            Scale::Smoke => Settings {
                image_size: if wide { [96, 80] } else { [64, 32] },
                class_counts: [12, 8, 6],
                chest_per_class: 6,
                gan_epochs: 1,
                pretrain_epochs: 1,
                gan_batch: 8,
                gan_base: 4,
                latent: 8,
                classifier_epochs: 1,
                classifier_batch: 8,
                classifier_lr: 1e-3,
                classifier_train: "",
                table4_arch: "resnet34",
                table4_model: "",
                augment_factor: 2,
                rotation: 5.0,
                translation: 1.0,
                device: "cpu",
            },
            Scale::Demo => Settings {
                // Whole-body frames are 4:1. Lesions are a few pixels wide
                // at 1024 rows; below 128 they vanish and every classifier
                // sits at chance. 256x64 costs what 128x64 does.
                image_size: if wide { [256, 80] } else { [256, 64] },
                class_counts: [82, 64, 30],
                chest_per_class: 40,
                gan_epochs: 6,
                pretrain_epochs: 4,
                gan_batch: 16,
                gan_base: 8,
                latent: 32,
                classifier_epochs: 8,
                classifier_batch: 16,
                classifier_lr: 1e-3,
                classifier_train: "",
                table4_arch: "resnet34",
                table4_model: "",
                augment_factor: 2,
                rotation: 5.0,
                translation: 2.0,
                device: "auto",
            },
            Scale::Study => Settings {
                // The demo's measured settings (README, "What the demo
                // shows"): MU-ACGAN base 8 at batch 8 draws bodies at
                // 128x32 within 50 epochs; ResNet34 is replaced by the
                // small CNN that learns from ~280 images in minutes here.
                image_size: if wide { [128, 80] } else { [128, 32] },
                class_counts: [162, 126, 58],
                chest_per_class: 50,
                gan_epochs: 40,
                pretrain_epochs: 12,
                gan_batch: 8,
                gan_base: 8,
                latent: 32,
                classifier_epochs: 30,
                classifier_batch: 16,
                classifier_lr: 3e-4,
                classifier_train: "optimizer = \"adam\", lr_schedule = \"cosine\", ",
                table4_arch: "small-cnn",
                table4_model: ", base_channels = 16",
                augment_factor: 4,
                rotation: 5.0,
                translation: 2.0,
                device: "auto",
            },
            Scale::Paper => Settings {
                image_size: [256, 128],
                class_counts: [162, 126, 58],
                chest_per_class: 500,
                gan_epochs: 500,
                pretrain_epochs: 100,
                gan_batch: 2,
                gan_base: 32,
                latent: 100,
                classifier_epochs: 500,
                classifier_batch: 4,
                classifier_lr: 1e-4,
                classifier_train: "",
                table4_arch: "resnet34",
                table4_model: "",
                augment_factor: 15,
                rotation: 10.0,
                translation: 10.0,
                device: "auto",
            },
        }
    }
}

/// Where the bone-scan and chest images come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DataChoice {
    /// In-memory phantoms (`phantom-bone` / `phantom-chest`).
    Phantom,
    /// A folder: an ingested one (with `manifest.csv`) or class subfolders.
    Folder(PathBuf),
}

impl DataChoice {
    pub fn parse(s: &str) -> DataChoice {
        if s == "phantom" {
            DataChoice::Phantom
        } else {
            DataChoice::Folder(PathBuf::from(s))
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub table: Table,
    pub data: DataChoice,
    /// Chest X-rays for MU-ACGAN pretraining (COVID-19 Radiography layout).
    pub pretrain_data: DataChoice,
    pub scale: Scale,
    pub seeds: usize,
    /// Folder with `<arch>.safetensors` ImageNet weights from `weights import`.
    pub weights: Option<PathBuf>,
    /// Distinguishes this invocation's run names from earlier ones.
    pub tag: String,
}

/// The paper's training sets (its Table 4 rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrainingSet {
    Original,
    AcganBalanced,
    MuAcganBalanced,
    Augmented,
    MuAcganAugmented,
}

impl TrainingSet {
    pub fn number(self) -> usize {
        self as usize + 1
    }
    pub fn label(self) -> &'static str {
        match self {
            TrainingSet::Original => "set 1: original",
            TrainingSet::AcganBalanced => "set 2: ACGAN-balanced",
            TrainingSet::MuAcganBalanced => "set 3: MU-ACGAN-balanced",
            TrainingSet::Augmented => "set 4: traditional augmentation",
            TrainingSet::MuAcganAugmented => "set 5: MU-ACGAN + augmentation",
        }
    }
    fn gan(self) -> Option<&'static str> {
        match self {
            TrainingSet::AcganBalanced => Some("acgan"),
            TrainingSet::MuAcganBalanced | TrainingSet::MuAcganAugmented => Some("mu-acgan"),
            _ => None,
        }
    }
    fn augmented(self) -> bool {
        matches!(self, TrainingSet::Augmented | TrainingSet::MuAcganAugmented)
    }
}

/// What a row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowKind {
    /// Test metrics of a classifier's last epoch.
    Classifier,
    /// Per-class SSIM of the bone GAN's last score.
    Gan,
}

/// One row of a table: a run per seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub label: String,
    pub kind: RowKind,
    /// Run (config) names, one per seed.
    pub runs: Vec<String>,
    /// The stage whose events hold the row's numbers.
    pub stage: String,
}

/// A config to submit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedConfig {
    pub name: String,
    pub text: String,
}

/// Everything one invocation queues; saved as `plan.json` beside the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub table: Table,
    pub scale: Scale,
    pub seeds: usize,
    pub data: DataChoice,
    pub weights: Option<PathBuf>,
    pub rows: Vec<Row>,
    pub configs: Vec<PlannedConfig>,
    /// Notes for the report (e.g. backbones from scratch for want of weights).
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Needs(String),
}

fn toml_path(p: &Path) -> String {
    p.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

/// The `[stage.data]`-style inline table for bone scans.
fn bone_data(opts: &Options, s: &Settings, seed: usize, extra: &str) -> String {
    let [h, w] = s.image_size;
    let source = match &opts.data {
        DataChoice::Phantom => format!(
            "source = \"phantom-bone\", class_counts = [{}, {}, {}]",
            s.class_counts[0], s.class_counts[1], s.class_counts[2]
        ),
        DataChoice::Folder(dir) if dir.join("manifest.csv").is_file() => format!(
            "source = \"folder\", path = \"{}\", labels = \"{}\", classes = [\"healthy\", \"metastasis\", \"benign\"]",
            toml_path(dir),
            toml_path(&dir.join("manifest.csv"))
        ),
        DataChoice::Folder(dir) => format!(
            "source = \"folder\", path = \"{}\", classes = [\"healthy\", \"metastasis\", \"benign\"]",
            toml_path(dir)
        ),
    };
    format!(
        "{{ {source}, image_size = [{h}, {w}], test_fraction = 0.2, split_seed = {seed}{extra} }}"
    )
}

fn chest_data(opts: &Options, s: &Settings) -> String {
    let [h, w] = s.image_size;
    match &opts.pretrain_data {
        DataChoice::Phantom => format!(
            "{{ source = \"phantom-chest\", image_size = [{h}, {w}], per_class = {}, test_fraction = 0.0 }}",
            s.chest_per_class
        ),
        DataChoice::Folder(dir) => format!(
            "{{ source = \"folder\", path = \"{}\", image_size = [{h}, {w}], fit = \"stretch\", test_fraction = 0.0 }}",
            toml_path(dir)
        ),
    }
}

/// A GAN pipeline: (chest pretraining for MU-ACGAN), bone training, and a
/// generate stage balancing the classes. Its last stage is `generate`, so
/// `gan_samples = "run:<name>"` finds it.
fn gan_config(opts: &Options, s: &Settings, name: &str, arch: &str, seed: usize) -> String {
    let mut t = String::new();
    let model = format!(
        "{{ arch = \"{arch}\", latent_dim = {}, base_channels = {} }}",
        s.latent, s.gan_base
    );
    let train = |epochs: usize| {
        format!(
            "{{ epochs = {epochs}, batch_size = {}, seed = {seed}, device = \"{}\", log_every = 5, ssim_every = {epochs} }}",
            s.gan_batch, s.device
        )
    };
    let _ = writeln!(
        t,
        "# {name}: written by `scintigan experiment {}`\nname = \"{name}\"\n",
        opts.table.name()
    );
    let transfer = arch == "mu-acgan";
    if transfer {
        let _ = writeln!(
            t,
            "[[stage]]\nname = \"pretrain\"\nkind = \"gan\"\ndata = {}\nmodel = {model}\ntrain = {}\n",
            chest_data(opts, s),
            train(s.pretrain_epochs)
        );
    }
    let _ = writeln!(
        t,
        "[[stage]]\nname = \"bone\"\nkind = \"gan\"\n{}data = {}\nmodel = {model}\ntrain = {}\n",
        if transfer {
            "init_from = \"run:pretrain\"\n"
        } else {
            ""
        },
        bone_data(opts, s, seed, ""),
        train(s.gan_epochs)
    );
    let _ = writeln!(
        t,
        "[[stage]]\nname = \"generate\"\nkind = \"generate\"\ninit_from = \"run:bone\"\ntrain = {{ generate_per_class = 0, seed = {seed}, device = \"{}\" }}",
        s.device
    );
    t
}

/// One classifier run of a row.
struct ClassifierJob<'a> {
    name: &'a str,
    arch: &'a str,
    set: TrainingSet,
    /// The GAN pipeline whose generate stage balances the training split.
    gan_run: Option<&'a str>,
    /// `model.weights` and other model keys as a TOML fragment (empty:
    /// from scratch, defaults).
    weights: &'a str,
    seed: usize,
}

/// A classifier config for `job`.
fn classifier_config(opts: &Options, s: &Settings, job: &ClassifierJob) -> String {
    let ClassifierJob {
        name,
        arch,
        set,
        gan_run,
        weights,
        seed,
    } = *job;
    let mut extra = String::new();
    if let Some(g) = gan_run {
        let _ = write!(extra, ", gan_samples = \"run:{g}\"");
    }
    if set.augmented() {
        let _ = write!(
            extra,
            ", augment = {{ factor = {}, rotation = {:.1}, translation = {:.1}, mirror = true, seed = {seed} }}",
            s.augment_factor, s.rotation, s.translation
        );
    }
    let after = gan_run.map_or(String::new(), |g| format!("after = [\"{g}\"]\n"));
    let model_keys = if arch == s.table4_arch {
        s.table4_model
    } else {
        ""
    };
    format!(
        "# {name}: written by `scintigan experiment {}` ({})\nname = \"{name}\"\nkind = \"classifier\"\n{after}data = {}\nmodel = {{ arch = \"{arch}\"{weights}{model_keys} }}\ntrain = {{ epochs = {}, batch_size = {}, lr = {:e}, {}seed = {seed}, device = \"{}\", log_every = 10 }}\n",
        opts.table.name(),
        set.label(),
        bone_data(opts, s, seed, &extra),
        s.classifier_epochs,
        s.classifier_batch,
        s.classifier_lr,
        s.classifier_train,
        s.device
    )
}

/// `model.weights` for `arch` from `--weights DIR`, if its files are there:
/// (TOML fragment, note).
fn weights_for(opts: &Options, arch: &str) -> (String, Option<String>) {
    let Some(dir) = &opts.weights else {
        return (
            String::new(),
            Some(format!("{arch}: from scratch (no --weights folder)")),
        );
    };
    let file = |a: &str| dir.join(format!("{a}.safetensors"));
    if arch == "multiscale" {
        let parts = ["densenet121", "vgg16", "resnext50_32x4d"];
        if parts.iter().all(|p| file(p).is_file()) {
            let table: Vec<String> = parts
                .iter()
                .map(|p| format!("{p} = \"{}\"", toml_path(&file(p))))
                .collect();
            return (format!(", weights = {{ {} }}", table.join(", ")), None);
        }
        return (
            String::new(),
            Some(format!(
                "multiscale: from scratch ({} lacks densenet121/vgg16/resnext50_32x4d.safetensors)",
                dir.display()
            )),
        );
    }
    if file(arch).is_file() {
        (format!(", weights = \"{}\"", toml_path(&file(arch))), None)
    } else {
        (
            String::new(),
            Some(format!(
                "{arch}: from scratch ({} has no {arch}.safetensors)",
                dir.display()
            )),
        )
    }
}

/// The configs and rows of one experiment.
pub fn plan(opts: &Options) -> Result<Plan, PlanError> {
    let s = Settings::of(opts.scale, opts.table);
    let prefix = format!("x{}-{}", &opts.table.name()[5..], opts.tag);
    let mut configs: Vec<PlannedConfig> = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let seeds: Vec<usize> = (0..opts.seeds.max(1)).collect();
    // A seed's GAN pipeline, made once and shared by the rows that need it.
    let gan = |arch: &str, seed: usize, configs: &mut Vec<PlannedConfig>| -> String {
        let name = format!("{prefix}-{arch}-s{seed}");
        if !configs.iter().any(|c| c.name == name) {
            configs.push(PlannedConfig {
                name: name.clone(),
                text: gan_config(opts, &s, &name, arch, seed),
            });
        }
        name
    };
    // Table 3's rows: each seed's ACGAN and MU-ACGAN pipelines, scored on
    // their bone stage.
    let gan_rows = |configs: &mut Vec<PlannedConfig>| -> Vec<Row> {
        [("acgan", "ACGAN"), ("mu-acgan", "MU-ACGAN")]
            .into_iter()
            .map(|(arch, label)| Row {
                label: label.into(),
                kind: RowKind::Gan,
                runs: seeds.iter().map(|&seed| gan(arch, seed, configs)).collect(),
                stage: "bone".into(),
            })
            .collect()
    };
    let classifier_row = |label: String,
                          slug: &str,
                          arch: &str,
                          set: TrainingSet,
                          with_weights: bool,
                          configs: &mut Vec<PlannedConfig>,
                          notes: &mut Vec<String>|
     -> Row {
        let (weights, note) = if with_weights {
            weights_for(opts, arch)
        } else {
            (String::new(), None)
        };
        if let Some(n) = note
            && !notes.contains(&n)
        {
            notes.push(n);
        }
        let mut runs = Vec::new();
        for &seed in &seeds {
            let gan_run = set.gan().map(|g| gan(g, seed, configs));
            let name = format!("{prefix}-{slug}-s{seed}");
            configs.push(PlannedConfig {
                text: classifier_config(
                    opts,
                    &s,
                    &ClassifierJob {
                        name: &name,
                        arch,
                        set,
                        gan_run: gan_run.as_deref(),
                        weights: &weights,
                        seed,
                    },
                ),
                name: name.clone(),
            });
            runs.push(name);
        }
        Row {
            label,
            kind: RowKind::Classifier,
            runs,
            stage: "main".into(),
        }
    };
    use TrainingSet::*;
    match opts.table {
        Table::T3 => {
            rows.extend(gan_rows(&mut configs));
        }
        Table::T4 => {
            for set in [
                Original,
                AcganBalanced,
                MuAcganBalanced,
                Augmented,
                MuAcganAugmented,
            ] {
                let slug = format!("set{}", set.number());
                rows.push(classifier_row(
                    set.label().into(),
                    &slug,
                    s.table4_arch,
                    set,
                    s.table4_arch == "resnet34",
                    &mut configs,
                    &mut notes,
                ));
            }
            if s.table4_arch != "resnet34" {
                notes.push(format!(
                    "the classifier is {} (scale {:?}), not the paper's ResNet34: \
                     from scratch on ~280 images, this is the model that learns in \
                     minutes on 2 CPU cores",
                    s.table4_arch, opts.scale
                ));
            }
            // The GAN pipelines behind sets 2, 3 and 5, measured as in
            // Table 3, so that a set's effect can be read against the
            // quality of the images it adds.
            rows.extend(gan_rows(&mut configs));
        }
        Table::T5 => {
            if weights_for(opts, "resnet34").1.is_some() {
                return Err(PlanError::Needs(
                    "table5 compares ImageNet weights with none: import them first (`scintigan weights import resnet34-*.pth --arch resnet34 --out weights/resnet34.safetensors`) and pass --weights weights/".into(),
                ));
            }
            rows.push(classifier_row(
                "transfer learning (ImageNet), set 5".into(),
                "transfer",
                "resnet34",
                MuAcganAugmented,
                true,
                &mut configs,
                &mut notes,
            ));
            rows.push(classifier_row(
                "from scratch, set 5".into(),
                "scratch5",
                "resnet34",
                MuAcganAugmented,
                false,
                &mut configs,
                &mut notes,
            ));
            rows.push(classifier_row(
                "from scratch, set 1".into(),
                "scratch1",
                "resnet34",
                Original,
                false,
                &mut configs,
                &mut notes,
            ));
        }
        Table::T6 | Table::T7 => {
            // Every model on training set 4: the multi-scale model's own
            // backbones (table 6) or the paper's other classifiers (table 7).
            let models: &[(&str, &str)] = if opts.table == Table::T6 {
                &[
                    ("vgg16", "VGG16"),
                    ("densenet121", "DenseNet121"),
                    ("resnext50_32x4d", "ResNeXt50"),
                    ("multiscale", "multi-scale"),
                ]
            } else {
                &[
                    ("resnet34", "ResNet34"),
                    ("mobilenet_v3_large", "MobileNetV3"),
                    ("inception_v3", "InceptionV3"),
                    ("efficientnet_b0", "EfficientNet"),
                    ("multiscale", "multi-scale (ours)"),
                ]
            };
            for &(arch, label) in models {
                let slug = arch.split('_').next().unwrap_or(arch);
                rows.push(classifier_row(
                    label.into(),
                    slug,
                    arch,
                    Augmented,
                    true,
                    &mut configs,
                    &mut notes,
                ));
            }
        }
        Table::T8 => {
            for set in [Augmented, MuAcganAugmented] {
                let slug = format!("set{}", set.number());
                rows.push(classifier_row(
                    set.label().into(),
                    &slug,
                    "multiscale",
                    set,
                    true,
                    &mut configs,
                    &mut notes,
                ));
            }
        }
    }
    // Classifier configs hold one stage at the top level: its events name
    // the stage after the config.
    for row in &mut rows {
        if row.kind == RowKind::Classifier {
            row.stage = String::new();
        }
    }
    Ok(Plan {
        table: opts.table,
        scale: opts.scale,
        seeds: seeds.len(),
        data: opts.data.clone(),
        weights: opts.weights.clone(),
        rows,
        configs,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(table: Table) -> Options {
        Options {
            table,
            data: DataChoice::Phantom,
            pretrain_data: DataChoice::Phantom,
            scale: Scale::Demo,
            seeds: 2,
            weights: None,
            tag: "t".into(),
        }
    }

    #[test]
    fn table4_shares_one_gan_pipeline_per_seed_and_arch() {
        let p = plan(&opts(Table::T4)).unwrap();
        // Five training sets, then the two GANs behind them.
        assert_eq!(p.rows.len(), 7);
        assert_eq!(p.rows[5].runs, ["x4-t-acgan-s0", "x4-t-acgan-s1"]);
        assert_eq!(p.rows[6].kind, RowKind::Gan);
        assert!(p.rows.iter().all(|r| r.runs.len() == 2));
        // 5 classifiers x 2 seeds + (acgan, mu-acgan) x 2 seeds.
        assert_eq!(p.configs.len(), 10 + 4);
        let set5 = p.configs.iter().find(|c| c.name == "x4-t-set5-s1").unwrap();
        assert!(
            set5.text.contains("gan_samples = \"run:x4-t-mu-acgan-s1\""),
            "{}",
            set5.text
        );
        assert!(set5.text.contains("after = [\"x4-t-mu-acgan-s1\"]"));
        assert!(set5.text.contains("augment = { factor = 2"));
        assert!(set5.text.contains("split_seed = 1"));
        assert!(p.notes.iter().any(|n| n.contains("from scratch")));
    }

    #[test]
    fn every_planned_config_validates() {
        let dir = std::env::temp_dir().join(format!("scintigan-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tables = [Table::T3, Table::T4, Table::T6, Table::T7, Table::T8];
        let study = [Table::T3, Table::T4].map(|t| (t, Scale::Study));
        for (table, scale) in tables.map(|t| (t, Scale::Demo)).into_iter().chain(study) {
            let p = plan(&Options {
                scale,
                ..opts(table)
            })
            .unwrap();
            // Later configs may name earlier ones; validate in order with
            // the earlier names known.
            let mut known = crate::config::KnownRuns::default();
            for c in &p.configs {
                let r = crate::config::parse_config("x.toml", &c.text, &dir, &c.name, &known);
                assert!(r.is_ok(), "{}:\n{}\n{:?}", c.name, c.text, r.err());
                known.deps.insert(c.name.clone(), Vec::new());
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_study_scale_trains_the_small_cnn_the_demo_showed_learning() {
        let p = plan(&Options {
            scale: Scale::Study,
            seeds: 3,
            ..opts(Table::T4)
        })
        .unwrap();
        assert_eq!(p.configs.len(), 15 + 6);
        let set4 = p.configs.iter().find(|c| c.name == "x4-t-set4-s2").unwrap();
        for want in [
            "arch = \"small-cnn\", base_channels = 16",
            "image_size = [128, 32]",
            "optimizer = \"adam\", lr_schedule = \"cosine\"",
            "augment = { factor = 4",
        ] {
            assert!(set4.text.contains(want), "{want}: {}", set4.text);
        }
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("not the paper's ResNet34"))
        );
    }

    #[test]
    fn table5_asks_for_weights() {
        let e = plan(&opts(Table::T5)).unwrap_err().to_string();
        assert!(e.contains("weights import"), "{e}");
    }
}
