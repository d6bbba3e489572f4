//! Raw TOML -> validated [`RunSpec`], collecting every error with its place.

use super::error::{ConfigError, Source};
use super::raw::{RawData, RawFile, RawModel, RawStage, RawTrain};
use super::slurm::{Executor, SlurmOptions};
use super::spec::*;
use serde_spanned::Spanned;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

/// Run names a config may refer to in `after` and `init_from = "run:..."`,
/// with their own `after` lists (for cycle detection across files).
#[derive(Debug, Clone, Default)]
pub struct KnownRuns {
    pub deps: BTreeMap<String, Vec<String>>,
    /// Accept any name (used when re-reading a frozen run config).
    pub permissive: bool,
}

impl KnownRuns {
    pub fn permissive() -> Self {
        Self {
            deps: BTreeMap::new(),
            permissive: true,
        }
    }
}

/// Everything validation needs besides the text.
pub struct Context<'a> {
    pub src: Source<'a>,
    /// Directory relative paths in the config are resolved against.
    pub base_dir: &'a Path,
    /// Name used when the file has no `name` (the file stem).
    pub default_name: &'a str,
    pub known: &'a KnownRuns,
}

struct Errors<'a> {
    src: Source<'a>,
    list: Vec<ConfigError>,
}

impl Errors<'_> {
    fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.list.push(self.src.at(span, message));
    }
}

/// Parse and validate one config text.
pub fn parse(ctx: &Context<'_>) -> Result<RunSpec, Vec<ConfigError>> {
    let raw: RawFile =
        toml::from_str(ctx.src.text).map_err(|e| vec![ctx.src.locate_toml_error(&e)])?;
    let mut errs = Errors {
        src: ctx.src,
        list: Vec::new(),
    };
    let spec = build(ctx, raw, &mut errs);
    if errs.list.is_empty() {
        Ok(spec)
    } else {
        Err(errs.list)
    }
}

fn build(ctx: &Context<'_>, raw: RawFile, errs: &mut Errors<'_>) -> RunSpec {
    let name = match &raw.name {
        Some(n) => {
            check_name(n, "name", errs);
            n.get_ref().clone()
        }
        None => sanitize_name(ctx.default_name),
    };
    let single_stage_fields = raw.kind.is_some()
        || raw.init_from.is_some()
        || raw.data.is_some()
        || raw.model.is_some()
        || raw.train.is_some();

    let (after, stages) = match raw.stage {
        Some(stages) => {
            if single_stage_fields {
                let span = [
                    raw.kind.as_ref().map(|s| s.span()),
                    raw.init_from.as_ref().map(|s| s.span()),
                    raw.data.as_ref().map(|s| s.span()),
                    raw.model.as_ref().map(|s| s.span()),
                    raw.train.as_ref().map(|s| s.span()),
                ]
                .into_iter()
                .flatten()
                .min_by_key(|s| s.start)
                .unwrap_or(0..0);
                errs.at(
                    span,
                    "a file with [[stage]] tables keeps kind, init_from, [data], [model] and \
                     [train] inside each stage; only name and after belong at the top level",
                );
            }
            if stages.is_empty() {
                errs.at(
                    0..0,
                    "'stage' is empty; expected at least one [[stage]] table",
                );
            }
            (
                raw.after,
                stages.into_iter().map(Spanned::into_inner).collect(),
            )
        }
        None => {
            let Some(kind) = raw.kind else {
                errs.at(
                    0..0,
                    "missing field `kind` (expected kind = \"gan\" or \"classifier\", or [[stage]] tables)",
                );
                return RunSpec {
                    name,
                    after: Vec::new(),
                    stage: Vec::new(),
                    executor: None,
                    slurm: None,
                };
            };
            let stage = RawStage {
                name: Spanned::new(0..0, name.clone()),
                kind,
                after: raw.after,
                init_from: raw.init_from,
                data: raw.data,
                model: raw.model,
                train: raw.train,
            };
            (None, vec![stage])
        }
    };

    let (executor, slurm) = executor_and_slurm(raw.executor, raw.slurm, errs);
    let run_after: Vec<String> = after
        .iter()
        .flatten()
        .map(|a| a.get_ref().clone())
        .collect();
    let stage_names: Vec<String> = stages.iter().map(|s| s.name.get_ref().clone()).collect();
    check_stage_names(&stages, errs);
    for a in after.iter().flatten() {
        check_after_target(a, &stage_names, ctx.known, errs);
    }
    check_cycles(&name, &stages, ctx.known, errs);

    let specs = stages
        .into_iter()
        .map(|s| build_stage(ctx, s, &stage_names, errs))
        .collect();
    RunSpec {
        name,
        after: run_after,
        stage: specs,
        executor,
        slurm,
    }
}

