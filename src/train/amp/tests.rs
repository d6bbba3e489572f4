use super::*;
use crate::config::OptimizerKind;
use crate::train::optim::OptimConfig;
use tch::nn::Module;

const SGD: OptimConfig = OptimConfig {
    kind: OptimizerKind::Sgd,
    lr: 0.1,
    betas: [0.9, 0.999],
    eps: 1e-8,
    weight_decay: 0.0,
};

fn conv_store() -> (nn::VarStore, nn::Conv2D) {
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let conv = nn::conv2d(vs.root() / "conv", 2, 4, 3, Default::default());
    (vs, conv)
}

#[test]
fn autocast_runs_convolutions_in_the_reduced_type_and_puts_the_old_state_back() {
    let (_vs, conv) = conv_store();
    let x = Tensor::rand([1, 2, 6, 6], (Kind::Float, Device::Cpu));
    let kind_under = |precision| {
        MixedPrecision::with_growth_interval(precision, false, Device::Cpu, 2000)
            .autocast(|| (conv.forward(&x).kind(), autocast_enabled(false)))
    };
    assert_eq!(kind_under(Precision::Fp32), (Kind::Float, false));
    assert_eq!(kind_under(Precision::Bf16), (Kind::BFloat16, true));
    assert_eq!(kind_under(Precision::Fp16), (Kind::Half, true));

    // Nested regions: the inner one's type applies inside it, the outer
    // one's again after it.
    let bf16 = MixedPrecision::with_growth_interval(Precision::Bf16, false, Device::Cpu, 2000);
    let fp16 = MixedPrecision::with_growth_interval(Precision::Fp16, false, Device::Cpu, 2000);
    let (inner, after_inner) = bf16.autocast(|| {
        let inner = fp16.autocast(|| conv.forward(&x).kind());
        (inner, conv.forward(&x).kind())
    });
    assert_eq!((inner, after_inner), (Kind::Half, Kind::BFloat16));

    assert!(
        !autocast_enabled(false),
        "autocast left on after the region"
    );
    assert_eq!(conv.forward(&x).kind(), Kind::Float);
}

/// A weight `w` of `len` ones, SGD over it, and an fp16 scaler that grows
/// after 3 clean iterations.
fn fp16_setup(len: i64) -> (Tensor, Optimizer, MixedPrecision) {
    let vs = nn::VarStore::new(Device::Cpu);
    let w = vs.root().ones("w", &[len]);
    let opt = Optimizer::new(&vs, SGD);
    let amp = MixedPrecision::with_growth_interval(Precision::Fp16, false, Device::Cpu, 3);
    (w, opt, amp)
}

/// One iteration of `w` with gradient `factor` (NaN makes a bad one).
fn iterate(amp: &mut MixedPrecision, opt: &mut Optimizer, w: &Tensor, factor: f64) -> bool {
    opt.zero_grad();
    amp.backward(&(w * factor).sum(Kind::Float));
    let stepped = amp.step(opt).unwrap();
    amp.update().unwrap();
    stepped
}

