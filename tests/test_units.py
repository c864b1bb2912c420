"""Frame and rate arithmetic against textbook values and as properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from traffic import units
from traffic.errors import UnitError

speeds = st.sampled_from([1e9, 10e9, 25e9, 40e9, 50e9, 100e9, 200e9, 400e9])
sizes = st.integers(min_value=units.MIN_FRAME_BYTES, max_value=units.MAX_FRAME_BYTES)


@pytest.mark.parametrize(
    ("speed_bps", "size", "expected_pps"),
    [
        (10e9, 64, 14_880_952),
        (100e9, 64, 148_809_524),
        (25e9, 64, 37_202_381),
        (10e9, 1518, 812_744),
        (1e9, 64, 1_488_095),
        (10e9, 9000, 138_581),
    ],
)
def test_line_rate_textbook_values(speed_bps: float, size: int, expected_pps: int) -> None:
    assert round(units.line_rate_pps(speed_bps, size)) == expected_pps


def test_imix_is_a_frame_weighted_mix() -> None:
    mix = units.IMIX_NFVBENCH
    # (7*64 + 4*594 + 1*1518) / 12 = 362.33 B of L2 per frame
    assert mix.mean_l2_bytes == pytest.approx(4342 / 12)
    assert units.line_rate_pps(10e9, mix) == pytest.approx(10e9 / ((4342 / 12 + 20) * 8))
    assert units.mix_counts(mix, 12) == [7, 4, 1]
    assert sum(units.mix_counts(mix, 1001)) == 1001


@given(speeds, sizes)
def test_line_rate_fills_the_wire_exactly(speed_bps: float, size: int) -> None:
    pps = units.line_rate_pps(speed_bps, size)
    assert units.pps_to_l1_bps(pps, size) == pytest.approx(speed_bps)
    assert units.percent_of_line_rate(pps, speed_bps, size) == pytest.approx(100.0)
    # L2 throughput is below L1 by exactly the 20 bytes of preamble and gap per frame
    assert units.pps_to_l2_bps(pps, size) == pytest.approx(speed_bps * size / (size + 20))


@given(st.floats(min_value=1.0, max_value=1e9), sizes)
def test_rate_conversions_round_trip(rate_pps: float, size: int) -> None:
    assert units.l1_bps_to_pps(units.pps_to_l1_bps(rate_pps, size), size) == pytest.approx(
        rate_pps
    )
    assert units.l2_bps_to_pps(units.pps_to_l2_bps(rate_pps, size), size) == pytest.approx(
        rate_pps
    )


@given(speeds, sizes, sizes)
def test_larger_frames_never_give_more_frames_per_second(speed_bps: float, a: int, b: int) -> None:
    small, large = sorted((a, b))
    assert units.line_rate_pps(speed_bps, large) <= units.line_rate_pps(speed_bps, small)


@pytest.mark.parametrize(
    ("text", "parse", "expected"),
    [
        ("25Gbps", units.parse_bitrate_bps, 25e9),
        ("100 Gbit/s", units.parse_bitrate_bps, 100e9),
        ("1Mpps", units.parse_packet_rate_pps, 1e6),
        ("14.88Mpps", units.parse_packet_rate_pps, 14.88e6),
        ("30s", units.parse_duration_s, 30.0),
        ("500ms", units.parse_duration_s, 0.5),
        ("2min", units.parse_duration_s, 120.0),
        ("0.5%", units.parse_percent, 0.005),
        ("1Gi", units.parse_bytes, 1 << 30),
    ],
)
def test_quantities_parse_with_units(text: str, parse: object, expected: float) -> None:
    assert callable(parse)
    assert parse(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "parse"),
    [
        (25, units.parse_bitrate_bps),
        ("25G", units.parse_bitrate_bps),
        (1000, units.parse_packet_rate_pps),
        ("30", units.parse_duration_s),
        (0.5, units.parse_percent),
        ("12000", units.parse_frame_size),
        ("jumbo", units.parse_frame_size),
    ],
)
def test_quantities_without_units_are_refused(value: object, parse: object) -> None:
    assert callable(parse)
    with pytest.raises(UnitError):
        parse(value)


def test_frame_sizes_and_mixes_parse() -> None:
    assert units.parse_frame_size(64) == 64
    assert units.parse_frame_size("1518B") == 1518
    assert units.parse_frame_size("IMIX") is units.IMIX_NFVBENCH
    with pytest.raises(UnitError, match=r"outside 64\.\.9000"):
        units.parse_frame_size(63)