/// The run's own `executor` and `[slurm]`, each checked.
fn executor_and_slurm(
    executor: Option<Spanned<String>>,
    slurm: Option<Spanned<SlurmOptions>>,
    errs: &mut Errors<'_>,
) -> (Option<Executor>, Option<SlurmOptions>) {
    let executor = executor.and_then(|e| {
        let parsed = Executor::parse(e.get_ref());
        if parsed.is_none() {
            errs.at(
                e.span(),
                format!(
                    "unknown executor '{}'; expected \"local\" or \"slurm\"",
                    e.get_ref()
                ),
            );
        }
        parsed
    });
    let slurm = slurm.map(|s| {
        for (field, problem) in s.get_ref().problems() {
            errs.at(s.span(), format!("slurm.{field}: {problem}"));
        }
        s.into_inner()
    });
    (executor, slurm)
}

/// Turn arbitrary text (a file stem) into a run name: letters, digits, `-`,
/// `_` and `.`; anything else becomes `-`.
pub fn sanitize_name(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c| c == '.' || c == '-');
    if trimmed.is_empty() {
        "run".to_string()
    } else {
        trimmed.to_string()
    }
}

fn check_name(name: &Spanned<String>, what: &str, errs: &mut Errors<'_>) {
    let text = name.get_ref();
    let ok = !text.is_empty()
        && text.len() <= 64
        && !text.starts_with('.')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        errs.at(
            name.span(),
            format!(
                "{what} '{text}' is not a valid name; expected 1-64 characters from \
                 letters, digits, '-', '_' and '.', not starting with '.'"
            ),
        );
    }
}

fn check_stage_names(stages: &[RawStage], errs: &mut Errors<'_>) {
    let mut seen: BTreeMap<&str, Range<usize>> = BTreeMap::new();
    for stage in stages {
        let name = stage.name.get_ref().as_str();
        if stage.name.span() != (0..0) {
            check_name(&stage.name, "stage name", errs);
        }
        if let Some(first) = seen.get(name) {
            let (line, _) = errs.src.line_col(first.start);
            errs.at(
                stage.name.span(),
                format!("duplicate stage name '{name}' (first defined on line {line}); stage names must be unique"),
            );
        } else {
            seen.insert(name, stage.name.span());
        }
    }
}

fn check_after_target(
    target: &Spanned<String>,
    stage_names: &[String],
    known: &KnownRuns,
    errs: &mut Errors<'_>,
) {
    let name = target.get_ref();
    if known.permissive || stage_names.contains(name) || known.deps.contains_key(name) {
        return;
    }
    let candidates: BTreeSet<&str> = stage_names
        .iter()
        .chain(known.deps.keys())
        .map(String::as_str)
        .collect();
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let expected = if candidates.is_empty() {
        "no runs or stages are known".to_string()
    } else {
        format!("expected one of: {}", candidates.join(", "))
    };
    errs.at(
        target.span(),
        format!("unknown run '{name}' in after; {expected}"),
    );
}

