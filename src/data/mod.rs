//! Data sets: synthetic phantoms and folders of class subfolders, split per
//! class into train and test, as tensors.

pub mod augment;
pub mod dicom;
pub mod folder;
pub mod ingest;
pub mod labels;
pub mod loader;
pub mod patients;
pub mod phantom;
pub mod prep;

use crate::config::{DataSource, DataSpec, ImageFit};
use crate::rng::SplitMix64;
use std::path::PathBuf;
use tch::{Kind, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {message}")]
    Folder { path: PathBuf, message: String },
    #[error("{path}: cannot read image: {message}; expected a PNG or JPEG file")]
    Image { path: PathBuf, message: String },
}

/// Images and labels held in memory.
#[derive(Debug)]
pub struct Dataset {
    /// `[N, 1, H, W]` float32 in [0, 1], on the CPU.
    pub images: Tensor,
    /// `[N]` int64 class indices.
    pub labels: Tensor,
    pub classes: Vec<String>,
    /// Each image's source (file path or phantom id), in row order.
    pub names: Vec<String>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Images per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let labels = Vec::<i64>::try_from(&self.labels).unwrap_or_default();
        let mut counts = vec![0; self.classes.len()];
        for l in labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }
}

/// A train/test split of one data set.
#[derive(Debug)]
pub struct Split {
    pub train: Dataset,
    pub test: Dataset,
    /// Warnings about the data a user should see (as `warn` events): a
    /// folder without patient IDs, whose split may leak.
    pub notes: Vec<String>,
}

/// One decoded image with its class, before splitting.
#[derive(Debug)]
pub struct Item {
    pub pixels: Vec<f32>,
    pub class: usize,
    /// Where it came from: a file path, or `phantom:<class>/<index>`.
    pub name: String,
    /// Which patient it shows (a pseudonymous key): the views of one
    /// patient always land in the same split. Images without patient
    /// information are their own patient.
    pub patient: String,
}

/// Load the data a stage's `[data]` section describes, split it, and
/// augment the training split as configured.
pub fn load(spec: &DataSpec) -> Result<Split, DataError> {
    Ok(augment_train(load_split(spec)?, spec))
}

/// [`load`] without the augmentation (to add GAN samples first).
pub fn load_split(spec: &DataSpec) -> Result<Split, DataError> {
    let [h, w] = spec.image_size;
    let classes = spec.class_names();
    let items: Vec<Item> = match spec.source {
        DataSource::PhantomBone | DataSource::PhantomChest => {
            let mut items = Vec::new();
            for (class, class_name) in classes.iter().enumerate() {
                let count = spec
                    .class_counts
                    .get(class)
                    .copied()
                    .unwrap_or(spec.per_class);
                if spec.source == DataSource::PhantomBone {
                    // Two views per patient; an odd count ends on an
                    // anterior view alone.
                    for p in 0..count.div_ceil(2) as u64 {
                        let views = phantom::bone_views(h, w, class % 3, spec.split_seed, p);
                        for (v, canvas) in views.into_iter().enumerate() {
                            if 2 * p as usize + v >= count {
                                break;
                            }
                            let view = ["anterior", "posterior"][v];
                            items.push(Item {
                                pixels: canvas.pixels,
                                class,
                                name: format!("phantom:{class_name}/{p}/{view}"),
                                patient: format!("{class_name}-{p}"),
                            });
                        }
                    }
                } else {
                    for i in 0..count as u64 {
                        let canvas = phantom::chest_xray(h, w, class % 4, spec.split_seed, i);
                        items.push(Item {
                            pixels: canvas.pixels,
                            class,
                            name: format!("phantom:{class_name}/{i}"),
                            patient: format!("{class_name}-{i}"),
                        });
                    }
                }
            }
            items
        }
        DataSource::Folder => {
            let path = spec.path.clone().unwrap_or_default();
            let (found_classes, items, source) = match &spec.labels {
                Some(labels) => {
                    let (c, i) =
                        labels::load_labelled(&path, labels, &spec.classes, h, w, spec.fit)?;
                    (c, i, path.join(labels))
                }
                None => {
                    let (c, i) = folder::load_class_folders_with(
                        &path,
                        &spec.classes,
                        h,
                        w,
                        spec.fit,
                        false,
                    )?;
                    (c, i, path.clone())
                }
            };
            // No IDs: every image its own patient by its path alone (a
            // patient column, even of one image per patient, is an answer).
            let no_ids = items.iter().all(|i| i.patient == i.name);
            let warning = if no_ids {
                patients::leak_warning(&source, items.len())
            } else {
                None
            };
            let mut split = split(items, found_classes, h, w, spec);
            split.notes.extend(warning);
            return Ok(split);
        }
    };
    Ok(split(items, classes, h, w, spec))
}