#[test]
fn fp16_skips_a_step_with_an_infinite_gradient_and_halves_the_scale() {
    let (w, mut opt, mut amp) = fp16_setup(2);
    assert_eq!(amp.loss_scale(), Some(65536.0));

    // d/dw of sum(w * [1, inf]) is [1, inf]: the step must not happen.
    opt.zero_grad();
    let loss = (&w * Tensor::from_slice(&[1.0f32, f32::INFINITY])).sum(Kind::Float);
    amp.backward(&loss);
    assert!(!amp.step(&mut opt).unwrap());
    amp.update().unwrap();
    assert_eq!(Vec::<f32>::try_from(&w).unwrap(), [1.0, 1.0]);
    assert_eq!(amp.loss_scale(), Some(32768.0));
    assert_eq!(opt.steps_taken(), 0);
    assert_eq!(
        amp.take_skip_report().as_deref(),
        Some(
            "fp16: skipped 1 of 1 optimizer steps for infinite or NaN gradients; loss scale now 32768"
        )
    );
    assert_eq!(amp.take_skip_report(), None, "the report is per period");

    // A clean step: the gradient [3, 5] is unscaled before SGD uses it,
    // so w = 1 - 0.1 * [3, 5] exactly as in float32 training.
    opt.zero_grad();
    let loss = (&w * Tensor::from_slice(&[3.0f32, 5.0])).sum(Kind::Float);
    amp.backward(&loss);
    assert!(amp.step(&mut opt).unwrap());
    amp.update().unwrap();
    let after: Vec<f32> = Vec::try_from(&w).unwrap();
    assert!(
        (after[0] - 0.7).abs() < 1e-6 && (after[1] - 0.5).abs() < 1e-6,
        "{after:?}"
    );

    // Two more clean iterations make three in a row: the scale doubles.
    for _ in 0..2 {
        assert!(iterate(&mut amp, &mut opt, &w, 1e-3));
    }
    assert_eq!(amp.loss_scale(), Some(65536.0));
}

#[test]
fn the_scaler_state_survives_a_checkpoint_round_trip() {
    let (w, mut opt, mut amp) = fp16_setup(1);
    // A bad iteration halves the scale; two clean ones count towards growth.
    assert!(!iterate(&mut amp, &mut opt, &w, f64::NAN));
    assert!(iterate(&mut amp, &mut opt, &w, 1e-3));
    assert!(iterate(&mut amp, &mut opt, &w, 1e-3));
    let saved: HashMap<String, Tensor> = amp.state_tensors("amp.").into_iter().collect();
    assert_eq!(i64::try_from(&saved["amp.growth_tracker"]).unwrap(), 2);

    // Resumed, the third clean iteration in a row doubles the scale, as it
    // does in the run that never stopped.
    let mut resumed = MixedPrecision::with_growth_interval(Precision::Fp16, false, Device::Cpu, 3);
    assert_eq!(resumed.load_state("amp.", &saved), None, "all there");
    assert_eq!(resumed.loss_scale(), Some(32768.0));
    // A checkpoint without the scaler says so instead of starting afresh
    // in silence.
    let mut fresh = MixedPrecision::with_growth_interval(Precision::Fp16, false, Device::Cpu, 3);
    let warning = fresh
        .load_state("amp.", &HashMap::new())
        .expect("a warning");
    assert!(
        warning.contains("amp.scale or amp.growth_tracker") && warning.contains("2^16"),
        "{warning}"
    );
    assert_eq!(fresh.loss_scale(), Some(65536.0));
    assert!(iterate(&mut resumed, &mut opt, &w, 1e-3));
    assert!(iterate(&mut amp, &mut opt, &w, 1e-3));
    assert_eq!(resumed.loss_scale(), Some(65536.0));
    assert_eq!(amp.loss_scale(), Some(65536.0));
    assert!(
        MixedPrecision::with_growth_interval(Precision::Bf16, false, Device::Cpu, 3)
            .state_tensors("amp.")
            .is_empty()
    );
}

#[test]
fn channels_last_changes_the_layout_and_not_the_numbers() {
    let (vs, conv) = conv_store();
    let x = Tensor::rand([2, 2, 7, 5], (Kind::Float, Device::Cpu));
    let nchw = conv.forward(&x);

    let amp = MixedPrecision::with_growth_interval(Precision::Fp32, true, Device::Cpu, 2000);
    amp.prepare(&vs);
    let weight = &vs.variables()["conv.weight"];
    assert!(is_channels_last(weight), "strides {:?}", weight.stride());
    assert!(
        is_channels_last(&conv.ws),
        "the layer's own handle kept NCHW"
    );
    assert_eq!(weight.size(), [4, 2, 3, 3]);
    let input = amp.input(&x);
    assert!(is_channels_last(&input) && !is_channels_last(&x));
    let nhwc = conv.forward(&input);
    let diff = f64::try_from((nhwc - nchw).abs().max()).unwrap();
    assert!(diff < 1e-5, "outputs differ by {diff}");
}