/// Depth-first search for a cycle through `after` edges: stage edges inside
/// this file and run edges of the known sibling configs.
fn check_cycles(run_name: &str, stages: &[RawStage], known: &KnownRuns, errs: &mut Errors<'_>) {
    let mut graph: BTreeMap<String, Vec<(String, Range<usize>)>> = BTreeMap::new();
    for (name, deps) in &known.deps {
        if name != run_name {
            let edges = deps.iter().map(|d| (d.clone(), 0..0)).collect();
            graph.insert(name.clone(), edges);
        }
    }
    for stage in stages {
        let edges: Vec<(String, Range<usize>)> = stage
            .after
            .iter()
            .flatten()
            .map(|a| (a.get_ref().clone(), a.span()))
            .collect();
        graph
            .entry(stage.name.get_ref().clone())
            .or_default()
            .extend(edges);
    }
    let mut reported = BTreeSet::new();
    for stage in stages {
        let start = stage.name.get_ref();
        let mut path = vec![(start.clone(), 0..0)];
        if find_cycle(&graph, start, &mut path, &mut BTreeSet::new()) {
            // Point at the first `after` entry on the cycle that this file holds.
            let span = path
                .iter()
                .skip(1)
                .map(|(_, s)| s.clone())
                .find(|s| s.end > 0);
            let Some(span) = span else { continue };
            let mut members: Vec<String> = path.iter().map(|(n, _)| n.clone()).collect();
            members.sort();
            members.dedup();
            if reported.insert(members) {
                let names: Vec<&str> = path.iter().map(|(n, _)| n.as_str()).collect();
                errs.at(
                    span,
                    format!(
                        "dependency cycle: {}; remove one of these after entries",
                        names.join(" -> ")
                    ),
                );
            }
        }
    }
}

/// Depth-first search for a path from `path[0]` back to itself; on success
/// `path` holds the cycle's nodes with the span of the edge that reached each.
fn find_cycle(
    graph: &BTreeMap<String, Vec<(String, Range<usize>)>>,
    node: &str,
    path: &mut Vec<(String, Range<usize>)>,
    visited: &mut BTreeSet<String>,
) -> bool {
    if !visited.insert(node.to_string()) {
        return false;
    }
    for (next, span) in graph.get(node).into_iter().flatten() {
        path.push((next.clone(), span.clone()));
        if *next == path[0].0 || find_cycle(graph, next, path, visited) {
            return true;
        }
        path.pop();
    }
    false
}

fn build_stage(
    ctx: &Context<'_>,
    raw: RawStage,
    stage_names: &[String],
    errs: &mut Errors<'_>,
) -> StageSpec {
    let kind = choice::<StageKind>(&raw.kind, errs).unwrap_or(StageKind::Gan);
    let after: Vec<String> = raw
        .after
        .iter()
        .flatten()
        .map(|a| a.get_ref().clone())
        .collect();
    for a in raw.after.iter().flatten() {
        check_after_target(a, stage_names, ctx.known, errs);
    }
    let init_from = raw.init_from.as_ref().map(|i| {
        let parsed = InitFrom::parse(i.get_ref());
        match parsed {
            InitFrom::Run(ref name) => {
                let target = Spanned::new(i.span(), name.clone());
                check_after_target(&target, stage_names, ctx.known, errs);
                parsed
            }
            InitFrom::Path(p) => InitFrom::Path(ctx.base_dir.join(p)),
        }
    });
    if kind == StageKind::Generate && raw.init_from.is_none() {
        errs.at(
            raw.kind.span(),
            "a generate stage needs init_from = \"run:<GAN stage or run>\" naming the GAN to draw from",
        );
    }
    let data_raw = raw.data.map(Spanned::into_inner).unwrap_or_default();
    if let Some(g) = &data_raw.gan_samples {
        match g.get_ref().strip_prefix("run:") {
            Some(name) => check_after_target(
                &Spanned::new(g.span(), name.to_string()),
                stage_names,
                ctx.known,
                errs,
            ),
            None => errs.at(
                g.span(),
                format!(
                    "gan_samples '{}' must name a generate stage or run as \"run:<name>\"",
                    g.get_ref()
                ),
            ),
        }
    }
    let model_raw = raw.model.map(Spanned::into_inner).unwrap_or_default();
    let train_raw = raw.train.map(Spanned::into_inner).unwrap_or_default();
    // Where a size problem points: image_size, else the stage's name.
    let size_span = data_raw
        .image_size
        .as_ref()
        .map_or_else(|| raw.name.span(), |v| v.span());
    let size_given = data_raw.image_size.is_some();
    let stage = StageSpec {
        name: raw.name.into_inner(),
        kind,
        after,
        init_from,
        data: build_data(ctx, data_raw, errs),
        model: build_model(ctx, kind, model_raw, errs),
        train: build_train(kind, train_raw, errs),
    };
    if let Some(problem) = image_size_problem(&stage) {
        let default = if size_given {
            ""
        } else {
            " (the default image_size; set data.image_size)"
        };
        errs.at(size_span, format!("{problem}{default}"));
    }
    stage
}

