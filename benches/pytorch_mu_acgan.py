"""PyTorch eager yardstick for `scintigan bench --arch mu-acgan`.

    .venv/bin/python benches/pytorch_mu_acgan.py [--threads 2] [--steps 3] [--layers]
        [--device cpu|cuda] [--precision fp32|bf16|fp16] [--channels-last]

The same networks and training step as ours (src/nn/mu_acgan.rs,
src/nn/blocks.rs, src/nn/attention.rs, src/train/gan.rs) with the bench's
defaults: 256x128 images, batch 2, 3 classes, latent dim 100 (label
embedding 100), base channels 32, one channel per injected noise map, ReLU
inside coordinate attention. One step = G forward, one D update (real and
detached fake judged separately, (BCE + CE on real + BCE + CE on fake) / 2),
one G update (non-saturating BCE + CE on the fake judged again by the updated
D); RAdam lr 2e-4, betas (0.5, 0.999), eps 1e-8, no weight decay, one
optimizer per network; random data already in memory; median of the timed
steps after one warm-up. Compare with
`scintigan bench --arch mu-acgan --size 256x128 --batch 2 --steps 3 --device cpu`
(`--size`, `--batch`, `--base-channels` and `--latent-dim` take other sizes,
as the bench's options of the same names do; the demo's are 128x32, batch
8, base 8, latent 32).

Trainable parameters (`scintigan model summary mu-acgan --size 256x128`,
3 classes) and this script's, equal layer group for layer group:
    generator      23,038,511   (ours 23,038,511)
    discriminator     919,901   (ours    919,901)
    total          23,958,412   (ours 23,958,412)
"""
import argparse
import statistics

import torch
import torch.nn.functional as F
from torch import nn

from pytorch_timing import StepFormat, add_step_options, time_steps

HEIGHT, WIDTH, BATCH, CLASSES = 256, 128, 2, 3
LATENT, BASE, SCALE_CHANNELS = 100, 32, 1
LR, BETAS, EPS, WEIGHT_DECAY = 2e-4, (0.5, 0.999), 1e-8, 0.0


def conv1x1(c_in: int, c_out: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 1, bias=bias)


class CoordAttention(nn.Module):
    """attention.rs: mean over W and over H, shared 1x1 squeeze to
    max(8, C / 32) (no bias) + BN + ReLU, two 1x1 expansions + sigmoid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mip = max(8, channels // 32)
        self.conv1 = conv1x1(channels, mip, False)
        self.bn1 = nn.BatchNorm2d(mip)
        self.conv_h = conv1x1(mip, channels, True)
        self.conv_w = conv1x1(mip, channels, True)

    def forward(self, x):
        h, w = x.shape[2], x.shape[3]
        z_h = x.mean(3, keepdim=True)  # [B, C, H, 1]
        z_w = x.mean(2, keepdim=True).permute(0, 1, 3, 2)  # [B, C, W, 1]
        y = torch.relu(self.bn1(self.conv1(torch.cat([z_h, z_w], 2))))
        y_h, y_w = torch.split(y, [h, w], 2)
        a_h = torch.sigmoid(self.conv_h(y_h))
        a_w = torch.sigmoid(self.conv_w(y_w.permute(0, 1, 3, 2)))
        return x * a_h * a_w


class Rda(nn.Module):
    """blocks.rs `Rda`: three 3x3 conv (no bias) + BN + PReLU stages; after
    stage i, cat(input, s1..si) -> 1x1 `fuse{i}` (bias) feeds the next stage;
    CA on fuse3's output plus the input (1x1 `proj` when widths differ)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        for i in range(1, 4):
            stage_in = c_in if i == 1 else c_out
            setattr(self, f"conv{i}", nn.Conv2d(stage_in, c_out, 3, padding=1, bias=False))
            setattr(self, f"bn{i}", nn.BatchNorm2d(c_out))
            setattr(self, f"prelu{i}", nn.PReLU())
            setattr(self, f"fuse{i}", conv1x1(c_in + i * c_out, c_out, True))
        self.ca = CoordAttention(c_out)
        self.proj = conv1x1(c_in, c_out, True) if c_in != c_out else None

    def forward(self, x):
        features = [x]
        stage_in = x
        for i in range(1, 4):
            conv, bn, act, fuse = (getattr(self, f"{n}{i}") for n in ("conv", "bn", "prelu", "fuse"))
            features.append(act(bn(conv(stage_in))))
            stage_in = fuse(torch.cat(features, 1))
        residual = x if self.proj is None else self.proj(x)
        return self.ca(stage_in) + residual


