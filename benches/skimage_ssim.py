"""scikit-image yardstick for benches/ssim_timing.rs: the same pairs at
256x128 with the same protocol, one pair at a time as scikit-image works:
each first image given the second's mean and standard deviation, then
structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1). 1,600 generated-vs-real pairs
(16 x 100) and the 240 ordered pairs among the 16. Needs scikit-image."""
import itertools
import time

import numpy as np
from skimage.metrics import structural_similarity


def score(g, r):
    m = (g - g.mean()) / g.std() * r.std() + r.mean()
    return structural_similarity(m, r, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=1.0)


rng = np.random.default_rng(0)
gen = rng.random((16, 256, 128))
real = rng.random((100, 256, 128))
start = time.perf_counter()
cross = np.mean([score(g, r) for g in gen for r in real])
cross_secs = time.perf_counter() - start
start = time.perf_counter()
within = np.mean([score(gen[i], gen[j]) for i, j in itertools.permutations(range(16), 2)])
within_secs = time.perf_counter() - start
print(f"scikit-image: 1600 generated-vs-real pairs at 256x128 in {cross_secs:.3f} s "
      f"({1600 / cross_secs:.0f} pairs/s); 240 diversity pairs in {within_secs:.3f} s "
      f"({240 / within_secs:.0f} pairs/s)")