/// Why `stage`'s model or metrics cannot take its image size, if they
/// cannot: what would otherwise fail only once training reaches it.
fn image_size_problem(stage: &StageSpec) -> Option<String> {
    let [h, w] = stage.data.image_size;
    match stage.kind {
        StageKind::Gan => {
            let arch = GanArch::parse(&stage.model.arch)?;
            let d = arch.size_divisor();
            if h % d != 0 || w % d != 0 {
                let up = |x: usize| x.div_ceil(d) * d;
                return Some(format!(
                    "{arch} needs image sides divisible by {d}; got [{h}, {w}]: e.g. [{}, {}]",
                    up(h),
                    up(w)
                ));
            }
            let least = SSIM_WINDOW.div_ceil(d) * d;
            (h.min(w) < SSIM_WINDOW).then(|| {
                format!(
                    "image_size [{h}, {w}] is too small for a GAN stage: its SSIM scores use an {SSIM_WINDOW}-pixel window, so both sides need at least {SSIM_WINDOW} (for {arch}: [{}, {}])",
                    h.max(least),
                    w.max(least)
                )
            })
        }
        StageKind::Classifier => {
            let arch = stage.model.classifier_arch()?;
            let least = arch.min_input_size();
            (h.min(w) < least).then(|| {
                format!(
                    "{arch} needs both image sides at least {least} pixels; got [{h}, {w}]: e.g. [{}, {}]",
                    h.max(least),
                    w.max(least)
                )
            })
        }
        StageKind::Generate => None,
    }
}

/// A value from a closed set, with the accepted ones listed on error.
trait Choice: Sized {
    const NAMES: &'static [&'static str];
    const WHAT: &'static str;
    fn parse(text: &str) -> Option<Self>;
}

macro_rules! impl_choice {
    ($($t:ty),*) => {$(
        impl Choice for $t {
            const NAMES: &'static [&'static str] = <$t>::NAMES;
            const WHAT: &'static str = <$t>::WHAT;
            fn parse(text: &str) -> Option<Self> { <$t>::parse(text) }
        }
    )*};
}
impl_choice!(
    StageKind,
    GanArch,
    ClassifierArch,
    OptimizerKind,
    LrSchedule,
    Precision,
    DataSource
);

fn choice<T: Choice>(value: &Spanned<String>, errs: &mut Errors<'_>) -> Option<T> {
    let parsed = T::parse(value.get_ref());
    if parsed.is_none() {
        errs.at(
            value.span(),
            format!(
                "unknown {} '{}'; expected one of: {}",
                T::WHAT,
                value.get_ref(),
                T::NAMES.join(", ")
            ),
        );
    }
    parsed
}

