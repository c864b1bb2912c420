"""Scaling of throughput with replicas: efficiency, USL and Amdahl fits, and verdicts.

Throughput X(R) at R replicas is the conditional throughput of a goal (NDR or PDR) at
one point of the sweep.  Scaling efficiency is E(R) = X(R) / (R · X(1)).

Models (N. J. Gunther, *Guerrilla Capacity Planning*, 2007, ch. 4–6):

- Universal Scalability Law: X(R) = λR / (1 + σ(R−1) + κR(R−1)), serial fraction σ,
  crosstalk κ; throughput peaks at R* = √((1 − σ)/κ).
- Amdahl's law: X(R) = λR / (1 + σ(R−1)), the USL with κ = 0; no peak.

Point estimates come from `scipy.optimize.least_squares` with the bounds λ > 0,
0 ≤ σ ≤ 1, κ ≥ 0.  Confidence intervals come from a bootstrap over repeated
measurements: when every replica count was measured at least twice, the measurements
are resampled within each replica count (stratified case resampling); otherwise the
relative residuals of the fit are resampled (residual bootstrap, Efron & Tibshirani,
*An Introduction to the Bootstrap*, 1993, §9.5).  The bootstrap refits are solved all
at once by a vectorised Levenberg–Marquardt iteration started from the point estimate.

A fit is refused outright on fewer than three replica counts, and reported as not
trustworthy, with the reason and what to try, when the NIC's line rate caps a point,
when too few flows spread over the replicas, when the model does not describe the data,
or when its parameters are left undetermined.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.optimize import least_squares

from analysis.errors import AnalysisError
from analysis.loader import RunSet

log = logging.getLogger(__name__)

Model = Literal["usl", "amdahl"]
FloatArray = NDArray[np.float64]

GROUP_KEYS = ("run_id", "frame_size", "flows", "direction")
MIN_REPLICA_COUNTS = 3
CEILING_FRACTION = 0.97  # a point at ≥ 97 % of line rate measured the NIC, not the CNF
MAX_IMBALANCE = 1.2  # most-loaded replica ≥ 20 % above the mean: flows too few
MIN_R_SQUARED = 0.9
MAX_RELATIVE_RESIDUAL = 0.10
MAX_SIGMA_CI_WIDTH = 0.5
SEARCH_LIMIT_REPLICAS = 4096


class FitRefused(AnalysisError):
    """The data cannot support a fit at all (e.g. two replica counts for two parameters)."""


@dataclass(frozen=True)
class ScalingFit:
    """A fitted scaling model with its uncertainty and the verdict on trusting it."""

    model: Model
    lambda_pps: float
    sigma: float
    kappa: float
    ci: dict[str, tuple[float, float]]  # lambda_pps, sigma, kappa, peak_replicas
    confidence: float
    r_squared: float
    rmse_pps: float
    aic: float
    dof: int
    replica_counts: tuple[int, ...]
    n_samples: int
    bootstrap_method: str
    bootstrap_params: FloatArray = field(repr=False)  # (B, 3): λ, σ, κ
    peak_replicas: float  # R* = √((1 − σ)/κ); inf when κ = 0
    knee_replicas: int | None  # smallest R with modelled E(R) below the knee threshold
    max_worth_replicas: int  # largest R whose added replica still adds enough
    knee_efficiency: float
    min_marginal_gain: float
    excluded_replicas: tuple[int, ...] = ()  # points left out of the fit (NIC ceiling)
    reasons: tuple[str, ...] = ()  # why not trustworthy; empty when trustworthy
    advice: tuple[str, ...] = ()

    @property
    def trustworthy(self) -> bool:
        return not self.reasons

    @property
    def verdict(self) -> str:
        return "trustworthy" if self.trustworthy else "not trustworthy"

    def predict_pps(self, replicas: Sequence[float] | FloatArray) -> FloatArray:
        r = np.asarray(replicas, dtype=float)
        params = np.array([[self.lambda_pps, self.sigma, self.kappa]])
        return np.asarray(_model_values(r, params)[0], dtype=float)

    def band_pps(self, replicas: Sequence[float] | FloatArray) -> tuple[FloatArray, FloatArray]:
        """Pointwise bootstrap interval of the fitted curve at `replicas`."""
        r = np.asarray(replicas, dtype=float)
        values = _model_values(r, self.bootstrap_params)
        tail = 50.0 * (1.0 - self.confidence)
        lo, hi = np.percentile(values, [tail, 100.0 - tail], axis=0)
        return np.asarray(lo), np.asarray(hi)


# --- model arithmetic ----------------------------------------------------------------


def _model_values(r: FloatArray, params: FloatArray) -> FloatArray:
    lam, sigma, kappa = params[:, 0:1], params[:, 1:2], params[:, 2:3]
    return np.asarray(lam * r / (1.0 + sigma * (r - 1.0) + kappa * r * (r - 1.0)))


def _model_jacobian(r: FloatArray, params: FloatArray, free_kappa: bool) -> FloatArray:
    lam, sigma, kappa = params[:, 0:1], params[:, 1:2], params[:, 2:3]
    denom = 1.0 + sigma * (r - 1.0) + kappa * r * (r - 1.0)
    d_lam = r / denom
    d_sigma = -lam * r * (r - 1.0) / denom**2
    columns = [d_lam, d_sigma]
    if free_kappa:
        columns.append(-lam * r * r * (r - 1.0) / denom**2)
    return np.asarray(np.stack(columns, axis=-1))


def _clip(params: FloatArray, free_kappa: bool) -> FloatArray:
    out = params.copy()
    out[:, 0] = np.maximum(out[:, 0], 1e-12)
    out[:, 1] = np.clip(out[:, 1], 0.0, 1.0)
    out[:, 2] = np.maximum(out[:, 2], 0.0) if free_kappa else 0.0
    return out


def _batched_lm(
    r: FloatArray,
    y: FloatArray,
    start: FloatArray,
    free_kappa: bool,
    *,
    weights: FloatArray | None = None,
    iterations: int = 30,
) -> FloatArray:
    """Weighted Levenberg–Marquardt for many data sets y (B, N) at once, within the bounds.

    Data sets leave the iteration once their cost stops improving (relative change below
    1e-9 on an accepted step, or a damping so large that no step is taken); after 30
    iterations the few that still crawl along the σ–κ valley are within 1e-3 of their
    optimum, far inside the intervals' width.
    """
    k = 3 if free_kappa else 2
    w = np.ones(r.size) if weights is None else weights
    root_w = np.broadcast_to(np.sqrt(w), y.shape)
    starts = start if start.ndim == 2 else np.repeat(start[None, :], y.shape[0], axis=0)
    params = _clip(starts, free_kappa)
    damping = np.full(y.shape[0], 1e-3)
    cost = np.sum(((y - _model_values(r, params)) * root_w) ** 2, axis=1)
    active = np.arange(y.shape[0])
    eye = np.eye(k)
    for _ in range(iterations):
        if active.size == 0:
            break
        p, ya, mu, rw = params[active], y[active], damping[active], root_w[active]
        jac = _model_jacobian(r, p, free_kappa) * rw[:, :, None]
        resid = (ya - _model_values(r, p)) * rw
        # JᵀJ and Jᵀr by broadcasting: for these tiny matrices a threaded BLAS spends more
        # time waking its threads than multiplying
        jtj = (jac[:, :, :, None] * jac[:, :, None, :]).sum(axis=1)
        jtr = (jac * resid[:, :, None]).sum(axis=1)
        system = jtj + mu[:, None, None] * (jtj * eye + 1e-12 * eye)
        step = np.linalg.solve(system, jtr[:, :, None])[:, :, 0]
        trial = p.copy()
        trial[:, :k] += step
        trial = _clip(trial, free_kappa)
        trial_cost = np.sum(((ya - _model_values(r, trial)) * rw) ** 2, axis=1)
        old_cost = cost[active]
        better = trial_cost < old_cost
        params[active] = np.where(better[:, None], trial, p)
        cost[active] = np.where(better, trial_cost, old_cost)
        damping[active] = np.clip(np.where(better, mu * 0.3, mu * 10.0), 1e-9, 1e9)
        settled = (better & (old_cost - trial_cost <= 1e-9 * old_cost)) | (mu >= 1e9)
        active = active[~settled]
    return params


def _linearised_start(r: FloatArray, y: FloatArray, free_kappa: bool) -> FloatArray:
    """Start values from R/X = (1 + σ(R−1) + κR(R−1))/λ, which is linear in 1/λ, σ/λ, κ/λ."""
    columns = [np.ones_like(r), r - 1.0] + ([r * (r - 1.0)] if free_kappa else [])
    design = np.stack(columns, axis=1)
    coef, *_ = np.linalg.lstsq(design, r / y, rcond=None)
    a = max(float(coef[0]), 1e-12)
    sigma = float(coef[1]) / a
    kappa = float(coef[2]) / a if free_kappa else 0.0
    return np.array([1.0 / a, min(max(sigma, 0.0), 1.0), max(kappa, 0.0)])


def _point_fit(r: FloatArray, y: FloatArray, free_kappa: bool) -> FloatArray:
    start = _linearised_start(r, y, free_kappa)
    k = 3 if free_kappa else 2

    def residuals(p: FloatArray) -> FloatArray:
        full = np.array([[p[0], p[1], p[2] if free_kappa else 0.0]])
        return np.asarray(_model_values(r, full)[0] - y)

    lower = [1e-12, 0.0, 0.0][:k]
    upper = [np.inf, 1.0, np.inf][:k]
    x0 = np.clip(start[:k], lower, [u if np.isfinite(u) else 1e300 for u in upper])
    x0[0] = max(x0[0], 1e-6)
    solved = least_squares(residuals, x0, bounds=(lower, upper), x_scale="jac", method="trf")
    x = np.asarray(solved.x, dtype=float)
    return np.array([x[0], x[1], x[2] if free_kappa else 0.0])


# --- derived quantities --------------------------------------------------------------

# A crosstalk coefficient below this is zero: its peak would lie beyond a million
# replicas even with no contention at all.
KAPPA_ZERO = 1e-12


def peak_replicas(sigma: float, kappa: float) -> float:
    """R* = √((1 − σ)/κ), the replica count of peak throughput under the USL; inf when κ
    is zero (the bounded solver leaves κ at about 1e-17 then, not at 0.0)."""
    if kappa <= KAPPA_ZERO:
        return math.inf
    return math.sqrt(max(1.0 - sigma, 0.0) / kappa)


def modelled_efficiency(replicas: FloatArray, sigma: float, kappa: float) -> FloatArray:
    """E(R) = X(R) / (R · X(1)) = 1 / (1 + σ(R−1) + κR(R−1))."""
    r = np.asarray(replicas, dtype=float)
    return np.asarray(1.0 / (1.0 + sigma * (r - 1.0) + kappa * r * (r - 1.0)))


def knee_replicas(sigma: float, kappa: float, threshold: float) -> int | None:
    r = np.arange(2, SEARCH_LIMIT_REPLICAS + 1, dtype=float)
    below = np.nonzero(modelled_efficiency(r, sigma, kappa) < threshold)[0]
    return int(r[below[0]]) if below.size else None


def max_worth_replicas(lambda_pps: float, sigma: float, kappa: float, min_gain: float) -> int:
    """The largest R whose R-th replica still adds `min_gain` · λ of throughput."""
    r = np.arange(1, SEARCH_LIMIT_REPLICAS + 1, dtype=float)
    x = _model_values(r, np.array([[lambda_pps, sigma, kappa]]))[0]
    gains = np.diff(x) / lambda_pps  # gains[i] is what replica i + 2 adds
    worth = np.nonzero(gains >= min_gain)[0]
    return int(worth[-1] + 2) if worth.size else 1


def expected_imbalance(flows: int, replicas: int) -> float:
    """Most-loaded replica over the mean when `flows` hash uniformly onto `replicas`.

    The balls-into-bins bound for m ≫ n ln n balls in n bins: the fullest bin holds
    about m/n + √(2 (m/n) ln n) (Raab & Steger, RANDOM 1998, Theorem 1).
    """
    if replicas <= 1:
        return 1.0
    if flows < replicas:
        return math.inf
    mean = flows / replicas
    return 1.0 + math.sqrt(2.0 * mean * math.log(replicas)) / mean


# --- the fit -------------------------------------------------------------------------


def _bootstrap_sets(
    r: FloatArray,
    y: FloatArray,
    fitted: FloatArray,
    *,
    k: int,
    samples: int,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray, FloatArray, str]:
    """Bootstrap data sets as (replicas, values (B, n), weights, method).

    Least squares over repeated measurements equals least squares over their means
    weighted by the repeat counts (the within-group sum of squares does not depend on
    the parameters), so case-resampled sets are returned as weighted group means.
    """
    # Resampling n values underestimates the variance of their mean by (n − 1)/n; the
    # deviations are inflated by √(n/(n − 1)) (and by √(N/(N − k)) for residuals, k the
    # parameters) to undo it (Davison & Hinkley, *Bootstrap Methods*, 1997, §2.3, §6.2.3).
    values = np.unique(r)
    groups = [np.nonzero(r == value)[0] for value in values]
    if all(g.size >= 2 for g in groups):
        means = np.empty((samples, len(groups)))
        for i, g in enumerate(groups):
            centre = y[g].mean()
            inflate = math.sqrt(g.size / (g.size - 1))
            picked = y[g[rng.integers(0, g.size, size=(samples, g.size))]]
            means[:, i] = centre + inflate * (picked.mean(axis=1) - centre)
        counts = np.array([g.size for g in groups], dtype=float)
        return values, means, counts, "stratified case resampling"
    relative = y / fitted - 1.0
    relative = (relative - relative.mean()) * math.sqrt(y.size / max(y.size - k, 1))
    draws = relative[rng.integers(0, relative.size, size=(samples, relative.size))]
    return r, fitted[None, :] * (1.0 + draws), np.ones(r.size), "residual resampling"


def _interval(values: FloatArray, confidence: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    tail = 50.0 * (1.0 - confidence)
    if finite.size < values.size * (1.0 - tail / 100.0):
        low = float(np.percentile(finite, tail)) if finite.size else math.inf
        return low, math.inf
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return float(lo), float(hi)


@dataclass
class _Curve:
    """One curve between preparation and the bootstrap refits (see `fit_scaling`)."""

    model: Model
    r: FloatArray
    y: FloatArray
    counts: tuple[int, ...]
    excluded: list[int]
    reasons: list[str]
    advice: list[str]
    scale: float
    params: FloatArray  # point estimate on y / scale
    fitted: FloatArray  # on y / scale
    r_boot: FloatArray
    sets: FloatArray
    weights: FloatArray
    method: str

    @property
    def free_kappa(self) -> bool:
        return self.model == "usl"


def _prepare(
    replicas: Sequence[int] | NDArray[np.int64],
    throughput_pps: Sequence[float] | FloatArray,
    model: Model,
    *,
    line_rate_pps: float | None,
    bootstrap_samples: int,
    seed: int,
) -> _Curve:
    r_all = np.asarray(replicas, dtype=float)
    y_all = np.asarray(throughput_pps, dtype=float)
    if r_all.shape != y_all.shape or r_all.ndim != 1:
        raise AnalysisError("replicas and throughput_pps must be 1-D and of equal length")
    keep = np.isfinite(y_all) & (y_all > 0)
    r_all, y_all = r_all[keep], y_all[keep]
    reasons: list[str] = []
    advice: list[str] = []

    excluded: list[int] = []
    if line_rate_pps:
        for value in np.unique(r_all):
            if y_all[r_all == value].mean() >= CEILING_FRACTION * line_rate_pps:
                excluded.append(int(value))
        if excluded:
            reasons.append(
                f"NIC ceiling reached at {_list(excluded)} replicas (throughput ≥ "
                f"{CEILING_FRACTION:.0%} of the {line_rate_pps / 1e6:.2f} Mpps line rate): "
                "those points measure the NIC, not the CNF"
            )
            advice.append("use faster ports or more generator ports, or larger frames")
    mask = ~np.isin(r_all, excluded)
    r, y = r_all[mask], y_all[mask]
    counts = tuple(int(v) for v in np.unique(r))
    if len(counts) < MIN_REPLICA_COUNTS:
        why = f"{len(counts)} replica count(s) {_list(counts)}"
        if excluded:
            why += f" below the NIC ceiling (excluded: {_list(excluded)})"
        raise FitRefused(
            f"cannot fit {model.upper()} on {why}: at least {MIN_REPLICA_COUNTS} are needed; "
            "measure more replica counts"
        )

    free_kappa = model == "usl"
    scale = float(y.max())
    params = _point_fit(r, y / scale, free_kappa)
    fitted = _model_values(r, params[None, :])[0]
    rng = np.random.default_rng(seed)
    r_boot, sets, weights, method = _bootstrap_sets(
        r, y / scale, fitted, k=3 if free_kappa else 2, samples=bootstrap_samples, rng=rng
    )
    return _Curve(
        model, r, y, counts, excluded, reasons, advice, scale, params, fitted, r_boot, sets,
        weights, method,
    )  # fmt: skip


def _solve(curves: Sequence[_Curve]) -> list[FloatArray]:
    """The bootstrap refits of many curves, in one batched iteration per replica grid."""
    out: list[FloatArray | None] = [None] * len(curves)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, curve in enumerate(curves):
        groups.setdefault((curve.free_kappa, tuple(curve.r_boot)), []).append(index)
    for (free_kappa, grid), members in groups.items():
        sets = np.concatenate([curves[i].sets for i in members])
        starts = np.concatenate(
            [
                np.repeat(curves[i].params[None, :], curves[i].sets.shape[0], axis=0)
                for i in members
            ]
        )
        weights = np.concatenate(
            [
                np.repeat(curves[i].weights[None, :], curves[i].sets.shape[0], axis=0)
                for i in members
            ]
        )
        solved = _batched_lm(np.array(grid), sets, starts, free_kappa, weights=weights)
        offset = 0
        for i in members:
            size = curves[i].sets.shape[0]
            out[i] = solved[offset : offset + size]
            offset += size
    return [b for b in out if b is not None]


def _finish(
    curve: _Curve,
    boot_normalised: FloatArray,
    *,
    flows: int | None,
    confidence: float,
    knee_efficiency: float,
    min_marginal_gain: float,
) -> ScalingFit:
    model, r, y, counts = curve.model, curve.r, curve.y, curve.counts
    reasons, advice = list(curve.reasons), list(curve.advice)
    k = 3 if curve.free_kappa else 2
    params = curve.params.copy()
    boot = boot_normalised.copy()
    params[0] *= curve.scale
    boot[:, 0] *= curve.scale
    fitted = curve.fitted * curve.scale

    resid = y - fitted
    rss = float(np.sum(resid**2))
    tss = float(np.sum((y - y.mean()) ** 2))
    r_squared = 1.0 - rss / tss if tss > 0 else 1.0
    n = y.size
    aic = n * math.log(max(rss, 1e-300) / n) + 2 * k
    dof = len(counts) - k
    with np.errstate(divide="ignore"):
        peaks = np.where(
            boot[:, 2] > KAPPA_ZERO,
            np.sqrt(np.maximum(1.0 - boot[:, 1], 0.0) / boot[:, 2]),
            np.inf,
        )
    lam, sigma, kappa = (float(v) for v in params)
    ci = {
        "lambda_pps": _interval(boot[:, 0], confidence),
        "sigma": _interval(boot[:, 1], confidence),
        "kappa": _interval(boot[:, 2], confidence),
        "peak_replicas": _interval(peaks, confidence),
    }

    if dof <= 0:
        reasons.append(
            f"{len(counts)} replica counts determine the {k} {model.upper()} parameters "
            "exactly; no degree of freedom is left to test the model"
        )
        advice.append("measure at more replica counts")
    means = np.array([y[r == c].mean() for c in counts])
    modelled = _model_values(np.array(counts, dtype=float), params[None, :])[0]
    worst = float(np.max(np.abs(means / modelled - 1.0)))
    if r_squared < MIN_R_SQUARED or worst > MAX_RELATIVE_RESIDUAL:
        reasons.append(
            f"the model does not describe the data (R² {r_squared:.3f}, worst point "
            f"{worst:.1%} off the curve)"
        )
        advice.append("look for a bottleneck outside the CNF, or a noisy point")
    if ci["sigma"][1] - ci["sigma"][0] > MAX_SIGMA_CI_WIDTH:
        reasons.append(f"σ is undetermined: its {confidence:.0%} interval is {_ci(ci['sigma'])}")
        advice.append("repeat the trials or measure more replica counts")
    if flows is not None:
        imbalance = expected_imbalance(flows, max(counts))
        if imbalance > MAX_IMBALANCE:
            reasons.append(
                f"flows too few for the replicas: {flows} flows over {max(counts)} replicas "
                f"load the busiest replica ≈{imbalance:.2f}× the mean"
            )
            advice.append(f"use at least {_flows_needed(max(counts))} flows")

    return ScalingFit(
        model=model,
        lambda_pps=lam,
        sigma=sigma,
        kappa=kappa,
        ci=ci,
        confidence=confidence,
        r_squared=r_squared,
        rmse_pps=math.sqrt(rss / n),
        aic=aic,
        dof=dof,
        replica_counts=counts,
        n_samples=int(n),
        bootstrap_method=curve.method,
        bootstrap_params=boot,
        peak_replicas=peak_replicas(sigma, kappa),
        knee_replicas=knee_replicas(sigma, kappa, knee_efficiency),
        max_worth_replicas=max_worth_replicas(lam, sigma, kappa, min_marginal_gain),
        knee_efficiency=knee_efficiency,
        min_marginal_gain=min_marginal_gain,
        excluded_replicas=tuple(curve.excluded),
        reasons=tuple(reasons),
        advice=tuple(dict.fromkeys(advice)),
    )


def fit_scaling(
    replicas: Sequence[int] | NDArray[np.int64],
    throughput_pps: Sequence[float] | FloatArray,
    model: Model = "usl",
    *,
    line_rate_pps: float | None = None,
    flows: int | None = None,
    bootstrap_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    knee_efficiency: float = 0.7,
    min_marginal_gain: float = 0.5,
) -> ScalingFit:
    """Fit `model` to throughput measured at replica counts (repeats allowed).

    Raises `FitRefused` when fewer than three replica counts remain below the NIC
    ceiling; otherwise returns the fit, with `reasons` set when it is not trustworthy.
    """
    curve = _prepare(
        replicas,
        throughput_pps,
        model,
        line_rate_pps=line_rate_pps,
        bootstrap_samples=bootstrap_samples,
        seed=seed,
    )
    (boot,) = _solve([curve])
    return _finish(
        curve,
        boot,
        flows=flows,
        confidence=confidence,
        knee_efficiency=knee_efficiency,
        min_marginal_gain=min_marginal_gain,
    )


def _flows_needed(replicas: int) -> int:
    flows = replicas
    while expected_imbalance(flows, replicas) > MAX_IMBALANCE:
        flows *= 2
    return flows


def _list(values: Sequence[int]) -> str:
    return ", ".join(str(v) for v in values)


def _ci(interval: tuple[float, float]) -> str:
    return f"[{interval[0]:.3g}, {interval[1]:.3g}]"


# --- over a RunSet -------------------------------------------------------------------


def throughput_samples(runs: RunSet, run_id: str | None = None) -> pd.DataFrame:
    """One row per throughput record: point keys, ndr_pps, pdr_pps, line_rate_pps."""
    points = runs.points
    if points.empty or "measure" not in points:
        return pd.DataFrame(columns=[*GROUP_KEYS, "replicas", "ndr_pps", "pdr_pps"])
    rows = points[points["measure"] == "throughput"]
    if run_id is not None:
        rows = rows[rows["run_id"] == run_id]
    columns = [*GROUP_KEYS, "replicas", "ndr_pps", "pdr_pps", "line_rate_pps"]
    out = rows.reindex(columns=columns).copy()
    out["replicas"] = out["replicas"].astype(int)
    out["flows"] = out["flows"].astype(int)
    out["frame_size"] = out["frame_size"].astype(str)
    return out.reset_index(drop=True)


def throughput_table(runs: RunSet, run_id: str | None = None) -> pd.DataFrame:
    """Throughput per run, point and replica count, with spread and scaling efficiency.

    Columns: run_id, frame_size, flows, direction, replicas, n, ndr_pps, ndr_std_pps,
    pdr_pps, pdr_std_pps, line_rate_pps, ndr_per_replica_pps, efficiency_ndr,
    efficiency_pdr (E(R) = X(R) / (R · X(1)); NaN without a one-replica point).
    """
    samples = throughput_samples(runs, run_id)
    keys = [*GROUP_KEYS, "replicas"]
    if samples.empty:
        return pd.DataFrame(columns=[*keys, "n", "ndr_pps", "pdr_pps", "efficiency_ndr"])
    grouped = samples.groupby(keys, sort=True)
    table = grouped.agg(
        n=("ndr_pps", "size"),
        ndr_pps=("ndr_pps", "mean"),
        ndr_std_pps=("ndr_pps", "std"),
        pdr_pps=("pdr_pps", "mean"),
        pdr_std_pps=("pdr_pps", "std"),
        line_rate_pps=("line_rate_pps", "max"),
    ).reset_index()
    table["ndr_per_replica_pps"] = table["ndr_pps"] / table["replicas"]
    table["pdr_per_replica_pps"] = table["pdr_pps"] / table["replicas"]
    for goal in ("ndr", "pdr"):
        one = table[table["replicas"] == 1].set_index(list(GROUP_KEYS))[f"{goal}_pps"]
        base = table.set_index(list(GROUP_KEYS)).index.map(one.to_dict())
        table[f"efficiency_{goal}"] = table[f"{goal}_pps"].to_numpy() / (
            table["replicas"].to_numpy() * np.asarray(base, dtype=float)
        )
    return table


@dataclass(frozen=True)
class ScalingVerdict:
    """The outcome of fitting one model to one curve of one run."""

    run_id: str
    frame_size: str
    flows: int
    direction: str
    goal: str
    model: Model
    fit: ScalingFit | None
    refused: str | None = None

    @property
    def verdict(self) -> str:
        return "refused" if self.fit is None else self.fit.verdict

    @property
    def reasons(self) -> tuple[str, ...]:
        if self.fit is None:
            return (self.refused or "refused",)
        return self.fit.reasons


def group_seed(seed: int, *parts: object) -> int:
    """A seed per curve that does not depend on which other curves are in the set."""
    return (seed + zlib.crc32("|".join(map(str, parts)).encode())) % 2**32


def scaling_fits(
    runs: RunSet,
    *,
    goals: Sequence[str] = ("ndr",),
    models: Sequence[Model] = ("usl", "amdahl"),
    run_id: str | None = None,
    bootstrap_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    knee_efficiency: float = 0.7,
    min_marginal_gain: float = 0.5,
) -> list[ScalingVerdict]:
    """Fit every curve (run × frame size × flows × direction) with every model.

    The bootstrap refits of all curves are solved together (`_solve`); each curve keeps
    its own seed, so a curve's result does not depend on which others are in the set.
    """
    samples = throughput_samples(runs, run_id)
    slots: list[tuple[tuple[str, str, int, str, str, Model], _Curve | str]] = []
    for key, rows in samples.groupby(list(GROUP_KEYS), sort=True):
        parts: tuple[Any, ...] = key if isinstance(key, tuple) else (key,)
        rid, frame, flows, direction = (str(parts[0]), str(parts[1]), int(parts[2]), str(parts[3]))
        line = rows["line_rate_pps"].max()
        for goal in goals:
            for model in models:
                ident = (rid, frame, flows, direction, goal, model)
                try:
                    curve = _prepare(
                        rows["replicas"].to_numpy(),
                        rows[f"{goal}_pps"].to_numpy(dtype=float),
                        model,
                        line_rate_pps=float(line) if pd.notna(line) else None,
                        bootstrap_samples=bootstrap_samples,
                        seed=group_seed(seed, rid, frame, flows, direction, goal, model),
                    )
                except FitRefused as exc:
                    log.debug("%s %s %s: %s", rid, frame, model, exc)
                    slots.append((ident, str(exc)))
                    continue
                slots.append((ident, curve))
    curves = [c for _, c in slots if isinstance(c, _Curve)]
    solved = iter(_solve(curves))
    out: list[ScalingVerdict] = []
    for (rid, frame, flows, direction, goal, model), item in slots:
        if isinstance(item, str):
            out.append(ScalingVerdict(rid, frame, flows, direction, goal, model, None, item))
            continue
        fit = _finish(
            item,
            next(solved),
            flows=flows,
            confidence=confidence,
            knee_efficiency=knee_efficiency,
            min_marginal_gain=min_marginal_gain,
        )
        out.append(ScalingVerdict(rid, frame, flows, direction, goal, model, fit))
    return out


def fits_table(verdicts: Sequence[ScalingVerdict]) -> pd.DataFrame:
    """One row per verdict: parameters, intervals, goodness of fit, R*, knee, verdict."""
    rows = []
    for v in verdicts:
        row: dict[str, object] = {
            "run_id": v.run_id,
            "frame_size": v.frame_size,
            "flows": v.flows,
            "direction": v.direction,
            "goal": v.goal,
            "model": v.model,
            "verdict": v.verdict,
            "reasons": "; ".join(v.reasons) if v.verdict != "trustworthy" else "",
        }
        fit = v.fit
        if fit is not None:
            row.update(
                lambda_pps=fit.lambda_pps,
                sigma=fit.sigma,
                kappa=fit.kappa,
                r_squared=fit.r_squared,
                rmse_pps=fit.rmse_pps,
                aic=fit.aic,
                peak_replicas=fit.peak_replicas,
                knee_replicas=fit.knee_replicas,
                max_worth_replicas=fit.max_worth_replicas,
                replica_counts=",".join(map(str, fit.replica_counts)),
                bootstrap=fit.bootstrap_method,
                advice="; ".join(fit.advice),
            )
            for name, (lo, hi) in fit.ci.items():
                row[f"{name}_lo"], row[f"{name}_hi"] = lo, hi
        rows.append(row)
    return pd.DataFrame(rows)
