"""Frame and rate arithmetic, and parsing of quantities with explicit units.

Frame sizes are L2 sizes including the FCS. On the wire each frame also occupies
8 bytes of preamble and start-of-frame delimiter and 12 bytes of inter-frame gap
(IEEE 802.3 clause 4.4.2), hence ``WIRE_OVERHEAD_BYTES = 20``: a 64-byte frame takes
84 bytes of line time, and 10 GbE carries 10e9 / (84 * 8) = 14 880 952 frames/s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from traffic.errors import UnitError

WIRE_OVERHEAD_BYTES = 20
MIN_FRAME_BYTES = 64
MAX_FRAME_BYTES = 9000


def check_frame_size(size_bytes: int) -> int:
    if not MIN_FRAME_BYTES <= size_bytes <= MAX_FRAME_BYTES:
        raise UnitError(
            f"frame size {size_bytes} B is outside {MIN_FRAME_BYTES}..{MAX_FRAME_BYTES} B "
            "(L2 size including FCS)"
        )
    return size_bytes


@dataclass(frozen=True)
class FrameMix:
    """A weighted mix of L2 frame sizes (an IMIX); weights are frame counts, not bytes."""

    name: str
    sizes_bytes: tuple[int, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.sizes_bytes or len(self.sizes_bytes) != len(self.weights):
            raise UnitError(f"frame mix {self.name!r}: sizes and weights must pair up")
        for size in self.sizes_bytes:
            check_frame_size(size)
        if any(w <= 0 for w in self.weights):
            raise UnitError(f"frame mix {self.name!r}: weights must be positive")

    @property
    def mean_l2_bytes(self) -> float:
        """Average L2 frame size of the mix, weighted by frame count."""
        total = sum(self.weights)
        return sum(s * w for s, w in zip(self.sizes_bytes, self.weights, strict=True)) / total

    @property
    def mean_wire_bytes(self) -> float:
        return self.mean_l2_bytes + WIRE_OVERHEAD_BYTES


# NFVBench's IMIX: 64/594/1518 bytes at 7:4:1 (the "simple IMIX" of RFC 6985 §4 style).
IMIX_NFVBENCH = FrameMix("IMIX", (64, 594, 1518), (7.0, 4.0, 1.0))
# The classic Internet mix of 64/570/1518 at 7:4:1, as in many vendor datasheets.
IMIX_CLASSIC = FrameMix("IMIX-classic", (64, 570, 1518), (7.0, 4.0, 1.0))

NAMED_MIXES: Mapping[str, FrameMix] = {
    "IMIX": IMIX_NFVBENCH,
    "IMIX-classic": IMIX_CLASSIC,
}

FrameSize = int | FrameMix


def parse_frame_size(value: int | str) -> FrameSize:
    """An L2 frame size in bytes (``64``, ``"1518"``, ``"64B"``) or a named mix."""
    if isinstance(value, int) and not isinstance(value, bool):
        return check_frame_size(value)
    text = str(value).strip()
    if text in NAMED_MIXES:
        return NAMED_MIXES[text]
    m = re.fullmatch(r"(\d+)\s*B?", text)
    if not m:
        names = ", ".join(NAMED_MIXES)
        raise UnitError(f"frame size {value!r} is neither a size in bytes nor one of {names}")
    return check_frame_size(int(m.group(1)))


def frame_label(size: FrameSize) -> str:
    return size.name if isinstance(size, FrameMix) else str(size)


def mean_l2_bytes(size: FrameSize) -> float:
    return size.mean_l2_bytes if isinstance(size, FrameMix) else float(size)


def wire_bytes(size: FrameSize) -> float:
    """Bytes of line time per frame: L2 size plus preamble, SFD and inter-frame gap."""
    return mean_l2_bytes(size) + WIRE_OVERHEAD_BYTES


def line_rate_pps(port_speed_bps: float, size: FrameSize) -> float:
    """The most frames per second one direction of a port can carry."""
    if port_speed_bps <= 0:
        raise UnitError(f"port speed must be positive, got {port_speed_bps} bps")
    return port_speed_bps / (wire_bytes(size) * 8)


def pps_to_l1_bps(rate_pps: float, size: FrameSize) -> float:
    return rate_pps * wire_bytes(size) * 8


def pps_to_l2_bps(rate_pps: float, size: FrameSize) -> float:
    return rate_pps * mean_l2_bytes(size) * 8


def l1_bps_to_pps(rate_bps: float, size: FrameSize) -> float:
    return rate_bps / (wire_bytes(size) * 8)


def l2_bps_to_pps(rate_bps: float, size: FrameSize) -> float:
    return rate_bps / (mean_l2_bytes(size) * 8)


def percent_of_line_rate(rate_pps: float, port_speed_bps: float, size: FrameSize) -> float:
    return 100.0 * rate_pps / line_rate_pps(port_speed_bps, size)


def mix_counts(mix: FrameMix, total_frames: int) -> Sequence[int]:
    """Split a frame count across the sizes of a mix by weight (largest remainder)."""
    total_w = sum(mix.weights)
    exact = [total_frames * w / total_w for w in mix.weights]
    counts = [int(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in order[: total_frames - sum(counts)]:
        counts[i] += 1
    return counts


# --- quantities with units ----------------------------------------------------------

_SI = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKMGT]?)([A-Za-z%/]*)\s*$")
_DURATIONS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def _split(text: str, what: str) -> tuple[float, str, str]:
    m = _QUANTITY.match(text)
    if not m:
        raise UnitError(f"{what} {text!r} is not a number with a unit")
    return float(m.group(1)), m.group(2), m.group(3)


def parse_bitrate_bps(value: str | int | float) -> float:
    """A bit rate with an explicit unit: ``25Gbps``, ``100 Gbit/s``, ``400Mbps``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise UnitError(f"bit rate {value!r} needs a unit, for example '25Gbps'")
    number, prefix, unit = _split(str(value), "bit rate")
    if unit not in ("bps", "bit/s", "b/s"):
        raise UnitError(f"bit rate {value!r} needs a unit of bps, for example '25Gbps'")
    return number * _SI[prefix]


