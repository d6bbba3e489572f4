//! SSIM against scikit-image's structural_similarity (gaussian_weights=True,
//! sigma=1.5, use_sample_covariance=False, data_range=1) on pairs recorded
//! by tests/fixtures/ssim/make_reference.py; diversity, the real-vs-real
//! ceiling and the collapse rule on sets recorded by make_within_reference.py.

use scintigan::store::is_collapsed;
use scintigan::train::ssim::{mean_pairwise_ssim, mean_within_ssim, ssim};
use serde_json::Value;
use tch::Tensor;

#[test]
fn ssim_matches_scikit_image() {
    let text = std::fs::read_to_string("tests/fixtures/ssim/reference.json").expect("fixture");
    let reference: Value = serde_json::from_str(&text).expect("json");
    let pairs = reference["pairs"].as_array().expect("pairs");
    assert_eq!(pairs.len(), 4);
    for pair in pairs {
        let (h, w) = (
            pair["height"].as_i64().expect("h"),
            pair["width"].as_i64().expect("w"),
        );
        let image = |key: &str| {
            let v: Vec<f64> = serde_json::from_value(pair[key].clone()).expect("pixels");
            Tensor::from_slice(&v).view([1, 1, h, w])
        };
        let got = f64::try_from(ssim(&image("a"), &image("b"), 1.0).get(0)).expect("scalar");
        let want = pair["ssim"].as_f64().expect("ssim");
        assert!(
            (got - want).abs() < 1e-4,
            "{h}x{w}: ours {got}, scikit-image {want}"
        );
    }
}

/// One image set of tests/fixtures/ssim/within_reference.json as `[N, 1, H, W]`.
fn image_set(set: &Value) -> Tensor {
    let (h, w) = (
        set["height"].as_i64().expect("h"),
        set["width"].as_i64().expect("w"),
    );
    let images: Vec<Vec<f64>> = serde_json::from_value(set["images"].clone()).expect("images");
    let n = images.len() as i64;
    let flat: Vec<f64> = images.into_iter().flatten().collect();
    Tensor::from_slice(&flat).view([n, 1, h, w])
}

fn within_reference() -> Value {
    let text =
        std::fs::read_to_string("tests/fixtures/ssim/within_reference.json").expect("fixture");
    serde_json::from_str(&text).expect("json")
}

/// Diversity (generated against generated) and the real-vs-real ceiling
/// are the same function: mean matched SSIM over ordered pairs of two
/// different images of one set, as recorded by make_within_reference.py.
#[test]
fn within_set_ssim_matches_scikit_image() {
    let reference = within_reference();
    let sets = reference["sets"].as_array().expect("sets");
    assert_eq!(sets.len(), 3);
    for set in sets {
        let images = image_set(set);
        let want = set["within"].as_f64().expect("within");
        // Chunk sizes that split the pairs unevenly must not change the mean.
        for chunk in [1, 7, 512] {
            let got = mean_within_ssim(&images, chunk);
            assert!(
                (got - want).abs() < 1e-4,
                "{} (chunk {chunk}): ours {got}, scikit-image {want}",
                set["name"]
            );
        }
    }
    let named = |name: &str| {
        let set = sets.iter().find(|s| s["name"] == name).expect("set");
        image_set(set)
    };
    let cross = mean_pairwise_ssim(&named("collapsed"), &named("class"), 5);
    let want = reference["cross_collapsed_vs_class"]
        .as_f64()
        .expect("cross");
    assert!(
        (cross - want).abs() < 1e-4,
        "cross: ours {cross}, scikit-image {want}"
    );
}

/// The collapse rule fires on a generator that draws one image per class
/// (its samples as alike as the fixture's collapsed set), and stays silent
/// when the "generated" images are the class's real ones.
#[test]
fn collapse_rule_fires_on_one_image_per_class_and_not_on_real_images() {
    let reference = within_reference();
    let sets = reference["sets"].as_array().expect("sets");
    let named = |name: &str| image_set(sets.iter().find(|s| s["name"] == name).expect("set"));
    let real = named("class");
    let real_score = mean_within_ssim(&real, 512);
    let collapsed = mean_within_ssim(&named("collapsed"), 512);
    assert!(
        is_collapsed(collapsed, real_score),
        "one image per class: diversity {collapsed}, real {real_score}"
    );
    // Real images against their own ceiling, and a half of them against the whole.
    assert!(!is_collapsed(real_score, real_score));
    let half = mean_within_ssim(&real.narrow(0, 0, 3), 512);
    assert!(
        !is_collapsed(half, real_score),
        "half {half}, all {real_score}"
    );
    // One image repeated: SSIM 1 among the copies.
    let one = named("class").narrow(0, 0, 1).repeat([4, 1, 1, 1]);
    let same = mean_within_ssim(&one, 512);
    assert!(
        (same - 1.0).abs() < 1e-4 && is_collapsed(same, real_score),
        "{same}"
    );
    // Unknown scores (one image: no pairs) never fire.
    assert!(mean_within_ssim(&one.narrow(0, 0, 1), 512).is_nan());
    assert!(!is_collapsed(f64::NAN, real_score));
}
