//! `scintigan sweep`: one config per combination of `--set KEY=V1,V2`
//! values (and per seed), written as text edits of the source config so
//! that its comments and layout survive. Pure: text in, texts out; the
//! command validates and writes them.

use std::path::Path;
use thiserror::Error;
use toml_edit::{DocumentMut, Item, Value};

#[derive(Debug, Error, PartialEq)]
pub enum SweepError {
    #[error("--set '{0}': expected KEY=V1,V2,... (for example train.lr=1e-4,3e-4)")]
    Malformed(String),
    #[error("--set '{key}': key '{part}' is not a TOML key; expected dotted names like train.lr")]
    BadKey { key: String, part: String },
    #[error("--set {key} and --set {other} set the same value")]
    Repeated { key: String, other: String },
    #[error("--set {key} and --seeds both set the seed; give one of them")]
    SeedTwice { key: String },
    #[error(
        "{first} and {second} both make the config name '{name}'; give values that differ in letters or digits"
    )]
    SameName {
        first: String,
        second: String,
        name: String,
    },
    #[error(
        "the config name '{name}' ({len} characters) is longer than 64; name the source config shorter or sweep fewer keys at once"
    )]
    TooLong { name: String, len: usize },
    #[error(
        "--set {key}: this file has [[stage]] tables ({stages}); name the stage first, for example {example}"
    )]
    WhichStage {
        key: String,
        stages: String,
        example: String,
    },
    #[error("--set {key}: no stage named '{stage}'; the stages are {stages}")]
    NoStage {
        key: String,
        stage: String,
        stages: String,
    },
    #[error("--set {key}: '{part}' is a value, not a table, in {file}")]
    NotATable {
        key: String,
        part: String,
        file: String,
    },
    #[error("--seeds {0}: expected 1 to 1000")]
    Seeds(usize),
    #[error("the sweep makes {0} configs; at most 10000 (fewer values, or several sweeps)")]
    TooMany(usize),
    #[error("{file} is not TOML: {message}")]
    Parse { file: String, message: String },
}

/// One `--set KEY=V1,V2,...`: the dotted key and its values as typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub key: Vec<String>,
    pub values: Vec<String>,
}

impl Axis {
    /// Parse `KEY=V1,V2,...`. Commas inside brackets or quotes belong to
    /// one value (`data.image_size=[128, 32],[256, 64]`).
    pub fn parse(text: &str) -> Result<Self, SweepError> {
        let malformed = || SweepError::Malformed(text.to_string());
        let (key, values) = text.split_once('=').ok_or_else(malformed)?;
        let key: Vec<String> = key
            .trim()
            .split('.')
            .map(|p| p.trim().to_string())
            .collect();
        for part in &key {
            let ok = !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok {
                return Err(SweepError::BadKey {
                    key: key.join("."),
                    part: part.clone(),
                });
            }
        }
        let values = split_values(values);
        if values.is_empty() || values.iter().any(String::is_empty) {
            return Err(malformed());
        }
        Ok(Self { key, values })
    }

    pub fn key_text(&self) -> String {
        self.key.join(".")
    }
}

/// Split at commas outside brackets, braces and quotes; trimmed.
fn split_values(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut quote, mut current) = (0i32, None::<char>, String::new());
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() || !out.is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// A value as TOML: a number, boolean, array or quoted string as written;
/// anything else is a bare string (`optimizer=adam,radam`).
fn toml_value(text: &str) -> Value {
    text.parse::<Value>()
        .unwrap_or_else(|_| Value::from(text.to_string()))
}

/// One config of the sweep: its run name, the text to write and what it
/// sets (for the header and the command's summary).
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub name: String,
    pub text: String,
    pub settings: Vec<(String, String)>,
}

