"""Speed of the panel statistics (annotation/agreement.py) on 4 million votes.

100,000 clips × 40 experts of a simulated panel (modeling.synthetic.simulate_panel,
synthetic): ordinal Krippendorff's α, α with a 1,000-resample bootstrap interval,
and the ``krippendorff`` package on the same votes (value counts) in the same run,
with the largest difference between the two. One core: BLAS threads are pinned to
one before numpy loads. Not a test; prints one JSON object on its last line.

    .venv/bin/python benchmarks/agreement.py [--clips 100000] [--experts 40]
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotation import agreement  # noqa: E402
from modeling.synthetic import patient_qualities, simulate_panel  # noqa: E402


def _timed(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=100_000)
    parser.add_argument("--experts", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import krippendorff

    rng = np.random.default_rng(0)
    qualities, _ = patient_qualities(n_clips=args.clips, n_patients=1000, rng=rng)
    panel = simulate_panel(qualities=qualities, n_experts=args.experts, rng=rng)
    items = np.repeat(np.arange(args.clips), args.experts)
    raters = np.tile(np.arange(args.experts), args.clips)
    values = panel.votes.reshape(-1).astype(np.int64) + 1
    print(f"{len(values):,} votes on {args.clips:,} clips by {args.experts} experts")
    alpha_s, alpha = _timed(
        lambda: agreement.krippendorff_alpha(items, raters, values), args.repeats
    )
    ci_s, ci = _timed(
        lambda: agreement.krippendorff_alpha_ci(items, raters, values, n_boot=1000),
        args.repeats,
    )
    # The package's usual input: the raters × units matrix (NaN = no vote).
    reliability = panel.votes.T.astype(np.float64) + 1
    package_s, reference = _timed(
        lambda: krippendorff.alpha(
            reliability_data=reliability, level_of_measurement="ordinal"
        ),
        args.repeats,
    )
    counts, _ = agreement.unit_value_counts(items, values)
    counts_s, from_counts = _timed(
        lambda: krippendorff.alpha(value_counts=counts, level_of_measurement="ordinal"),
        args.repeats,
    )
    print(f"machine: {platform.processor() or platform.machine()}, one core")
    print(f"ordinal alpha {alpha:.6f} in {alpha_s:.3f} s")
    print(f"with 1,000-resample CI [{ci[1]:.4f}, {ci[2]:.4f}] in {ci_s:.3f} s")
    print(f"krippendorff package {reference:.6f} in {package_s:.3f} s (raters × units)")
    print(f"  from precomputed value counts {from_counts:.6f} in {counts_s:.3f} s")
    print(
        json.dumps(
            {
                "alpha_ordinal_4m_s": round(alpha_s, 3),
                "alpha_ci_1000_4m_s": round(ci_s, 3),
                "krippendorff_pkg_4m_s": round(package_s, 3),
                "max_abs_diff": float(
                    max(abs(alpha - reference), abs(alpha - from_counts))
                ),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