/// Append the images under `folder` (class subfolders named like the
/// split's classes; missing or empty ones allowed) to the training split,
/// brought to `h` x `w` by `fit` as the real images are. Returns how many
/// were added per class.
pub fn add_to_train(
    split: &mut Split,
    folder: &std::path::Path,
    h: usize,
    w: usize,
    fit: ImageFit,
) -> Result<Vec<usize>, DataError> {
    let classes = split.train.classes.clone();
    let (_, items) = folder::load_class_folders_with(folder, &classes, h, w, fit, true)?;
    let mut added = vec![0; classes.len()];
    for item in &items {
        added[item.class] += 1;
    }
    let all: Vec<usize> = (0..items.len()).collect();
    let extra = to_dataset(&items, &all, &classes, h, w);
    let train = &mut split.train;
    train.images = Tensor::cat(&[&train.images, &extra.images], 0);
    train.labels = Tensor::cat(&[&train.labels, &extra.labels], 0);
    train.names.extend(extra.names);
    Ok(added)
}

/// Grow the training split by `spec.augment` (originals first); the test
/// split is never touched.
pub fn augment_train(mut split: Split, spec: &DataSpec) -> Split {
    if let Some(aug) = &spec.augment {
        let (images, labels) = augment::expand(&split.train.images, &split.train.labels, aug);
        let originals = split.train.names.clone();
        split.train.names = (0..aug.factor)
            .flat_map(|copy| {
                originals.iter().map(move |n| {
                    if copy == 0 {
                        n.clone()
                    } else {
                        format!("{n}#aug{copy}")
                    }
                })
            })
            .collect();
        split.train.images = images;
        split.train.labels = labels;
    }
    split
}

/// Split per patient, stratified by class: the patients of each class (a
/// patient's class is that of its first image) are shuffled with a seeded
/// stream, the first `round(n * test_fraction)` of them (at least one when
/// the fraction is positive and the class has two or more patients) go to
/// test with every one of their images, the rest to train.
fn split(items: Vec<Item>, classes: Vec<String>, h: usize, w: usize, spec: &DataSpec) -> Split {
    // Patients in order of first appearance, with their images.
    let mut patients: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let k = *index.entry(item.patient.as_str()).or_insert_with(|| {
            patients.push((item.class, Vec::new()));
            patients.len() - 1
        });
        patients[k].1.push(i);
    }
    let mut train = Vec::new();
    let mut test = Vec::new();
    for class in 0..classes.len() {
        let of_class: Vec<usize> = (0..patients.len())
            .filter(|&p| patients[p].0 == class)
            .collect();
        let order = SplitMix64::derive(spec.split_seed, 0x5EED_0000 + class as u64)
            .permutation(of_class.len());
        let mut n_test = (of_class.len() as f64 * spec.test_fraction).round() as usize;
        if spec.test_fraction > 0.0 && n_test == 0 && of_class.len() >= 2 {
            n_test = 1;
        }
        // Never every patient of a class: training needs one.
        if of_class.len() >= 2 {
            n_test = n_test.min(of_class.len() - 1);
        }
        for (k, &o) in order.iter().enumerate() {
            let images = &patients[of_class[o]].1;
            if k < n_test {
                test.extend_from_slice(images);
            } else {
                train.extend_from_slice(images);
            }
        }
    }
    train.sort_unstable();
    test.sort_unstable();
    Split {
        train: to_dataset(&items, &train, &classes, h, w),
        test: to_dataset(&items, &test, &classes, h, w),
        notes: Vec::new(),
    }
}

fn to_dataset(items: &[Item], which: &[usize], classes: &[String], h: usize, w: usize) -> Dataset {
    let mut pixels = Vec::with_capacity(which.len() * h * w);
    let mut labels = Vec::with_capacity(which.len());
    let mut names = Vec::with_capacity(which.len());
    for &i in which {
        pixels.extend_from_slice(&items[i].pixels);
        labels.push(items[i].class as i64);
        names.push(items[i].name.clone());
    }
    Dataset {
        images: Tensor::from_slice(&pixels).view([which.len() as i64, 1, h as i64, w as i64]),
        labels: Tensor::from_slice(&labels).to_kind(Kind::Int64),
        classes: classes.to_vec(),
        names,
    }
}