/// Every combination of the axes' values (the first axis varying slowest),
/// each for seeds 1..=`seeds` when given (`train.seed` of every stage and
/// `data.split_seed` of every stage with data, as `experiment` does).
/// `base_name` is the source's run name; `source` is shown in headers
/// and errors. `rebase` makes a relative path in the source absolute
/// (the written file may sit in another folder).
pub fn expand(
    source: &Path,
    text: &str,
    base_name: &str,
    axes: &[Axis],
    seeds: Option<usize>,
    rebase: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Member>, SweepError> {
    let file = source.display().to_string();
    let doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| SweepError::Parse {
            file: file.clone(),
            message: e.message().to_string(),
        })?;
    // Two keys naming the same value (train.lr and cls.train.lr of a
    // one-stage pipeline) are one axis given twice.
    let targets = axes
        .iter()
        .map(|a| resolve(&doc, a))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, t) in targets.iter().enumerate() {
        if let Some(j) = targets[..i].iter().position(|u| u == t) {
            return Err(SweepError::Repeated {
                key: axes[j].key_text(),
                other: axes[i].key_text(),
            });
        }
        let (_, path) = t;
        let seedish = [["train", "seed"], ["data", "split_seed"]]
            .iter()
            .any(|k| path.iter().map(String::as_str).eq(k.iter().copied()));
        if seeds.is_some() && seedish {
            return Err(SweepError::SeedTwice {
                key: axes[i].key_text(),
            });
        }
    }
    if let Some(n) = seeds
        && !(1..=1000).contains(&n)
    {
        return Err(SweepError::Seeds(n));
    }
    let total = axes
        .iter()
        .map(|a| a.values.len())
        .try_fold(seeds.unwrap_or(1), usize::checked_mul)
        .unwrap_or(usize::MAX);
    if total > 10_000 {
        return Err(SweepError::TooMany(total));
    }
    let mut members = Vec::new();
    let mut choice = vec![0usize; axes.len()];
    loop {
        for seed in seeds.map_or(vec![None], |n| (1..=n).map(Some).collect()) {
            let mut doc = doc.clone();
            let mut settings = Vec::new();
            let mut name = base_name.to_string();
            for (axis, &k) in axes.iter().zip(&choice) {
                let value = &axis.values[k];
                set(&mut doc, axis, value, &file)?;
                settings.push((axis.key_text(), value.clone()));
                name.push('-');
                name.push_str(&label(axis.key.last().map_or("", String::as_str), value));
            }
            if let Some(seed) = seed {
                set_seed(&mut doc, seed);
                settings.push(("seed".into(), seed.to_string()));
                name.push_str(&format!("-s{seed}"));
            }
            rebase_paths(&mut doc, rebase);
            // Keeps the comments above `name`, where a file's header often sits.
            set_in(
                doc.as_table_mut(),
                &["name".to_string()],
                Value::from(name.clone()),
                "name",
                &file,
            )?;
            let what: Vec<String> = settings.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            let header = format!(
                "# Written by `scintigan sweep` from {file}: {}.\n# Edit that file and sweep again rather than this one.\n",
                what.join(", ")
            );
            let what = |settings: &[(String, String)]| {
                let parts: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
                parts.join(" ")
            };
            if let Some(other) = members
                .iter()
                .find(|m: &&Member| m.name.eq_ignore_ascii_case(&name))
            {
                return Err(SweepError::SameName {
                    first: what(&other.settings),
                    second: what(&settings),
                    name,
                });
            }
            if name.len() > 64 {
                return Err(SweepError::TooLong {
                    len: name.len(),
                    name,
                });
            }
            members.push(Member {
                name,
                text: format!("{header}{doc}"),
                settings,
            });
        }
        // The next combination, the last axis varying fastest.
        let mut i = axes.len();
        loop {
            if i == 0 {
                return Ok(members);
            }
            i -= 1;
            choice[i] += 1;
            if choice[i] < axes[i].values.len() {
                break;
            }
            choice[i] = 0;
        }
    }
}

