"""Step timing shared by the PyTorch yardsticks (benches/pytorch_*.py): one
warm-up step, then `steps` timed ones, as `scintigan bench` times ours."""
import time


def time_steps(step, steps: int) -> list:
    """Seconds of each of `steps` calls of `step` after one warm-up call."""
    step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times