class Rcag(nn.Module):
    """blocks.rs `Rcag`: x_c = cat(high, low); PReLU(BN(conv1x1(x_c + CA(x_c))))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.ca = CoordAttention(2 * channels)
        self.conv = conv1x1(2 * channels, channels, False)
        self.bn = nn.BatchNorm2d(channels)
        self.prelu = nn.PReLU()

    def forward(self, high, low):
        x_c = torch.cat([high, low], 1)
        return self.prelu(self.bn(self.conv(x_c + self.ca(x_c))))


class Generator(nn.Module):
    """mu_acgan.rs `MuAcganGenerator`; attribute names are our var-store paths."""

    def __init__(self) -> None:
        super().__init__()
        w = [BASE, 2 * BASE, 4 * BASE, 8 * BASE, 16 * BASE]
        k = SCALE_CHANNELS
        self.scales = [(HEIGHT >> i, WIDTH >> i) for i in range(4)]
        self.map_sizes = [h * wd * k for h, wd in self.scales]
        self.label_embed = nn.Embedding(CLASSES, LATENT)
        self.fc = nn.Linear(2 * LATENT, sum(self.map_sizes))
        self.enc0 = Rda(k, w[0])
        for i in range(1, 4):
            setattr(self, f"lift{i}", conv1x1(k, w[i - 1], True))
            setattr(self, f"gate_enc{i}", Rcag(w[i - 1]))
            setattr(self, f"enc{i}", Rda(w[i - 1] + k, w[i]))
        self.bottleneck = Rda(w[3], w[4])
        for i in range(4):
            setattr(self, f"reduce{i}", conv1x1(w[i + 1], w[i], True))
            setattr(self, f"gate_dec{i}", Rcag(w[i]))
            setattr(self, f"dec{i}", Rda(w[i], w[i]))
        self.out = conv1x1(w[0], 1, True)

    def forward(self, z, labels):
        v = self.fc(torch.cat([z, self.label_embed(labels)], 1))
        maps = [part.reshape(-1, SCALE_CHANNELS, h, w)
                for part, (h, w) in zip(torch.split(v, self.map_sizes, 1), self.scales)]
        x = self.enc0(maps[0])
        skips = [x]
        for i in range(1, 4):
            pooled = F.max_pool2d(x, 2)
            gated = getattr(self, f"gate_enc{i}")(pooled, getattr(self, f"lift{i}")(maps[i]))
            x = getattr(self, f"enc{i}")(torch.cat([gated, maps[i]], 1))
            skips.append(x)
        x = self.bottleneck(F.max_pool2d(x, 2))
        for i in (3, 2, 1, 0):
            up = F.interpolate(getattr(self, f"reduce{i}")(x), size=self.scales[i],
                               mode="bilinear", align_corners=False)
            x = getattr(self, f"dec{i}")(getattr(self, f"gate_dec{i}")(up, skips[i]))
        return torch.tanh(self.out(x))


class Discriminator(nn.Module):
    """mu_acgan.rs `MuAcganDiscriminator`: RDA 1->b, b->2b, 2b->4b, each then
    2x2 max-pool; flatten; real/fake logit [B] and class logits [B, n]."""

    def __init__(self) -> None:
        super().__init__()
        self.block0 = Rda(1, BASE)
        self.block1 = Rda(BASE, 2 * BASE)
        self.block2 = Rda(2 * BASE, 4 * BASE)
        features = 4 * BASE * (HEIGHT // 8) * (WIDTH // 8)
        self.fc_source = nn.Linear(features, 1)
        self.fc_class = nn.Linear(features, CLASSES)

    def forward(self, x):
        for block in (self.block0, self.block1, self.block2):
            x = F.max_pool2d(block(x), 2)
        x = x.flatten(1)
        return self.fc_source(x).squeeze(1), self.fc_class(x)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def main() -> None:
    # The module's sizes are read when the networks are built.
    global HEIGHT, WIDTH, BATCH, BASE, LATENT
    ap = argparse.ArgumentParser()
    add_step_options(ap)
    ap.add_argument("--layers", action="store_true",
                    help="print parameters per layer group, as `scintigan model summary mu-acgan`")
    ap.add_argument("--size", default=f"{HEIGHT}x{WIDTH}", help="HEIGHTxWIDTH, as `scintigan bench --size`")
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("--base-channels", type=int, default=BASE)
    ap.add_argument("--latent-dim", type=int, default=LATENT)
    args = ap.parse_args()
    HEIGHT, WIDTH = (int(x) for x in args.size.split("x"))
    BATCH, BASE, LATENT = args.batch, args.base_channels, args.latent_dim
    torch.set_num_threads(args.threads)
    fmt = StepFormat(args)
    g, d = fmt.model(Generator().train()), fmt.model(Discriminator().train())
    if args.layers:
        rows = [(f"{p}.{n}", count(m)) for p, net in (("g", g), ("d", d)) for n, m in net.named_children()]
        for name, n in sorted(rows):
            print(f"{name:<16} {n:>12,}")
    opt = dict(lr=LR, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY)
    opt_g = torch.optim.RAdam(g.parameters(), **opt)
    opt_d = torch.optim.RAdam(d.parameters(), **opt)
    # The bench's data: uniform images scaled to [-1, 1], random labels, all in memory.
    dev = fmt.device
    images = (torch.rand(BATCH, 1, HEIGHT, WIDTH) * 2 - 1).to(dev)
    labels = torch.randint(CLASSES, (BATCH,)).to(dev)
    indices = torch.arange(BATCH, device=dev)
    # The per-step statistics our trainer keeps (summed without a sync).
    stats = torch.zeros(5, device=dev)

    def step() -> None:
        real, y = fmt.input(images.index_select(0, indices)), labels.index_select(0, indices)
        z = torch.randn(BATCH, LATENT, device=dev)
        y_fake = torch.randint(CLASSES, (BATCH,), device=dev)
        with fmt.autocast():
            fake = g(z, y_fake)

        # tch's zero_grad zeroes gradients in place (not set to None).
        opt_d.zero_grad(set_to_none=False)
        with fmt.autocast():
            s_real, c_real = d(real)
            s_fake, c_fake = d(fake.detach())
            d_loss = ((F.binary_cross_entropy_with_logits(s_real, torch.ones_like(s_real))
                       + F.cross_entropy(c_real, y))
                      + (F.binary_cross_entropy_with_logits(s_fake, torch.zeros_like(s_fake))
                         + F.cross_entropy(c_fake, y_fake))) / 2
        fmt.backward(d_loss)
        fmt.step(opt_d)

        opt_g.zero_grad(set_to_none=False)
        with fmt.autocast():
            s_gen, c_gen = d(fake)
            g_loss = (F.binary_cross_entropy_with_logits(s_gen, torch.ones_like(s_gen))
                      + F.cross_entropy(c_gen, y_fake))
        fmt.backward(g_loss)
        fmt.step(opt_g)
        fmt.update()

        with torch.no_grad():
            stats.add_(torch.stack([g_loss, d_loss, (s_real > 0).sum().float(),
                                    (s_fake < 0).sum().float(),
                                    (c_real.argmax(1) == y).sum().float()]))

    times = time_steps(step, args.steps, fmt.sync)
    if not torch.isfinite(stats).all():
        raise SystemExit(f"non-finite losses: {stats.tolist()}")
    median = statistics.median(times)
    print(f"pytorch {torch.__version__} mu-acgan {HEIGHT}x{WIDTH} batch {BATCH}: "
          f"G {count(g)} + D {count(d)} = {count(g) + count(d)} parameters, "
          f"median {median:.4f} s, min {min(times):.4f} s per step, "
          f"{BATCH / median:.1f} images/s ({fmt.describe(args)})")


if __name__ == "__main__":
    main()