/// An integer field that must lie in `[min, max]`.
fn int_in(
    value: &Option<Spanned<i64>>,
    field: &str,
    default: usize,
    min: i64,
    max: i64,
    errs: &mut Errors<'_>,
) -> usize {
    let Some(v) = value else { return default };
    let n = *v.get_ref();
    if n < min || n > max {
        errs.at(
            v.span(),
            format!("{field} {n} is out of range; expected an integer from {min} to {max}"),
        );
        return default;
    }
    n as usize
}

/// A float field that must lie in `[min, max]` (and be finite).
fn float_in(
    value: &Option<Spanned<f64>>,
    field: &str,
    default: f64,
    (min, max): (f64, f64),
    errs: &mut Errors<'_>,
) -> f64 {
    let Some(v) = value else { return default };
    let x = *v.get_ref();
    if !x.is_finite() || x < min || x > max {
        errs.at(
            v.span(),
            format!("{field} {x} is out of range; expected a number from {min} to {max}"),
        );
        return default;
    }
    x
}

fn build_data(ctx: &Context<'_>, raw: RawData, errs: &mut Errors<'_>) -> DataSpec {
    let source = raw
        .source
        .as_ref()
        .and_then(|s| choice::<DataSource>(s, errs))
        .unwrap_or(DataSource::PhantomBone);
    let path = raw.path.as_ref().map(|p| ctx.base_dir.join(p.get_ref()));
    if source == DataSource::Folder && path.is_none() {
        let span = raw.source.as_ref().map_or(0..0, |s| s.span());
        errs.at(
            span,
            "data source 'folder' needs path = \"DIR\" (a folder of class subfolders)",
        );
    }
    let labels = raw.labels.as_ref().map(|l| ctx.base_dir.join(l.get_ref()));
    if let Some(l) = &raw.labels
        && source != DataSource::Folder
    {
        errs.at(
            l.span(),
            "labels = \"FILE\" goes with source = \"folder\" (images under path, listed in FILE)",
        );
    }
    let image_size = match &raw.image_size {
        None => [256, 128],
        Some(v) => match v.get_ref().as_slice() {
            &[h, w] if (8..=4096).contains(&h) && (8..=4096).contains(&w) => {
                [h as usize, w as usize]
            }
            other => {
                errs.at(
                    v.span(),
                    format!(
                        "image_size {other:?} is out of range; expected [height, width] with each from 8 to 4096"
                    ),
                );
                [256, 128]
            }
        },
    };
    let fit = match &raw.fit {
        None => ImageFit::Pad,
        Some(f) if source != DataSource::Folder => {
            errs.at(
                f.span(),
                "fit = \"pad\" or \"stretch\" goes with source = \"folder\" (phantoms are drawn at image_size)",
            );
            ImageFit::Pad
        }
        Some(f) => ImageFit::parse(f.get_ref()).unwrap_or_else(|| {
            errs.at(
                f.span(),
                format!(
                    "fit '{}' is not known; expected one of {}",
                    f.get_ref(),
                    ImageFit::NAMES.join(", ")
                ),
            );
            ImageFit::Pad
        }),
    };
    let classes = raw
        .classes
        .as_ref()
        .map(|c| c.get_ref().clone())
        .unwrap_or_default();
    if let Some(c) = &raw.classes {
        let unique: BTreeSet<&String> = c.get_ref().iter().collect();
        if c.get_ref().len() < 2 || unique.len() != c.get_ref().len() {
            errs.at(c.span(), "classes must list at least two distinct names");
        }
        // A phantom draws as many kinds of image as it has classes: more
        // names would repeat images under new labels.
        let most = match source {
            DataSource::PhantomBone => 3,
            DataSource::PhantomChest => 4,
            DataSource::Folder => usize::MAX,
        };
        if c.get_ref().len() > most {
            errs.at(
                c.span(),
                format!(
                    "{} classes for source '{source}', which draws {most}; expected at most {most} names",
                    c.get_ref().len()
                ),
            );
        }
    }
    let split_seed = int_in(&raw.split_seed, "split_seed", 0, 0, i64::MAX, errs) as u64;
    let class_counts = match &raw.class_counts {
        None => Vec::new(),
        Some(c) => {
            let want = match source {
                DataSource::PhantomBone => 3,
                DataSource::PhantomChest => 4,
                DataSource::Folder => 0,
            };
            let ok = c.get_ref().iter().all(|&n| (2..=1_000_000).contains(&n));
            if want == 0 || c.get_ref().len() != want || !ok {
                errs.at(
                    c.span(),
                    format!(
                        "class_counts {:?} does not fit; expected {want} counts from 2 to 1000000, one per phantom class (folders count their own images)",
                        c.get_ref()
                    ),
                );
                Vec::new()
            } else {
                c.get_ref().iter().map(|&n| n as usize).collect()
            }
        }
    };
    let augment = raw.augment.map(|a| {
        let a = a.into_inner();
        AugmentSpec {
            factor: int_in(&a.factor, "augment.factor", 15, 1, 1000, errs),
            rotation: float_in(&a.rotation, "augment.rotation", 10.0, (0.0, 180.0), errs),
            translation: float_in(
                &a.translation,
                "augment.translation",
                10.0,
                (0.0, 4096.0),
                errs,
            ),
            mirror: a.mirror.is_none_or(|m| *m.get_ref()),
            poisson_counts: float_in(
                &a.poisson_counts,
                "augment.poisson_counts",
                0.0,
                (0.0, 1e9),
                errs,
            ),
            seed: int_in(
                &a.seed,
                "augment.seed",
                split_seed as usize,
                0,
                i64::MAX,
                errs,
            ) as u64,
        }
    });
    DataSpec {
        source,
        path,
        labels,
        classes,
        image_size,
        fit,
        per_class: int_in(&raw.per_class, "per_class", 40, 2, 1_000_000, errs),
        test_fraction: float_in(&raw.test_fraction, "test_fraction", 0.2, (0.0, 0.9), errs),
        split_seed,
        augment,
        gan_samples: raw.gan_samples.as_ref().map(|g| g.get_ref().clone()),
        class_counts,
    }
}