/// Every image of a folder of class subfolders, unsplit, with `classes`
/// in that label order, brought to `h` x `w` by `fit` as in training (for
/// evaluating a trained model on new data).
pub fn load_folder_all(
    root: &std::path::Path,
    classes: &[String],
    h: usize,
    w: usize,
    fit: ImageFit,
) -> Result<Dataset, DataError> {
    let (classes, items) = folder::load_class_folders_with(root, classes, h, w, fit, false)?;
    let all: Vec<usize> = (0..items.len()).collect();
    Ok(to_dataset(&items, &all, &classes, h, w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DataSource;

    fn spec() -> DataSpec {
        DataSpec {
            source: DataSource::PhantomBone,
            path: None,
            labels: None,
            classes: vec![],
            image_size: [32, 16],
            fit: ImageFit::Pad,
            per_class: 10,
            test_fraction: 0.2,
            split_seed: 3,
            augment: None,
            gan_samples: None,
            class_counts: vec![],
        }
    }

    /// A folder of class subfolders with `names` (`{class}` and `{i}`
    /// filled in) in each of two classes, 12 per class.
    fn scan_folder(tag: &str, names: &[&str]) -> std::path::PathBuf {
        let root =
            std::env::temp_dir().join(format!("scintigan-pairs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for class in ["healthy", "metastasis"] {
            let dir = root.join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..12 / names.len() {
                for name in names {
                    let file = name
                        .replace("{class}", class)
                        .replace("{i}", &i.to_string());
                    image::GrayImage::from_pixel(8, 16, image::Luma([(i * 20) as u8]))
                        .save(dir.join(file))
                        .unwrap();
                }
            }
        }
        root
    }

    fn folder_spec(root: &std::path::Path) -> DataSpec {
        DataSpec {
            source: DataSource::Folder,
            path: Some(root.to_path_buf()),
            test_fraction: 0.34,
            ..spec()
        }
    }

    #[test]
    fn anterior_and_posterior_files_stay_together_and_unpaired_files_warn() {
        let paired = scan_folder(
            "paired",
            &["{class}{i}_anterior.png", "{class}{i}_posterior.png"],
        );
        for seed in 0..5 {
            let mut s = folder_spec(&paired);
            s.split_seed = seed;
            let split = load_split(&s).unwrap();
            assert!(split.notes.is_empty(), "{:?}", split.notes);
            let stem = |n: &String| n.rsplit_once('_').map(|(a, _)| a.to_string()).unwrap();
            let train: std::collections::HashSet<String> =
                split.train.names.iter().map(stem).collect();
            assert!(!split.test.is_empty());
            for n in &split.test.names {
                assert!(
                    !train.contains(&stem(n)),
                    "seed {seed}: {n} has its other view in train"
                );
            }
        }
        let flat = scan_folder("flat", &["{class}{i}.png"]);
        let split = load_split(&folder_spec(&flat)).unwrap();
        assert_eq!(split.notes.len(), 1, "{:?}", split.notes);
        assert!(
            split.notes[0].starts_with(&format!("{}: no patient IDs", flat.display())),
            "{}",
            split.notes[0]
        );
        std::fs::remove_dir_all(&paired).ok();
        std::fs::remove_dir_all(&flat).ok();
    }

    #[test]
    fn augmentation_grows_the_training_split_only() {
        let mut with = spec();
        with.augment = Some(augment::AugmentSpec {
            factor: 3,
            rotation: 5.0,
            translation: 1.0,
            mirror: true,
            poisson_counts: 0.0,
            seed: 1,
        });
        let plain = load(&spec()).unwrap();
        let grown = load(&with).unwrap();
        assert_eq!(grown.train.class_counts(), vec![24, 24, 24]);
        assert_eq!(grown.test.class_counts(), plain.test.class_counts());
        let same = (&grown.test.images - &plain.test.images).abs().max();
        assert_eq!(
            f64::try_from(same).unwrap(),
            0.0,
            "the test split is never augmented"
        );
        assert_eq!(grown.train.names.len(), 72);
        assert!(
            grown.train.names[30].ends_with("#aug1"),
            "{}",
            grown.train.names[30]
        );
    }

    #[test]
    fn both_views_of_a_patient_stay_in_one_split() {
        let split = load(&spec()).unwrap();
        let patient = |n: &str| n.rsplit_once('/').map(|(p, _)| p.to_string()).unwrap();
        let train: std::collections::HashSet<String> =
            split.train.names.iter().map(|n| patient(n)).collect();
        for n in &split.test.names {
            assert!(!train.contains(&patient(n)), "{n} has a view in train");
        }
        // 10 images per class = 5 patients; 20 % of 5 = 1 patient, 2 images.
        assert_eq!(split.test.class_counts(), vec![2, 2, 2]);
        assert!(split.test.names.iter().any(|n| n.ends_with("/posterior")));
    }

    #[test]
    fn a_class_always_keeps_a_training_patient() {
        let mut s = spec();
        s.class_counts = vec![4, 4, 4]; // 2 patients per class
        s.test_fraction = 0.9;
        let split = load(&s).unwrap();
        assert_eq!(split.train.class_counts(), vec![2, 2, 2]);
        assert_eq!(split.test.class_counts(), vec![2, 2, 2]);
    }

    #[test]
    fn split_is_stratified_and_disjoint() {
        let split = load(&spec()).unwrap();
        assert_eq!(split.train.class_counts(), vec![8, 8, 8]);
        assert_eq!(split.test.class_counts(), vec![2, 2, 2]);
        assert_eq!(split.train.images.size(), vec![24, 1, 32, 16]);
        // No test image equals a training image.
        for i in 0..6 {
            let t = split.test.images.get(i);
            let diff = (&split.train.images - &t)
                .abs()
                .flatten(1, -1)
                .sum_dim_intlist(1, false, Kind::Float);
            let min = f64::try_from(diff.min()).unwrap();
            assert!(min > 0.0);
        }
    }
}
