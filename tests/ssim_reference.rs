//! SSIM against scikit-image's structural_similarity (gaussian_weights=True,
//! sigma=1.5, use_sample_covariance=False, data_range=1) on pairs recorded
//! by tests/fixtures/ssim/make_reference.py.

use scintigan::train::ssim::ssim;
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
