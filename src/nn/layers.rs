//! Small building blocks with PyTorch's defaults (tch differs in places).

use tch::{Tensor, nn};

/// BatchNorm2d initialised as PyTorch does (weight 1, bias 0); tch's default
/// draws the weight uniformly from [0, 1].
pub fn batch_norm2d(p: nn::Path, channels: i64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        ..Default::default()
    };
    nn::batch_norm2d(p, channels, cfg)
}

/// PyTorch's default initialisation for Linear and Conv layers: weight and
/// bias uniform in +-1/sqrt(fan_in) (`kaiming_uniform_(a=sqrt(5))`). tch's
/// default draws weights sqrt(6) times wider.
fn torch_default_init(fan_in: i64) -> nn::Init {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    nn::Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// A 3x3 convolution with padding 1 and the given stride, PyTorch-initialised.
pub fn conv3x3(p: nn::Path, c_in: i64, c_out: i64, stride: i64, bias: bool) -> nn::Conv2D {
    let init = torch_default_init(c_in * 9);
    let cfg = nn::ConvConfig {
        stride,
        padding: 1,
        bias,
        ws_init: init,
        bs_init: init,
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, 3, cfg)
}

/// A fully connected layer without bias (before a BatchNorm), PyTorch-initialised.
pub fn linear_no_bias(p: nn::Path, c_in: i64, c_out: i64) -> nn::Linear {
    let cfg = nn::LinearConfig {
        ws_init: torch_default_init(c_in),
        bs_init: None,
        bias: false,
    };
    nn::linear(p, c_in, c_out, cfg)
}

/// A fully connected layer, PyTorch-initialised.
pub fn linear(p: nn::Path, c_in: i64, c_out: i64) -> nn::Linear {
    let init = torch_default_init(c_in);
    let cfg = nn::LinearConfig {
        ws_init: init,
        bs_init: Some(init),
        bias: true,
    };
    nn::linear(p, c_in, c_out, cfg)
}

/// LeakyReLU with negative slope 0.2 (the DCGAN/ACGAN choice).
pub fn leaky_relu_02(x: &Tensor) -> Tensor {
    x.maximum(&(x * 0.2))
}

/// Spatial size after a 3x3, padding-1 convolution with stride 2.
pub fn stride2_size(n: i64) -> i64 {
    (n - 1) / 2 + 1
}

/// A 1x1 convolution, PyTorch-initialised.
pub fn conv1x1(p: nn::Path, c_in: i64, c_out: i64, bias: bool) -> nn::Conv2D {
    let init = torch_default_init(c_in);
    let cfg = nn::ConvConfig {
        bias,
        ws_init: init,
        bs_init: init,
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, 1, cfg)
}

/// PReLU with one learned slope starting at 0.25 (PyTorch's default; tch has
/// no PReLU module). Its variable is `weight`, shape `[1]`.
#[derive(Debug)]
pub struct PRelu {
    weight: Tensor,
}

pub fn prelu(p: nn::Path) -> PRelu {
    PRelu {
        weight: p.var("weight", &[1], nn::Init::Const(0.25)),
    }
}

impl PRelu {
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.prelu(&self.weight)
    }
}

/// A general 2-D convolution as torchvision's backbones build them:
/// Kaiming-normal weights (fan out, ReLU gain), zero bias.
pub fn conv2d(p: nn::Path, c_in: i64, c_out: i64, kernel: i64, spec: ConvSpec) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        stride: spec.stride,
        padding: spec.padding,
        groups: spec.groups,
        bias: spec.bias,
        ws_init: nn::Init::Kaiming {
            dist: nn::init::NormalOrUniform::Normal,
            fan: nn::init::FanInOut::FanOut,
            non_linearity: nn::init::NonLinearity::ReLU,
        },
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, kernel, cfg)
}

/// Stride, padding, groups and bias of a [`conv2d`].
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    pub stride: i64,
    pub padding: i64,
    pub groups: i64,
    pub bias: bool,
}

impl ConvSpec {
    /// Stride 1, no padding, one group, no bias.
    pub const PLAIN: ConvSpec = ConvSpec {
        stride: 1,
        padding: 0,
        groups: 1,
        bias: false,
    };

    pub fn stride(self, stride: i64) -> Self {
        Self { stride, ..self }
    }
    pub fn padding(self, padding: i64) -> Self {
        Self { padding, ..self }
    }
    pub fn groups(self, groups: i64) -> Self {
        Self { groups, ..self }
    }
    pub fn bias(self, bias: bool) -> Self {
        Self { bias, ..self }
    }
}
