"""scikit-image yardstick for benches/ssim_timing.rs: the same 1,600 pairs
(16 x 100) of 256x128 images, structural_similarity with gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1 (one pair at a time, as
scikit-image works). Needs scikit-image in .venv."""
import time

import numpy as np
from skimage.metrics import structural_similarity

rng = np.random.default_rng(0)
gen = rng.random((16, 256, 128))
real = rng.random((100, 256, 128))
start = time.perf_counter()
total = 0.0
for g in gen:
    for r in real:
        total += structural_similarity(g, r, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
secs = time.perf_counter() - start
print(f"scikit-image: 1600 pairs at 256x128 in {secs:.3f} s ({1600 / secs:.0f} pairs/s)")