fn build_model(
    ctx: &Context<'_>,
    kind: StageKind,
    raw: RawModel,
    errs: &mut Errors<'_>,
) -> ModelSpec {
    let arch = match (&raw.arch, kind) {
        (None, StageKind::Gan | StageKind::Generate) => GanArch::MuAcgan.to_string(),
        (None, StageKind::Classifier) => ClassifierArch::Multiscale.to_string(),
        (Some(a), StageKind::Gan | StageKind::Generate) => {
            choice::<GanArch>(a, errs);
            a.get_ref().clone()
        }
        (Some(a), StageKind::Classifier) => {
            choice::<ClassifierArch>(a, errs);
            a.get_ref().clone()
        }
    };
    let ca_activation = match &raw.ca_activation {
        None => CaActivation::Relu,
        Some(a) => CaActivation::parse(a.get_ref()).unwrap_or_else(|| {
            errs.at(
                a.span(),
                format!(
                    "unknown ca_activation '{}'; expected one of: {}",
                    a.get_ref(),
                    CaActivation::NAMES.join(", ")
                ),
            );
            CaActivation::Relu
        }),
    };
    if let Some(flag) = &raw.decoder_noise
        && arch != GanArch::MuAcgan.as_str()
    {
        errs.at(
            flag.span(),
            format!("model.decoder_noise applies to arch = \"mu-acgan\" only; this stage's arch is '{arch}'"),
        );
    }
    let weights = match &raw.weights {
        None => PretrainedWeights::None,
        Some(w) => build_weights(ctx, kind, &arch, w, errs),
    };
    ModelSpec {
        weights,
        arch,
        latent_dim: int_in(&raw.latent_dim, "latent_dim", 100, 1, 4096, errs),
        base_channels: int_in(&raw.base_channels, "base_channels", 32, 1, 1024, errs),
        scale_channels: int_in(&raw.scale_channels, "scale_channels", 1, 1, 64, errs),
        ca_activation,
        decoder_noise: gan_flag(kind, &raw.decoder_noise, "model.decoder_noise", errs),
        minibatch_std: gan_flag(kind, &raw.minibatch_std, "model.minibatch_std", errs),
        twin_classifier: gan_flag(kind, &raw.twin_classifier, "model.twin_classifier", errs),
    }
}

