"""Scaling fits against synthetic curves with a known σ and κ."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from analysis import load_runs
from analysis.scaling import (
    FitRefused,
    expected_imbalance,
    fit_scaling,
    fits_table,
    knee_replicas,
    max_worth_replicas,
    modelled_efficiency,
    peak_replicas,
    scaling_fits,
    throughput_table,
)
from analysis.synthetic import DEMO_VENDORS, SyntheticSpec, usl
from tests.analysis_runs import write_spec

REPLICAS = np.array([1, 2, 3, 4, 6, 8, 12, 16])


def curve(
    lam: float, sigma: float, kappa: float, *, repeats: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    r = np.repeat(REPLICAS, repeats)
    x = np.array([usl(v, lam, sigma, kappa) for v in r]) * np.exp(rng.normal(0, noise, r.size))
    return r, x


def inside(interval: tuple[float, float], value: float) -> bool:
    return interval[0] <= value <= interval[1]


def test_usl_recovers_sigma_and_kappa_within_their_intervals() -> None:
    r, x = curve(10e6, 0.05, 0.002, repeats=4, noise=0.02, seed=11)
    fit = fit_scaling(r, x, "usl", bootstrap_samples=1000, seed=1)
    assert fit.trustworthy, fit.reasons
    assert fit.bootstrap_method == "stratified case resampling"
    assert inside(fit.ci["sigma"], 0.05)
    assert inside(fit.ci["kappa"], 0.002)
    assert inside(fit.ci["lambda_pps"], 10e6)
    true_peak = math.sqrt((1 - 0.05) / 0.002)
    assert inside(fit.ci["peak_replicas"], true_peak)
    # the intervals are informative, not merely wide
    assert fit.ci["sigma"][1] - fit.ci["sigma"][0] < 0.05
    assert fit.r_squared > 0.99


def test_interval_coverage_over_many_curves_is_near_nominal() -> None:
    hits_sigma = hits_kappa = 0
    trials = 30
    for seed in range(trials):
        r, x = curve(8e6, 0.08, 0.004, repeats=3, noise=0.03, seed=100 + seed)
        fit = fit_scaling(r, x, "usl", bootstrap_samples=400, seed=seed)
        hits_sigma += inside(fit.ci["sigma"], 0.08)
        hits_kappa += inside(fit.ci["kappa"], 0.004)
    # 95 % intervals: fewer than 80 % hits in 30 curves would be a broken bootstrap
    assert hits_sigma / trials >= 0.8
    assert hits_kappa / trials >= 0.8


def test_single_measurements_use_the_residual_bootstrap_and_still_cover() -> None:
    hits = 0
    trials = 30
    for seed in range(trials):
        r, x = curve(5e6, 0.1, 0.01, repeats=1, noise=0.01, seed=200 + seed)
        fit = fit_scaling(r, x, "usl", bootstrap_samples=400, seed=seed)
        assert fit.bootstrap_method == "residual resampling"
        hits += inside(fit.ci["sigma"], 0.1) and inside(fit.ci["kappa"], 0.01)
    assert hits / trials >= 0.75  # both parameters of a 95 % interval at once


def test_amdahl_recovers_sigma_when_there_is_no_crosstalk() -> None:
    r, x = curve(6e6, 0.12, 0.0, repeats=3, noise=0.015, seed=3)
    amdahl = fit_scaling(r, x, "amdahl", bootstrap_samples=800, seed=3)
    assert inside(amdahl.ci["sigma"], 0.12)
    assert amdahl.kappa == 0.0
    assert math.isinf(amdahl.peak_replicas)
    usl_fit = fit_scaling(r, x, "usl", bootstrap_samples=800, seed=3)
    assert usl_fit.ci["kappa"][0] == pytest.approx(0.0, abs=1e-6)


def test_amdahl_fits_a_usl_curve_worse_than_the_usl() -> None:
    r, x = curve(10e6, 0.03, 0.004, repeats=3, noise=0.01, seed=8)
    usl_fit = fit_scaling(r, x, "usl", bootstrap_samples=200)
    amdahl = fit_scaling(r, x, "amdahl", bootstrap_samples=200)
    assert usl_fit.aic < amdahl.aic - 10
    assert not amdahl.trustworthy  # the retrograde part is not described


def test_a_fit_on_two_points_is_refused() -> None:
    with pytest.raises(FitRefused, match="2 replica count"):
        fit_scaling([1, 2], [5e6, 9e6], "usl")
    with pytest.raises(FitRefused, match="at least 3"):
        fit_scaling([1, 1, 2, 2], [5e6, 5.1e6, 9e6, 9.2e6], "amdahl")


def test_three_points_fit_usl_exactly_and_are_not_trustworthy() -> None:
    fit = fit_scaling([1, 2, 4], [5e6, 9e6, 15e6], "usl", bootstrap_samples=100)
    assert not fit.trustworthy
    assert any("no degree of freedom" in reason for reason in fit.reasons)
    assert fit_scaling([1, 2, 4], [5e6, 9e6, 15e6], "amdahl", bootstrap_samples=100).dof == 1


def test_nic_ceiling_makes_the_fit_untrustworthy_and_excludes_the_capped_points() -> None:
    r, x = curve(10e6, 0.02, 0.001, repeats=2, noise=0.005, seed=4)
    line = 60e6
    capped = np.minimum(x, line)
    fit = fit_scaling(r, capped, "usl", line_rate_pps=line, bootstrap_samples=200)
    assert not fit.trustworthy
    assert fit.excluded_replicas == (8, 12, 16)
    assert any("NIC ceiling" in reason for reason in fit.reasons)
    assert fit.advice
    with pytest.raises(FitRefused, match="below the NIC ceiling"):
        fit_scaling(r, np.minimum(x, 18e6), "usl", line_rate_pps=18e6)


def test_too_few_flows_for_the_replicas_is_stated() -> None:
    r, x = curve(10e6, 0.05, 0.002, repeats=2, noise=0.01, seed=6)
    fit = fit_scaling(r, x, "usl", flows=64, bootstrap_samples=200)
    assert not fit.trustworthy
    assert any("flows too few" in reason for reason in fit.reasons)
    assert fit_scaling(r, x, "usl", flows=100_000, bootstrap_samples=200).trustworthy
    assert expected_imbalance(10, 16) == math.inf
    assert expected_imbalance(1_000_000, 4) < 1.01


def test_derived_quantities_match_their_formulas() -> None:
    assert peak_replicas(0.05, 0.002) == pytest.approx(math.sqrt(0.95 / 0.002))
    assert math.isinf(peak_replicas(0.1, 0.0))
    assert math.isinf(peak_replicas(0.03, 4e-19))  # kappa left at the bound by the solver
    eff = modelled_efficiency(np.array([1.0, 4.0]), 0.1, 0.01)
    assert eff[0] == 1.0
    assert eff[1] == pytest.approx(1 / (1 + 0.3 + 0.12))
    # E(R) = 1/(1 + 0.1(R-1)) falls below 0.7 once R - 1 > 4.28, so at R = 6
    assert knee_replicas(0.1, 0.0, 0.7) == 6
    # with κ > 0 the R-th replica adds X(R) - X(R-1); brute force agrees
    lam, sigma, kappa = 1.0, 0.05, 0.002
    gains = [usl(r, lam, sigma, kappa) - usl(r - 1, lam, sigma, kappa) for r in range(2, 200)]
    expected = max(r for r, g in zip(range(2, 200), gains, strict=True) if g >= 0.5)
    assert max_worth_replicas(lam, sigma, kappa, 0.5) == expected
    assert expected < peak_replicas(sigma, kappa)


def test_fits_over_a_stored_run_recover_the_vendor_ground_truth(tmp_path: Path) -> None:
    vendor = DEMO_VENDORS[1]  # σ = 0.06, κ = 0.004
    spec = SyntheticSpec(vendor, replicas=(1, 2, 3, 4, 6, 8, 12), frame_sizes=("64",), seed=3)
    run_dir = write_spec(tmp_path, spec)
    runs = load_runs(run_dir)
    table = throughput_table(runs)
    one = table[table["replicas"] == 1]["ndr_pps"].iloc[0]
    assert one == pytest.approx(vendor.capacity_pps(1, "64"), rel=0.03)
    four = table[table["replicas"] == 4].iloc[0]
    assert four["efficiency_ndr"] == pytest.approx(four["ndr_pps"] / (4 * one))
    assert (table["n"] == spec.repeats).all()

    verdicts = scaling_fits(runs, models=("usl",), bootstrap_samples=600)
    (verdict,) = verdicts
    assert verdict.fit is not None and verdict.fit.trustworthy, verdict.reasons
    assert inside(verdict.fit.ci["sigma"], vendor.sigma)
    assert inside(verdict.fit.ci["kappa"], vendor.kappa)
    frame = fits_table(verdicts)
    assert frame.loc[0, "verdict"] == "trustworthy"
    assert frame.loc[0, "sigma_lo"] <= vendor.sigma <= frame.loc[0, "sigma_hi"]


def test_run_with_too_few_replica_counts_gets_a_refused_verdict(tmp_path: Path) -> None:
    spec = SyntheticSpec(DEMO_VENDORS[2], replicas=(1, 2), frame_sizes=("64",), repeats=1)
    runs = load_runs(write_spec(tmp_path, spec))
    verdicts = scaling_fits(runs, bootstrap_samples=50)
    assert {v.verdict for v in verdicts} == {"refused"}
    assert all("at least 3" in v.reasons[0] for v in verdicts)
    table = fits_table(verdicts)
    assert "sigma" not in table.columns


def test_fitting_curves_together_gives_each_curve_its_own_result(tmp_path: Path) -> None:
    for vendor in DEMO_VENDORS:
        write_spec(tmp_path, SyntheticSpec(vendor, replicas=(1, 2, 3, 4, 6), seed=5))
    runs = load_runs(tmp_path)
    together = scaling_fits(runs, bootstrap_samples=300)
    assert len(together) == 3 * 2 * 2  # runs × frame sizes × models
    (one_run,) = [r for r in runs.manifests if "cgnat" in r]
    alone = scaling_fits(runs, run_id=one_run, bootstrap_samples=300)
    for verdict in alone:
        twin = next(
            t
            for t in together
            if (t.run_id, t.frame_size, t.model)
            == (verdict.run_id, verdict.frame_size, verdict.model)
        )
        assert twin.verdict == verdict.verdict
        if verdict.fit is not None and twin.fit is not None:
            assert np.allclose(twin.fit.bootstrap_params, verdict.fit.bootstrap_params, rtol=1e-9)
            assert twin.fit.ci == pytest.approx(verdict.fit.ci, rel=1e-9)
