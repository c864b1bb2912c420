"""Analysis at scale: 100 runs of 10 000 trials each, loaded, fitted, and a comparison annex.

The runs are synthetic (three demo vendors, many seeds; `analysis.synthetic`) and are
journaled and compacted through the real results store once, into a cache directory
reused by later invocations (writing a million fsynced trial records takes minutes and
is not what is measured here).  Generation runs in worker processes, so the peak
resident memory reported is that of the analysis alone.

Measured, each in this process:

1. ``load_runs`` of the 100 run directories (Parquet tables, journals for the rest);
2. ``scaling_fits`` of every curve (USL and Amdahl of NDR, 1000 bootstrap resamples
   each) and the comparison frame;
3. ``render_annex`` of the comparison: loading, deriving (fits, latency from HDR
   histograms, stability flags, comparison), figures, HTML, PDF and summary;
4. ``verify_annex`` of it.

Targets: step 3 (the end-to-end "load, fit, render") under 30 s; peak RSS under 2 GB.
Wall and CPU time are both printed: on a shared machine the wall time includes waiting
for the CPU; the verdict uses the wall time.

Run: ``python benchmarks/analysis.py [--runs N] [--trials N] [--cache DIR]``.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis import load_runs
from analysis.annex import AnnexParameters, render_annex, verify_annex
from analysis.compare import comparison_frame
from analysis.scaling import scaling_fits
from analysis.synthetic import DEMO_VENDORS, SyntheticSpec, synthetic_run, write_run
from bench.store import RunStore

TARGET_S = 30.0
TARGET_RSS_BYTES = 2 * 1024**3
REPLICAS = (1, 2, 3, 4, 6, 8)
FRAME_SIZES = ("64", "IMIX")
REPEATS = 5
LATENCY_LOADS = 4


def spec_for(index: int, trials: int) -> SyntheticSpec:
    points = len(REPLICAS) * len(FRAME_SIZES)
    per_search = max(8, round((trials - points * LATENCY_LOADS) / (points * REPEATS)))
    vendor = DEMO_VENDORS[index % len(DEMO_VENDORS)]
    return SyntheticSpec(
        vendor,
        replicas=REPLICAS,
        frame_sizes=FRAME_SIZES,
        repeats=REPEATS,
        trials_per_search=per_search,
        latency_samples=1000,
        seed=index,
        run_id=f"bench-{index:03d}-{vendor.cnf}",
        started_at=1.8e9 + index,
    )


def _write_one(args: tuple[Path, int, int]) -> Path:
    root, index, trials = args
    target = root / spec_for(index, trials).run_id
    if (target / "points.parquet").is_file():
        return target
    if target.exists():  # left over from an interrupted generation
        shutil.rmtree(target)
    return write_run(synthetic_run(spec_for(index, trials)), root, RunStore.create)


def ensure_runs(root: Path, runs: int, trials: int) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    jobs = [(root, i, trials) for i in range(runs)]
    with ProcessPoolExecutor(max_workers=2) as pool:
        dirs = list(pool.map(_write_one, jobs))
    print(f"runs ready in {root} ({time.perf_counter() - started:.1f} s, cached after)")
    return dirs


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "cnfbench-analysis-bench"
    )
    args = parser.parse_args()

    root = args.cache / f"runs{args.runs}-trials{args.trials}-v1"
    dirs = ensure_runs(root, args.runs, args.trials)

    t0, c0 = time.perf_counter(), time.process_time()
    runs = load_runs(dirs)
    t_load, c_load = time.perf_counter() - t0, time.process_time() - c0
    print(f"load_runs: {len(runs.manifests)} runs, {len(runs.trials):,} trials, "
          f"{len(runs.points):,} point records: {t_load:.2f} s (CPU {c_load:.2f} s)")  # fmt: skip

    t0, c0 = time.perf_counter(), time.process_time()
    verdicts = scaling_fits(runs, goals=("ndr",))
    frame = comparison_frame(runs)
    t_fit, c_fit = time.perf_counter() - t0, time.process_time() - c0
    trusted = sum(v.verdict == "trustworthy" for v in verdicts)
    print(f"scaling_fits + comparison: {len(verdicts)} fits ({trusted} trustworthy), "
          f"{len(frame):,} comparison rows in {t_fit:.2f} s (CPU {c_fit:.2f} s)")  # fmt: skip
    del runs, verdicts, frame

    out = args.cache / "comparison-annex"
    t0, c0 = time.perf_counter(), time.process_time()
    annex = render_annex(dirs, out, AnnexParameters())
    t_annex, c_annex = time.perf_counter() - t0, time.process_time() - c0
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    hashed = len(annex.summary["data_files"])
    print(f"render_annex (load, fit, derive, figures, HTML, PDF; {hashed} data files hashed, "
          f"{size / 1e6:.1f} MB): {t_annex:.2f} s (CPU {c_annex:.2f} s)")  # fmt: skip

    t0, c0 = time.perf_counter(), time.process_time()
    verify_annex(out)
    t_verify, c_verify = time.perf_counter() - t0, time.process_time() - c0
    print(f"verify_annex: {t_verify:.2f} s (CPU {c_verify:.2f} s)")

    rss = peak_rss_bytes()
    print(f"peak RSS: {rss / 1024**2:.0f} MiB")
    print(
        f"time ratio to target: {t_annex / TARGET_S:.2f} "
        f"(render_annex {t_annex:.1f} s / {TARGET_S:.0f} s)"
    )
    print(
        f"memory ratio to target: {rss / TARGET_RSS_BYTES:.2f} ({rss / 1024**3:.2f} GiB / 2 GiB)"
    )
    ok = t_annex < TARGET_S and rss < TARGET_RSS_BYTES
    print("targets met" if ok else "targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