def parse_packet_rate_pps(value: str | int | float) -> float:
    """A frame rate with an explicit unit: ``1Mpps``, ``14.88 Mpps``, ``1000pps``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise UnitError(f"packet rate {value!r} needs a unit, for example '1Mpps'")
    number, prefix, unit = _split(str(value), "packet rate")
    if unit not in ("pps", "fps"):
        raise UnitError(f"packet rate {value!r} needs a unit of pps, for example '1Mpps'")
    return number * _SI[prefix]


def parse_duration_s(value: str | int | float) -> float:
    """A duration with an explicit unit: ``30s``, ``500ms``, ``2min``, ``1h``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise UnitError(f"duration {value!r} needs a unit, for example '30s'")
    text = str(value).strip()
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(us|µs|ms|s|min|m|h)", text)
    if not m:
        raise UnitError(f"duration {value!r} needs a unit of us, ms, s, min or h")
    return float(m.group(1)) * _DURATIONS[m.group(2)]


def parse_percent(value: str | int | float) -> float:
    """A ratio written as a percentage (``0.5%``) returned as a fraction (0.005)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise UnitError(f"ratio {value!r} needs a '%' sign, for example '0.5%'")
    number, prefix, unit = _split(str(value), "percentage")
    if prefix or unit != "%":
        raise UnitError(f"ratio {value!r} needs a '%' sign, for example '0.5%'")
    return number / 100.0


def parse_bytes(value: str | int) -> int:
    """A memory size: ``1Gi``, ``2048Mi``, ``512MB``."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise UnitError(f"size {value!r} needs a unit, for example '1Gi'")
    m = re.fullmatch(r"\s*(\d+)\s*(Ki|Mi|Gi|Ti|kB|KB|MB|GB|TB|B)\s*", str(value))
    if not m:
        raise UnitError(f"size {value!r} needs a unit of B, Ki, Mi, Gi, MB or GB")
    factor = {
        "B": 1,
        "Ki": 1 << 10,
        "Mi": 1 << 20,
        "Gi": 1 << 30,
        "Ti": 1 << 40,
        "kB": 10**3,
        "KB": 10**3,
        "MB": 10**6,
        "GB": 10**9,
        "TB": 10**12,
    }[m.group(2)]
    return int(m.group(1)) * factor


def format_pps(rate_pps: float) -> str:
    return f"{rate_pps / 1e6:.3f} Mpps"


def format_bps(rate_bps: float) -> str:
    return f"{rate_bps / 1e9:.3f} Gbps"
