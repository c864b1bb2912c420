"""Figures in one style: matplotlib's Agg backend and the Okabe–Ito palette.

The Okabe–Ito colours (M. Okabe & K. Ito, *Color Universal Design*, 2002) stay
distinguishable under the common colour-vision deficiencies; series also differ in
marker and line style so that the figures survive greyscale printing.  Figures are
built on `matplotlib.figure.Figure` without pyplot, so no global state is touched and
rendering needs no display.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import matplotlib
from cycler import cycler

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from analysis.scaling import ScalingVerdict, modelled_efficiency

log = logging.getLogger(__name__)

OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")
STYLE: dict[str, Any] = {
    "axes.prop_cycle": cycler(color=OKABE_ITO),
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 9,
    "axes.titlesize": 10,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 130,
    "svg.hashsalt": "cnfbench",  # stable SVG ids
}


@contextmanager
def styled() -> Iterator[None]:
    with matplotlib.rc_context(cast(Any, STYLE)):
        yield


def new_figure(width_in: float = 7.0, height_in: float = 3.2, ncols: int = 1) -> Figure:
    with styled():
        fig = Figure(figsize=(width_in, height_in), layout="constrained")
        FigureCanvasAgg(fig)
        fig.subplots(1, ncols, squeeze=False)
    return fig


def figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    with styled():
        fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def figure_svg(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    with styled():
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return buffer.getvalue()


class Inline:
    """A figure that notebooks display as PNG (rich display protocol)."""

    def __init__(self, fig: Figure) -> None:
        self.figure = fig

    def _repr_png_(self) -> bytes:
        return figure_png(self.figure)


def inline(fig: Figure) -> Inline:
    return Inline(fig)


def _color(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


def _axes(fig: Figure) -> list[Axes]:
    return list(fig.axes)


def _mpps(values: Any) -> Any:
    return np.asarray(values, dtype=float) / 1e6


# --- scaling -------------------------------------------------------------------------


def scaling_figure(
    table: pd.DataFrame,
    verdicts: Sequence[ScalingVerdict],
    run_id: str,
    goal: str = "ndr",
    model: str = "usl",
) -> Figure:
    """Throughput and scaling efficiency against replicas, one series per frame size,
    with the fitted curve and its bootstrap band where the fit was made."""
    fig = new_figure(7.2, 3.2, ncols=2)
    ax_x, ax_e = _axes(fig)
    rows = table[table["run_id"] == run_id]
    fits = {v.frame_size: v for v in verdicts if v.run_id == run_id and v.model == model}
    with styled():
        for i, (frame, unsorted) in enumerate(rows.groupby("frame_size", sort=False)):
            part = unsorted.sort_values("replicas")
            color, marker = _color(i), MARKERS[i % len(MARKERS)]
            r = part["replicas"].to_numpy(dtype=float)
            ax_x.errorbar(
                r,
                _mpps(part[f"{goal}_pps"]),
                yerr=_mpps(part[f"{goal}_std_pps"].fillna(0.0)),
                fmt=marker,
                color=color,
                capsize=2,
                label=f"{frame} B" if str(frame).isdigit() else str(frame),
            )
            ax_e.plot(r, part[f"efficiency_{goal}"], marker=marker, color=color, linestyle="")
            line = part["line_rate_pps"].max()
            if pd.notna(line):
                ax_x.axhline(line / 1e6, color=color, linestyle=":", linewidth=0.8)
            verdict = fits.get(str(frame))
            if verdict is None or verdict.fit is None:
                continue
            fit = verdict.fit
            grid = np.linspace(1.0, max(r.max(), 2.0), 100)
            lo, hi = fit.band_pps(grid)
            style = "-" if fit.trustworthy else "--"
            note = "" if fit.trustworthy else " (not trustworthy)"
            ax_x.plot(
                grid,
                _mpps(fit.predict_pps(grid)),
                style,
                color=color,
                linewidth=1.2,
                label=f"{model.upper()} fit{note}",
            )
            ax_x.fill_between(grid, _mpps(lo), _mpps(hi), color=color, alpha=0.18, linewidth=0)
            ax_e.plot(grid, modelled_efficiency(grid, fit.sigma, fit.kappa), style, color=color)
        ax_x.set_xlabel("replicas")
        ax_x.set_ylabel(f"{goal.upper()} (Mpps)")
        ax_x.set_title(f"{goal.upper()} throughput (dotted: line rate)")
        ax_x.set_ylim(bottom=0)
        ax_x.legend(loc="upper left")
        ax_e.set_xlabel("replicas")
        ax_e.set_ylabel("E(R) = X(R) / (R·X(1))")
        ax_e.set_title("scaling efficiency")
        ax_e.set_ylim(0, 1.1)
        knee = next((v.fit.knee_efficiency for v in fits.values() if v.fit), None)
        if knee is not None:
            ax_e.axhline(knee, color="#000000", linestyle=":", linewidth=0.8)
    return fig


def ndr_pdr_figure(table: pd.DataFrame, run_id: str) -> Figure:
    """NDR and PDR per frame size and replica count (grouped bars, Mpps)."""
    rows = table[table["run_id"] == run_id]
    frames = list(dict.fromkeys(rows["frame_size"]))
    fig = new_figure(7.2, 3.0, ncols=max(len(frames), 1))
    with styled():
        for ax, frame in zip(_axes(fig), frames, strict=False):
            part = rows[rows["frame_size"] == frame].sort_values("replicas")
            x = np.arange(len(part))
            ax.bar(x - 0.2, _mpps(part["ndr_pps"]), 0.4, color=OKABE_ITO[0], label="NDR")
            ax.bar(
                x + 0.2,
                _mpps(part["pdr_pps"]),
                0.4,
                color=OKABE_ITO[1],
                label="PDR",
                hatch="//",
                edgecolor="white",
            )
            ax.set_xticks(x, [str(r) for r in part["replicas"]])
            ax.set_xlabel("replicas")
            ax.set_ylabel("Mpps")
            ax.set_title(f"frame size {frame}")
            ax.legend(loc="upper left")
    return fig


def latency_figure(latency: pd.DataFrame, run_id: str, frame_size: str | None = None) -> Figure:
    """p50 and p99 one-way latency against load (fraction of NDR), per replica count."""
    rows = latency[latency["run_id"] == run_id]
    if frame_size is None and not rows.empty:
        frame_size = str(rows["frame_size"].iloc[0])
    rows = rows[rows["frame_size"] == frame_size]
    fig = new_figure(7.2, 3.0, ncols=2)
    with styled():
        for ax, column in zip(_axes(fig), ("p50_us", "p99_us"), strict=True):
            for i, (replicas, unsorted) in enumerate(rows.groupby("replicas", sort=True)):
                part = unsorted.sort_values("load_fraction_ndr")
                ax.plot(
                    part["load_fraction_ndr"] * 100,
                    part[column],
                    marker=MARKERS[i % len(MARKERS)],
                    linestyle=LINESTYLES[i % len(LINESTYLES)],
                    color=_color(i),
                    label=f"{replicas} replica{'s' if replicas != 1 else ''}",
                )
            ax.set_yscale("log")
            plain = FuncFormatter(lambda value, _: f"{value:g}")
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(plain)
            ax.set_xlabel("load (% of NDR)")
            ax.set_ylabel(f"{column[:-3]} latency (µs)")
            ax.set_title(f"{column[:-3]} one-way latency, {frame_size}")
        _axes(fig)[0].legend(loc="upper left")
    return fig


def sessions_figure(
    sessions: pd.DataFrame, run_ids: Sequence[str], labels: Sequence[str]
) -> Figure:
    """Session capacity against replicas, one series per run."""
    fig = new_figure(5.0, 3.0)
    (ax,) = _axes(fig)
    with styled():
        for i, (run_id, label) in enumerate(zip(run_ids, labels, strict=True)):
            part = sessions[sessions["run_id"] == run_id].sort_values("replicas")
            if part.empty:
                continue
            ax.plot(
                part["replicas"],
                part["session_capacity_flows"] / 1e6,
                marker=MARKERS[i % len(MARKERS)],
                color=_color(i),
                label=label,
            )
        ax.set_xlabel("replicas")
        ax.set_ylabel("session capacity (M flows)")
        ax.set_title("session capacity")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left")
    return fig


# --- comparison ----------------------------------------------------------------------


def vendor_comparison_figure(frame: pd.DataFrame, frame_size: str, goal: str = "ndr") -> Figure:
    """Per vendor: share of line rate against replicas, and the ratio to the baseline
    vendor with its 95 % interval."""
    rows = frame[(frame["goal"] == goal) & (frame["frame_size"] == frame_size)]
    per_vendor = (
        rows.groupby(["vendor", "replicas"], sort=True)
        .agg(
            share=("vendor_share_mean", "first"),
            se=("vendor_share_se", "first"),
            ratio=("ratio_to_baseline", "first"),
            lo=("ratio_lo", "first"),
            hi=("ratio_hi", "first"),
        )
        .reset_index()
    )
    baseline = rows["baseline_vendor"].dropna().iloc[0] if not rows.empty else "baseline"
    fig = new_figure(7.2, 3.2, ncols=2)
    ax_s, ax_q = _axes(fig)
    with styled():
        for i, (vendor, part) in enumerate(per_vendor.groupby("vendor", sort=True)):
            color, marker = _color(i), MARKERS[i % len(MARKERS)]
            ax_s.errorbar(
                part["replicas"],
                part["share"] * 100,
                yerr=1.96 * part["se"] * 100,
                marker=marker,
                color=color,
                capsize=2,
                label=str(vendor),
            )
            ax_q.errorbar(
                part["replicas"],
                part["ratio"],
                yerr=[part["ratio"] - part["lo"], part["hi"] - part["ratio"]],
                marker=marker,
                color=color,
                capsize=2,
                linestyle=LINESTYLES[i % len(LINESTYLES)],
                label=str(vendor),
            )
        ax_s.set_xlabel("replicas")
        ax_s.set_ylabel(f"{goal.upper()} (% of line rate)")
        ax_s.set_title(f"{goal.upper()}, {frame_size}, normalised per testbed")
        ax_s.set_ylim(bottom=0)
        ax_s.legend(loc="upper left")
        ax_q.axhline(1.0, color="#000000", linewidth=0.8)
        ax_q.set_xlabel("replicas")
        ax_q.set_ylabel(f"ratio to {baseline}")
        ax_q.set_title("ratio to the baseline (95 % interval)")
    return fig


def vendor_efficiency_figure(
    table: pd.DataFrame, vendors: dict[str, str], frame_size: str, goal: str = "ndr"
) -> Figure:
    """Scaling efficiency against replicas, one series per vendor (mean over its runs)."""
    rows = table[table["frame_size"] == frame_size].assign(
        vendor=lambda t: t["run_id"].map(vendors)
    )
    stats = rows.groupby(["vendor", "replicas"])[f"efficiency_{goal}"].agg(["mean", "std"])
    fig = new_figure(5.0, 3.0)
    (ax,) = _axes(fig)
    with styled():
        for i, (vendor, part) in enumerate(stats.reset_index().groupby("vendor", sort=True)):
            ax.errorbar(
                part["replicas"],
                part["mean"],
                yerr=part["std"].fillna(0.0),
                marker=MARKERS[i % len(MARKERS)],
                color=_color(i),
                capsize=2,
                label=str(vendor),
            )
        ax.set_ylim(0, 1.1)
        ax.set_xlabel("replicas")
        ax.set_ylabel("E(R)")
        ax.set_title(f"scaling efficiency of {goal.upper()}, {frame_size}")
        ax.legend(loc="lower left")
    return fig
