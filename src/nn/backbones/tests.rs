use super::*;
use crate::nn::multiscale::multiscale;
use tch::Device;

fn count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

/// torchvision 0.28's parameter counts with the 1000-class ImageNet head.
#[test]
fn parameter_counts_equal_torchvisions() {
    for (arch, want) in [
        (ClassifierArch::Resnet34, 21_797_672),
        (ClassifierArch::Resnext50, 25_028_904),
        (ClassifierArch::Densenet121, 7_978_856),
        (ClassifierArch::Vgg16, 138_357_544),
        (ClassifierArch::MobilenetV3Large, 5_483_032),
        (ClassifierArch::EfficientnetB0, 5_288_548),
        (ClassifierArch::InceptionV3, 27_161_264),
    ] {
        let vs = nn::VarStore::new(Device::Cpu);
        let _model = backbone_classifier(vs.root(), arch, 1000).unwrap();
        assert_eq!(count(&vs), want, "{arch}");
    }
}

#[test]
fn multiscale_concatenates_3584_features() {
    let vs = nn::VarStore::new(Device::Cpu);
    let model = multiscale(vs.root(), 3);
    assert_eq!(vs.variables()["fc.weight"].size(), vec![3, 3584]);
    // Non-square input, as whole-body scans are.
    let x = Tensor::rand([1, 1, 96, 64], (Kind::Float, Device::Cpu));
    let y = tch::no_grad(|| model.forward_t(&x, false));
    assert_eq!(y.size(), vec![1, 3]);
    // The three ImageNet backbones without their heads, plus the new head.
    let backbones =
        7_978_856 - (1024 * 1000 + 1000) + 14_714_688 + 25_028_904 - (2048 * 1000 + 1000);
    assert_eq!(count(&vs), backbones + 3584 * 3 + 3);
}

#[test]
fn torchvision_key_names() {
    let vs = nn::VarStore::new(Device::Cpu);
    let _ = backbone_classifier(vs.root(), ClassifierArch::Densenet121, 10).unwrap();
    let vars = vs.variables();
    for key in [
        "features.conv0.weight",
        "features.norm0.running_var",
        "features.denseblock3.denselayer24.conv2.weight",
        "features.transition2.conv.weight",
        "features.norm5.bias",
        "classifier.weight",
    ] {
        assert!(vars.contains_key(key), "missing {key}");
    }
    let vs = nn::VarStore::new(Device::Cpu);
    let _ = backbone_classifier(vs.root(), ClassifierArch::Resnext50, 10).unwrap();
    let vars = vs.variables();
    assert_eq!(
        vars["layer1.0.conv2.weight"].size(),
        vec![128, 4, 3, 3],
        "grouped 3x3, width planes * 2"
    );
    assert!(vars.contains_key("layer4.0.downsample.1.running_mean"));
}

#[test]
fn imagenet_input_repeats_and_normalises() {
    let x = Tensor::full([1, 1, 2, 2], 0.485, (Kind::Float, Device::Cpu));
    let y = imagenet_input(&x);
    assert_eq!(y.size(), vec![1, 3, 2, 2]);
    let red = f64::try_from(y.get(0).get(0).mean(Kind::Float)).unwrap();
    assert!(red.abs() < 1e-6);
}

#[test]
fn multiscale_grad_cam_has_a_map_per_branch_and_a_combined_one() {
    let vs = nn::VarStore::new(Device::Cpu);
    let model = multiscale(vs.root(), 3);
    let x = Tensor::rand([1, 1, 96, 64], (Kind::Float, Device::Cpu));
    let maps = crate::nn::gradcam::grad_cam(&model, &x, Some(2)).unwrap();
    let names: Vec<&str> = maps.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["densenet", "vgg", "resnext", "combined"]);
    for (name, m) in &maps {
        assert_eq!(m.size(), vec![1, 1, 96, 64], "{name}");
        let (lo, hi) = (
            f64::try_from(m.min()).unwrap(),
            f64::try_from(m.max()).unwrap(),
        );
        assert!(lo >= 0.0 && hi <= 1.0 + 1e-6, "{name}: [{lo}, {hi}]");
    }
}