/// A GAN-only switch: off when absent; an error on other stages.
fn gan_flag(
    kind: StageKind,
    value: &Option<Spanned<bool>>,
    name: &str,
    errs: &mut Errors<'_>,
) -> bool {
    match value {
        Some(v) if kind == StageKind::Classifier => {
            errs.at(
                v.span(),
                format!("{name} applies to gan stages only; remove it here"),
            );
            false
        }
        other => other.as_ref().is_some_and(|v| *v.get_ref()),
    }
}

fn build_train(kind: StageKind, raw: RawTrain, errs: &mut Errors<'_>) -> TrainSpec {
    let (batch, lr, betas) = match kind {
        StageKind::Gan | StageKind::Generate => (2, 2e-4, [0.5, 0.999]),
        StageKind::Classifier => (4, 1e-4, [0.9, 0.999]),
    };
    let optimizer = raw
        .optimizer
        .as_ref()
        .and_then(|o| choice::<OptimizerKind>(o, errs))
        .unwrap_or(OptimizerKind::Radam);
    let lr_schedule = match &raw.lr_schedule {
        None => LrSchedule::Constant,
        Some(s) => {
            let parsed = choice::<LrSchedule>(s, errs).unwrap_or_default();
            if parsed != LrSchedule::Constant && kind != StageKind::Classifier {
                errs.at(
                    s.span(),
                    "lr_schedule applies to classifier stages only; remove it here",
                );
            }
            parsed
        }
    };
    let training = kind != StageKind::Generate;
    let precision = match &raw.precision {
        None => Precision::Fp32,
        Some(p) => {
            let parsed = choice::<Precision>(p, errs).unwrap_or_default();
            if !training {
                errs.at(
                    p.span(),
                    "precision applies to gan and classifier stages only; remove it here",
                );
            }
            parsed
        }
    };
    let channels_last = match &raw.channels_last {
        Some(c) if !training => {
            errs.at(
                c.span(),
                "channels_last applies to gan and classifier stages only; remove it here",
            );
            false
        }
        other => other.as_ref().is_some_and(|c| *c.get_ref()),
    };
    let betas = match &raw.betas {
        None => betas,
        Some(b) => match b.get_ref().as_slice() {
            &[b1, b2] if (0.0..1.0).contains(&b1) && (0.0..1.0).contains(&b2) => [b1, b2],
            other => {
                errs.at(
                    b.span(),
                    format!("betas {other:?} is out of range; expected [beta1, beta2] with each in [0, 1)"),
                );
                betas
            }
        },
    };
    let device = match &raw.device {
        None => DeviceChoice::Auto,
        Some(d) => DeviceChoice::parse(d.get_ref()).unwrap_or_else(|| {
            errs.at(
                d.span(),
                format!(
                    "unknown device '{}'; expected one of: auto, cpu, cuda, cuda:N",
                    d.get_ref()
                ),
            );
            DeviceChoice::Auto
        }),
    };
    TrainSpec {
        epochs: int_in(&raw.epochs, "epochs", 500, 1, 1_000_000, errs),
        batch_size: int_in(&raw.batch_size, "batch_size", batch, 1, 65_536, errs),
        lr: float_in(&raw.lr, "lr", lr, (1e-12, 10.0), errs),
        lr_schedule,
        optimizer,
        betas,
        weight_decay: float_in(&raw.weight_decay, "weight_decay", 0.0, (0.0, 1.0), errs),
        seed: int_in(&raw.seed, "seed", 0, 0, i64::MAX, errs) as u64,
        device,
        precision,
        channels_last,
        checkpoint_every: int_in(
            &raw.checkpoint_every,
            "checkpoint_every",
            1,
            1,
            1_000_000,
            errs,
        ),
        checkpoint_minutes: float_in(
            &raw.checkpoint_minutes,
            "checkpoint_minutes",
            10.0,
            (0.0, 10_000.0),
            errs,
        ),
        log_every: int_in(&raw.log_every, "log_every", 10, 1, 1_000_000, errs),
        ssim_every: int_in(&raw.ssim_every, "ssim_every", 10, 0, 1_000_000, errs),
        ssim_samples: int_in(&raw.ssim_samples, "ssim_samples", 16, 1, 10_000, errs),
        mode_seeking: {
            if let Some(v) = raw.mode_seeking.as_ref().filter(|_| kind != StageKind::Gan) {
                errs.at(
                    v.span(),
                    "mode_seeking applies to gan stages only; remove it here",
                );
            }
            float_in(
                &raw.mode_seeking,
                "mode_seeking",
                super::spec::DEFAULT_MODE_SEEKING,
                (0.0, 100.0),
                errs,
            )
        },
        ema: {
            if let Some(v) = raw.ema.as_ref().filter(|_| kind != StageKind::Gan) {
                errs.at(v.span(), "ema applies to gan stages only; remove it here");
            }
            float_in(&raw.ema, "ema", 0.0, (0.0, 0.9999), errs)
        },
        generate_per_class: int_in(
            &raw.generate_per_class,
            "generate_per_class",
            0,
            0,
            1_000_000,
            errs,
        ),
        freeze_backbone_epochs: int_in(
            &raw.freeze_backbone_epochs,
            "freeze_backbone_epochs",
            0,
            0,
            1_000_000,
            errs,
        ),
    }
}

