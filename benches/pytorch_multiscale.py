"""PyTorch eager yardstick for `scintigan bench --arch multiscale`.

    .venv/bin/python benches/pytorch_multiscale.py [--threads 2] [--steps 3]
        [--device cpu|cuda] [--precision fp32|bf16|fp16] [--channels-last]

The same training step as ours: DenseNet121 + VGG16 + ResNeXt50 features,
globally average-pooled and concatenated (3584), one linear layer to 3
classes; grayscale 256x128 input repeated to 3 channels and ImageNet-
normalised; batch 4; cross-entropy; RAdam (betas 0.9, 0.999); random data;
median of the timed steps after one warm-up. Compare with
`scintigan bench --arch multiscale --size 256x128 --batch 4 --steps 3 --device cpu`.
"""
import argparse
import statistics

import torch
import torchvision

from pytorch_timing import StepFormat, add_step_options, time_steps


class MultiScale(torch.nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.densenet = torchvision.models.densenet121(weights=None).features
        self.vgg = torchvision.models.vgg16(weights=None).features
        r = torchvision.models.resnext50_32x4d(weights=None)
        self.resnext = torch.nn.Sequential(*list(r.children())[:-2])
        self.fc = torch.nn.Linear(1024 + 512 + 2048, classes)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x):
        x = (x.repeat(1, 3, 1, 1) - self.mean) / self.std
        pool = lambda t: torch.nn.functional.adaptive_avg_pool2d(t, 1).flatten(1)
        d = pool(torch.relu(self.densenet(x)))
        return self.fc(torch.cat([d, pool(self.vgg(x)), pool(self.resnext(x))], 1))


def main() -> None:
    ap = argparse.ArgumentParser()
    add_step_options(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fmt = StepFormat(args)
    model = fmt.model(MultiScale(3).train())
    opt = torch.optim.RAdam(model.parameters(), lr=1e-4, betas=(0.9, 0.999))
    x = fmt.input(torch.rand(4, 1, 256, 128))
    y = torch.tensor([0, 1, 2, 0], device=fmt.device)

    def step() -> None:
        opt.zero_grad()
        with fmt.autocast():
            loss = torch.nn.functional.cross_entropy(model(x), y)
        fmt.backward(loss)
        fmt.step(opt)
        fmt.update()

    times = time_steps(step, args.steps, fmt.sync)
    params = sum(p.numel() for p in model.parameters())
    print(f"pytorch {torch.__version__} multiscale: {params} parameters, median {statistics.median(times):.4f} s, "
          f"min {min(times):.4f} s per step, {4 / statistics.median(times):.1f} images/s ({fmt.describe(args)})")


if __name__ == "__main__":
    main()
