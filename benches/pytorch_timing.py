"""What the PyTorch yardsticks (benches/pytorch_*.py) share: the options
that match `scintigan bench --device --precision --channels-last`, what
they do around a training step, and the step timing (one warm-up step,
then `steps` timed ones, as `scintigan bench` times ours)."""
import argparse
import contextlib
import time

import torch


def add_step_options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                    help="autocast type, as train.precision (fp16 with a GradScaler)")
    ap.add_argument("--channels-last", action="store_true",
                    help="NHWC weights and inputs, as train.channels_last")


class StepFormat:
    """Device, autocast, gradient scaling and memory format of a step, as
    scintigan's `MixedPrecision` applies them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.device = torch.device(args.device)
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision)
        self.channels_last = args.channels_last
        self.scaler = torch.amp.GradScaler(self.device.type) if args.precision == "fp16" else None

    def model(self, module: torch.nn.Module) -> torch.nn.Module:
        module = module.to(self.device)
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def input(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def step(self, opt: torch.optim.Optimizer) -> None:
        if self.scaler:
            self.scaler.step(opt)
        else:
            opt.step()

    def update(self) -> None:
        if self.scaler:
            self.scaler.update()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def describe(self, args: argparse.Namespace) -> str:
        layout = ", channels-last" if self.channels_last else ""
        return f"{self.device}, {args.precision}{layout}, {args.threads} threads"


def time_steps(step, steps: int, sync=lambda: None) -> list:
    """Seconds of each of `steps` calls of `step` after one warm-up call;
    `sync` waits for queued device work (CUDA) before a clock is read."""
    step()
    sync()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return times
