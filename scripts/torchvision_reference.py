"""Reference outputs of torchvision backbones for tests/torchvision_equivalence.rs.

    .venv/bin/python scripts/torchvision_reference.py OUT_DIR

For each backbone: a randomly initialised torchvision model with randomised
BatchNorm statistics, in eval mode, its state dict saved the way torchvision
checkpoints are saved (`torch.save` of the OrderedDict, BatchNorm's
num_batches_tracked included; DenseNet's in the legacy pre-1.6 file format
with the legacy `norm.1` key names its published checkpoint has), and one
non-square input with torchvision's logits for it, as safetensors. `make
test` runs this.
"""
import pathlib
import re
import sys
from collections import OrderedDict

import torch
import torchvision
from safetensors.torch import save_file

ARCHS = [
    "resnet34",
    "resnext50_32x4d",
    "densenet121",
    "vgg16",
    "mobilenet_v3_large",
    "inception_v3",
    "efficientnet_b0",
]


def legacy_densenet_key(key: str) -> str:
    return re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", key)


def grad_cam_reference(model) -> dict:
    """Grad-CAM at layer4 for a grayscale input, predicted classes."""
    gray = torch.rand(2, 1, 96, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (gray.repeat(1, 3, 1, 1) - mean) / std
    acts = {}
    hook = model.layer4.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o))
    logits = model(x)
    hook.remove()
    score = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
    (grad,) = torch.autograd.grad(score, acts["a"])
    alpha = grad.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((alpha * acts["a"]).sum(1, keepdim=True)).detach()
    cam = torch.nn.functional.interpolate(cam, size=gray.shape[2:], mode="bilinear", align_corners=False)
    flat = cam.flatten(1)
    lo = flat.min(1).values.view(-1, 1, 1, 1)
    hi = flat.max(1).values.view(-1, 1, 1, 1)
    return {"gray": gray, "cam": ((cam - lo) / (hi - lo).clamp_min(1e-12)).contiguous()}


def main() -> None:
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for arch in ARCHS:
        # Inception: transform_input stays off as for weights=None; the
        # auxiliary head is kept (its keys are part of the checkpoint).
        model = getattr(torchvision.models, arch)(weights=None)
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.2, 0.2)
                    module.running_var.uniform_(0.5, 1.5)
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.uniform_(-0.2, 0.2)
        model.eval()
        x = torch.randn(2, 3, 160, 128)
        with torch.no_grad():
            y = model(x)
        state = model.state_dict()
        if arch == "densenet121":
            state = OrderedDict((legacy_densenet_key(k), v) for k, v in state.items())
            torch.save(state, out / f"{arch}.pth", _use_new_zipfile_serialization=False)
        else:
            torch.save(state, out / f"{arch}.pth")
        io = {"x": x.contiguous(), "y": y.contiguous()}
        if arch == "resnet34":
            io.update(grad_cam_reference(model))
        save_file(io, str(out / f"{arch}.io.safetensors"))
        print(f"{arch}: {sum(p.numel() for p in model.parameters())} parameters, logits {tuple(y.shape)}")
    print(f"torchvision {torchvision.__version__}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
