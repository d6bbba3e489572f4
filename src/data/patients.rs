//! Which patient an image shows, from its file name when nothing else says:
//! the two views of one whole-body scan must land in the same split, or
//! the test set holds the other half of a training patient.
//!
//! Recognised pairs:
//! - `<stem>_anterior` / `<stem>_posterior` (also `-`, and `ant` / `post`,
//!   any case) in one folder;
//! - BS-80K's `wholeBodyANT/<n>` and `wholeBodyPOST/<n>`: the same file
//!   number in the two view folders.

use std::path::{Component, Path};

/// The patient key pairing `path` with its other view, if its name
/// follows one of the recognised patterns.
pub fn paired_patient(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    // BS-80K: a view folder somewhere above the file.
    let mut view_folder = false;
    let folders: Vec<String> = path
        .parent()?
        .components()
        .map(|c| match c {
            Component::Normal(name) => {
                let name = name.to_string_lossy();
                let lower = name.to_ascii_lowercase();
                if lower == "wholebodyant" || lower == "wholebodypost" {
                    view_folder = true;
                    "wholeBody(ANT|POST)".to_string()
                } else {
                    name.into_owned()
                }
            }
            other => other.as_os_str().to_string_lossy().into_owned(),
        })
        .collect();
    match (view_folder, without_view_suffix(stem)) {
        (_, Some(base)) => Some(format!("{}/{base}", folders.join("/"))),
        (true, None) => Some(format!("{}/{stem}", folders.join("/"))),
        (false, None) => None,
    }
}

/// `stem` less a trailing view suffix (`_anterior`, `-POST`...), if it has
/// one and something is left.
fn without_view_suffix(stem: &str) -> Option<&str> {
    let lower = stem.to_ascii_lowercase();
    for view in ["anterior", "posterior", "ant", "post"] {
        for sep in ['_', '-'] {
            let suffix = format!("{sep}{view}");
            if lower.len() > suffix.len() && lower.ends_with(&suffix) {
                return Some(&stem[..stem.len() - suffix.len()]);
            }
        }
    }
    None
}

/// The warning for a data set of `images` that says nothing about its
/// patients (no patient column, no recognised pairs). `source` names the
/// folder or label file.
pub fn leak_warning(source: &Path, images: usize) -> Option<String> {
    (images > 1).then(|| {
        format!(
            "{}: no patient IDs (no patient column in labels, no <stem>_anterior/<stem>_posterior or wholeBodyANT/wholeBodyPOST pairs), so each of the {images} images is split as its own patient; a patient with several images (two views, repeat scans) can then land in both train and test and inflate the test accuracy. Add a `patient` column to the labels, name the views <stem>_anterior/<stem>_posterior, or ingest the DICOM files with `scintigan data ingest`",
            source.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anterior_and_posterior_views_of_one_stem_pair_and_others_do_not() {
        let key = |p: &str| paired_patient(Path::new(p));
        assert_eq!(
            key("scans/met/p017_anterior.png"),
            Some("scans/met/p017".into())
        );
        assert_eq!(
            key("scans/met/p017_posterior.png"),
            key("scans/met/p017_anterior.png")
        );
        assert_eq!(
            key("scans/met/P017-ANT.jpg"),
            key("scans/met/P017-POST.jpg")
        );
        assert_ne!(
            key("scans/met/p017_ant.png"),
            key("scans/met/p018_post.png")
        );
        // Same stem in another folder: another patient.
        assert_ne!(key("a/p1_anterior.png"), key("b/p1_anterior.png"));
        assert_eq!(key("scans/met/p017.png"), None);
        assert_eq!(key("scans/met/_anterior.png"), None, "no stem");
        assert_eq!(
            key("scans/elephant.png"),
            None,
            "'ant' is not a suffix here"
        );
    }

    #[test]
    fn bs80k_view_folders_pair_by_file_number() {
        let key = |p: &str| paired_patient(Path::new(p));
        assert_eq!(
            key("bs80k/wholeBodyANT/123.jpg"),
            key("bs80k/wholeBodyPOST/123.jpg")
        );
        assert!(key("bs80k/wholeBodyANT/123.jpg").is_some());
        assert_ne!(
            key("bs80k/wholeBodyANT/123.jpg"),
            key("bs80k/wholeBodyPOST/124.jpg")
        );
        assert_eq!(key("/d/wholebodyant/7.jpg"), key("/d/WholeBodyPost/7.jpg"));
        assert_eq!(
            key("d/wholeBodyANT/7_ANT.jpg"),
            key("d/wholeBodyPOST/7_POST.jpg")
        );
    }

    #[test]
    fn the_warning_names_the_source_and_the_risk() {
        let w = leak_warning(Path::new("scans/labels.csv"), 40).expect("warned");
        assert!(w.starts_with("scans/labels.csv: no patient IDs"), "{w}");
        assert!(
            w.contains("40 images") && w.contains("inflate the test accuracy"),
            "{w}"
        );
        assert_eq!(leak_warning(Path::new("x"), 1), None);
    }
}