/// A short, file-name-safe label for one setting: the key's last part and
/// the value as typed (`lr` and `3e-4` give `lr3e-4`; `[128, 32]` gives
/// `128x32`).
fn label(key: &str, value: &str) -> String {
    let value: String = value
        .trim_matches(|c| matches!(c, '[' | ']' | '"' | '\''))
        .chars()
        // `1e+3` reads as `1e3`; a run name has no `+`.
        .filter(|c| !c.is_whitespace() && *c != '+')
        .map(|c| match c {
            ',' => 'x',
            c if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') => c,
            _ => '_',
        })
        .collect();
    format!("{key}{value}")
}

/// The stage names of a `[[stage]]` file, in order (empty for a one-stage
/// file).
fn stage_names(doc: &DocumentMut) -> Vec<String> {
    doc.get("stage")
        .and_then(Item::as_array_of_tables)
        .map(|stages| {
            stages
                .iter()
                .map(|t| {
                    t.get("name")
                        .and_then(Item::as_str)
                        .unwrap_or("")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Set `axis` to `value`. In a `[[stage]]` file a key under data, model or
/// train names its stage first (`classifier.train.lr`); top-level keys
/// (`priority`, `after`, ...) go as they are.
fn set(doc: &mut DocumentMut, axis: &Axis, value: &str, file: &str) -> Result<(), SweepError> {
    let key = axis.key_text();
    match resolve(doc, axis)? {
        (None, path) => set_in(doc.as_table_mut(), &path, toml_value(value), &key, file),
        (Some(i), path) => {
            let stage = doc["stage"]
                .as_array_of_tables_mut()
                .and_then(|s| s.get_mut(i))
                .ok_or_else(|| SweepError::Malformed(key.clone()))?;
            set_in(stage, &path, toml_value(value), &key, file)
        }
    }
}

/// Which stage (index; None: the top level) and which dotted path inside
/// it `axis` names.
fn resolve(doc: &DocumentMut, axis: &Axis) -> Result<(Option<usize>, Vec<String>), SweepError> {
    let key = axis.key_text();
    let stages = stage_names(doc);
    let sections = ["data", "model", "train"];
    let first = axis.key[0].as_str();
    if stages.is_empty() {
        Ok((None, axis.key.clone()))
    } else if sections.contains(&first) {
        if stages.len() > 1 {
            return Err(SweepError::WhichStage {
                key: key.clone(),
                stages: stages.join(", "),
                example: format!("{}.{key}", stages.last().map_or("", String::as_str)),
            });
        }
        Ok((Some(0), axis.key.clone()))
    } else if let Some(i) = stages.iter().position(|s| s == first) {
        if axis.key.len() < 2 {
            return Err(SweepError::Malformed(format!("{key}=...")));
        }
        Ok((Some(i), axis.key[1..].to_vec()))
    } else if axis.key.len() > 2 && sections.contains(&axis.key[1].as_str()) {
        Err(SweepError::NoStage {
            key: key.clone(),
            stage: first.to_string(),
            stages: stages.join(", "),
        })
    } else {
        Ok((None, axis.key.clone()))
    }
}

/// Set the dotted `path` under `table`, creating tables (inline ones where
/// the parent is inline) on the way.
fn set_in(
    table: &mut dyn toml_edit::TableLike,
    path: &[String],
    value: Value,
    key: &str,
    file: &str,
) -> Result<(), SweepError> {
    let Some((last, parents)) = path.split_last() else {
        return Err(SweepError::Malformed(key.to_string()));
    };
    let mut here = table;
    for part in parents {
        if here.get(part).is_none() {
            here.insert(part, Item::Value(Value::InlineTable(Default::default())));
        }
        let not_a_table = || SweepError::NotATable {
            key: key.to_string(),
            part: part.clone(),
            file: file.to_string(),
        };
        here = here
            .get_mut(part)
            .and_then(Item::as_table_like_mut)
            .ok_or_else(not_a_table)?;
    }
    match here.get_mut(last) {
        Some(Item::Value(old)) => replace_keeping_comments(old, value),
        _ => {
            here.insert(last, Item::Value(value));
        }
    }
    Ok(())
}

/// Put `new` where `old` was, keeping the spaces and comment around it
/// (`lr = 1e-3 # the paper's` becomes `lr = 3e-4 # the paper's`).
fn replace_keeping_comments(old: &mut Value, new: Value) {
    let decor = old.decor().clone();
    *old = new;
    *old.decor_mut() = decor;
}

/// Every stage's `train.seed`, and `data.split_seed` of every stage that
/// reads data (all but generate stages).
fn set_seed(doc: &mut DocumentMut, seed: usize) {
    let seed = seed as i64;
    let apply = |t: &mut dyn toml_edit::TableLike| {
        let s = |k: &str| vec![k.to_string()];
        let _ = set_in(
            t,
            &[s("train"), s("seed")].concat(),
            Value::from(seed),
            "seed",
            "",
        );
        let generate = t.get("kind").and_then(Item::as_str) == Some("generate");
        if !generate {
            let _ = set_in(
                t,
                &[s("data"), s("split_seed")].concat(),
                Value::from(seed),
                "seed",
                "",
            );
        }
    };
    if let Some(stages) = doc.get_mut("stage").and_then(Item::as_array_of_tables_mut) {
        for stage in stages.iter_mut() {
            apply(stage);
        }
    } else {
        apply(doc.as_table_mut());
    }
}

/// Paths the config resolves against its folder: `data.path`,
/// `data.labels`, `model.weights` and an `init_from` that is not `run:`.
fn rebase_paths(doc: &mut DocumentMut, rebase: &dyn Fn(&str) -> Option<String>) {
    let fix = |t: &mut dyn toml_edit::TableLike| {
        let redo = |item: Option<&mut Item>| {
            if let Some(Item::Value(v)) = item
                && let Some(text) = v.as_str()
                && !text.starts_with("run:")
                && let Some(abs) = rebase(text)
            {
                replace_keeping_comments(v, Value::from(abs));
            }
        };
        redo(t.get_mut("init_from"));
        for (section, key) in [("data", "path"), ("data", "labels"), ("model", "weights")] {
            let Some(item) = t
                .get_mut(section)
                .and_then(Item::as_table_like_mut)
                .and_then(|s| s.get_mut(key))
            else {
                continue;
            };
            // model.weights of the multi-scale model: one file per backbone.
            if let Some(files) = item.as_table_like_mut() {
                for (_, file) in files.iter_mut() {
                    redo(Some(file));
                }
            } else {
                redo(Some(item));
            }
        }
    };
    if let Some(stages) = doc.get_mut("stage").and_then(Item::as_array_of_tables_mut) {
        for stage in stages.iter_mut() {
            fix(stage);
        }
    }
    fix(doc.as_table_mut());
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = "# my classifier\nname = \"cls\"\nkind = \"classifier\"\n\n[train]\nlr = 1e-3 # the paper's\nepochs = 5\n";

    fn keep(_: &str) -> Option<String> {
        None
    }

    fn axes(specs: &[&str]) -> Vec<Axis> {
        specs.iter().map(|s| Axis::parse(s).unwrap()).collect()
    }

    #[test]
    fn values_split_at_top_level_commas_only() {
        let a = Axis::parse("data.image_size=[128, 32],[256, 64]").unwrap();
        assert_eq!(a.key, ["data", "image_size"]);
        assert_eq!(a.values, ["[128, 32]", "[256, 64]"]);
        let a = Axis::parse("train.optimizer = adam, \"radam\"").unwrap();
        assert_eq!(a.values, ["adam", "\"radam\""]);
        assert_eq!(
            Axis::parse("train.lr").unwrap_err(),
            SweepError::Malformed("train.lr".into())
        );
        assert_eq!(
            Axis::parse("train.lr=1,").unwrap_err(),
            SweepError::Malformed("train.lr=1,".into())
        );
        assert!(matches!(
            Axis::parse("train..lr=1").unwrap_err(),
            SweepError::BadKey { .. }
        ));
    }

    #[test]
    fn every_combination_and_seed_gets_a_name_saying_what_varies() {
        let m = expand(
            Path::new("configs/cls.toml"),
            ONE,
            "cls",
            &axes(&["train.lr=3e-4,1e-4", "train.batch_size=8,16"]),
            Some(2),
            &keep,
        )
        .unwrap();
        let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names.len(), 8);
        assert_eq!(
            names[..3],
            [
                "cls-lr3e-4-batch_size8-s1",
                "cls-lr3e-4-batch_size8-s2",
                "cls-lr3e-4-batch_size16-s1"
            ]
        );
        let first = &m[0].text;
        assert!(first.starts_with("# Written by `scintigan sweep` from configs/cls.toml: train.lr = 3e-4, train.batch_size = 8, seed = 1."));
        // Comments and untouched keys survive; the edited value keeps its comment.
        assert!(first.contains("# my classifier"), "{first}");
        assert!(first.contains("lr = 3e-4 # the paper's"), "{first}");
        assert!(first.contains("epochs = 5"), "{first}");
        assert!(first.contains("batch_size = 8"), "{first}");
        assert!(first.contains("seed = 1"), "{first}");
        assert!(
            first.contains("name = \"cls-lr3e-4-batch_size8-s1\""),
            "{first}"
        );
        let parsed: toml::Table = toml::from_str(first).unwrap();
        assert_eq!(parsed["train"]["lr"].as_float(), Some(3e-4));
    }

    #[test]
    fn pipelines_name_the_stage_and_seeds_reach_every_stage() {
        let text = "name = \"p\"\n[[stage]]\nname = \"gan\"\nkind = \"gan\"\ndata = { source = \"folder\", path = \"data/bone\" }\ntrain = { epochs = 2 }\n\n[[stage]]\nname = \"cls\"\nkind = \"classifier\"\ntrain = { epochs = 3 }\n";
        let err = expand(
            Path::new("p.toml"),
            text,
            "p",
            &axes(&["train.lr=1"]),
            None,
            &keep,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--set train.lr: this file has [[stage]] tables (gan, cls); name the stage first, for example cls.train.lr"
        );
        let rebase = |p: &str| Some(format!("/project/{p}"));
        let m = expand(
            Path::new("p.toml"),
            text,
            "p",
            &axes(&["cls.train.lr=1e-4", "gan.model.base_channels=8"]),
            Some(1),
            &rebase,
        )
        .unwrap();
        let t: toml::Table = toml::from_str(&m[0].text).unwrap();
        let stages = t["stage"].as_array().unwrap();
        assert_eq!(stages[1]["train"]["lr"].as_float(), Some(1e-4));
        assert_eq!(stages[0]["model"]["base_channels"].as_integer(), Some(8));
        assert_eq!(stages[0]["train"]["seed"].as_integer(), Some(1));
        assert_eq!(stages[0]["data"]["split_seed"].as_integer(), Some(1));
        assert_eq!(stages[1]["train"]["seed"].as_integer(), Some(1));
        assert_eq!(
            stages[1]["data"]["split_seed"].as_integer(),
            Some(1),
            "a stage on its default data gets the split seed too"
        );
        assert_eq!(
            stages[0]["data"]["path"].as_str(),
            Some("/project/data/bone")
        );
        assert_eq!(m[0].name, "p-lr1e-4-base_channels8-s1");
        let err = expand(
            Path::new("p.toml"),
            text,
            "p",
            &axes(&["gen.train.lr=1"]),
            None,
            &keep,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--set gen.train.lr: no stage named 'gen'; the stages are gan, cls"
        );
    }

    #[test]
    fn names_that_would_collide_or_grow_too_long_are_refused() {
        let err = expand(
            Path::new("c.toml"),
            ONE,
            "c",
            &axes(&["train.optimizer=\"a b\",ab"]),
            None,
            &keep,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "train.optimizer=\"a b\" and train.optimizer=ab both make the config name 'c-optimizerab'; give values that differ in letters or digits"
        );
        let err = expand(
            Path::new("c.toml"),
            ONE,
            "c",
            &axes(&["train.lr=1e-4,1E-4"]),
            None,
            &keep,
        )
        .unwrap_err();
        assert!(matches!(err, SweepError::SameName { .. }), "{err}");
        let m = expand(
            Path::new("c.toml"),
            ONE,
            "c",
            &axes(&["train.lr=1e+3"]),
            None,
            &keep,
        )
        .unwrap();
        assert_eq!(m[0].name, "c-lr1e3", "no '+' in a run name");
        let long = "x".repeat(60);
        let err = expand(
            Path::new("c.toml"),
            ONE,
            &long,
            &axes(&["train.lr=1e-4"]),
            None,
            &keep,
        )
        .unwrap_err();
        assert!(matches!(err, SweepError::TooLong { len: 67, .. }), "{err}");
    }

    #[test]
    fn seeds_and_a_swept_seed_or_one_value_named_twice_are_refused() {
        let err = expand(
            Path::new("c.toml"),
            ONE,
            "c",
            &axes(&["train.seed=1,2"]),
            Some(2),
            &keep,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--set train.seed and --seeds both set the seed; give one of them"
        );
        let one = "name = \"p\"\n[[stage]]\nname = \"cls\"\nkind = \"classifier\"\n";
        let err = expand(
            Path::new("p.toml"),
            one,
            "p",
            &axes(&["train.lr=1", "cls.train.lr=2"]),
            None,
            &keep,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--set train.lr and --set cls.train.lr set the same value"
        );
        // A stage without a data table gets its split seed too; a generate
        // stage, which reads no data, does not.
        let text = "[[stage]]\nname = \"gan\"\nkind = \"gan\"\n[[stage]]\nname = \"gen\"\nkind = \"generate\"\ninit_from = \"run:gan\"\n";
        let m = expand(Path::new("p.toml"), text, "p", &[], Some(1), &keep).unwrap();
        let t: toml::Table = toml::from_str(&m[0].text).unwrap();
        let stages = t["stage"].as_array().unwrap();
        assert_eq!(stages[0]["data"]["split_seed"].as_integer(), Some(1));
        assert!(stages[1].get("data").is_none());
        assert_eq!(stages[1]["train"]["seed"].as_integer(), Some(1));
    }

    #[test]
    fn per_backbone_weights_are_rebased_too() {
        let text = "kind = \"classifier\"\nmodel = { arch = \"multiscale\", weights = { densenet121 = \"w/d.safetensors\", vgg16 = \"/abs/v.safetensors\" } }\n";
        let rebase = |p: &str| Path::new(p).is_relative().then(|| format!("/project/{p}"));
        let m = expand(Path::new("c.toml"), text, "c", &[], Some(1), &rebase).unwrap();
        let t: toml::Table = toml::from_str(&m[0].text).unwrap();
        assert_eq!(
            t["model"]["weights"]["densenet121"].as_str(),
            Some("/project/w/d.safetensors")
        );
        assert_eq!(
            t["model"]["weights"]["vgg16"].as_str(),
            Some("/abs/v.safetensors")
        );
    }

    #[test]
    fn a_key_given_twice_or_too_many_configs_are_refused() {
        let err = expand(
            Path::new("c.toml"),
            ONE,
            "c",
            &axes(&["train.lr=1", "train.lr=2"]),
            None,
            &keep,
        )
        .unwrap_err();
        assert_eq!(
            err,
            SweepError::Repeated {
                key: "train.lr".into(),
                other: "train.lr".into()
            }
        );
        let many: Vec<String> = (0..101).map(|i| i.to_string()).collect();
        let a = Axis::parse(&format!("train.epochs={}", many.join(","))).unwrap();
        let err = expand(Path::new("c.toml"), ONE, "c", &[a], Some(100), &keep).unwrap_err();
        assert_eq!(err, SweepError::TooMany(10_100));
        let err = expand(Path::new("c.toml"), "x = [", "c", &[], None, &keep).unwrap_err();
        assert!(err.to_string().starts_with("c.toml is not TOML"), "{err}");
    }
}