/// `model.weights`: a path for one backbone, a table of paths for `multiscale`.
fn build_weights(
    ctx: &Context<'_>,
    kind: StageKind,
    arch: &str,
    value: &Spanned<toml::Value>,
    errs: &mut Errors<'_>,
) -> PretrainedWeights {
    let span = value.span();
    if kind != StageKind::Classifier || arch == ClassifierArch::SmallCnn.as_str() {
        errs.at(span, "model.weights is for ImageNet classifier backbones; remove it here (GANs start from init_from)");
        return PretrainedWeights::None;
    }
    let multiscale = arch == ClassifierArch::Multiscale.as_str();
    match (value.get_ref(), multiscale) {
        (toml::Value::String(path), false) => PretrainedWeights::One(ctx.base_dir.join(path)),
        (toml::Value::Table(table), true) => {
            let mut out = std::collections::BTreeMap::new();
            for (key, v) in table {
                match (MULTISCALE_BACKBONES.contains(&key.as_str()), v.as_str()) {
                    (true, Some(path)) => {
                        out.insert(key.clone(), ctx.base_dir.join(path));
                    }
                    (false, _) => errs.at(
                        span.clone(),
                        format!(
                            "unknown backbone '{key}' in model.weights; expected: {}",
                            MULTISCALE_BACKBONES.join(", ")
                        ),
                    ),
                    (true, None) => errs.at(
                        span.clone(),
                        format!("model.weights.{key} must be a path string"),
                    ),
                }
            }
            PretrainedWeights::PerBackbone(out)
        }
        (_, true) => {
            errs.at(
                span,
                format!(
                    "multiscale takes model.weights = {{ {} = \"PATH\", ... }}, one safetensors file per backbone",
                    MULTISCALE_BACKBONES.join(" = \"PATH\", ")
                ),
            );
            PretrainedWeights::None
        }
        (_, false) => {
            errs.at(span, "model.weights must be a path to a safetensors file (from `scintigan weights import`)");
            PretrainedWeights::None
        }
    }
}
