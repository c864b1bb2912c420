"""The data-plane model: magnitudes, phenomena, ground truth and determinism."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hdrh.histogram import HdrHistogram

from lab.dataplane import (
    DataPlane,
    Lane,
    VendorModel,
    load_vendor,
    vendor_from_mapping,
    vendor_names,
)
from lab.errors import LabError, VendorModelError

LINE_64B_PPS = 25e9 / (84 * 8)  # one 25 GbE port, 64-byte frames
LINE_1518B_PPS = 25e9 / (1538 * 8)
IMIX = ((64, 7.0), (594, 4.0), (1518, 1.0))


def plane(vendor: str = "vpp-router", replicas: int = 1, seed: int = 7, **kw: object) -> DataPlane:
    dp = DataPlane(load_vendor(vendor), seed, **kw)  # type: ignore[arg-type]
    dp.set_replicas(replicas, at_s=-1e6)
    return dp


def bidir(rate_pps: float, size: int = 64, flows: int = 1000, latency: bool = False) -> list[Lane]:
    half = rate_pps / 2
    return [
        Lane(0, 1, half, ((size, 1.0),), flows, measure_latency=latency),
        Lane(1, 0, half, ((size, 1.0),), flows, measure_latency=latency),
    ]


def loss_ratio(outcomes: list) -> float:  # type: ignore[type-arg]
    offered = sum(o.offered for o in outcomes)
    return 1 - sum(o.forwarded for o in outcomes) / offered


# --- vendor models ---------------------------------------------------------------------


def test_three_vendors_ship_as_data() -> None:
    assert {"vpp-router", "stateful-firewall", "cgnat"} <= set(vendor_names())
    for name in vendor_names():
        assert load_vendor(name).name == name


def test_unknown_vendor_names_the_known_ones() -> None:
    with pytest.raises(VendorModelError, match=r"unknown vendor model 'nope'.*vpp-router"):
        load_vendor("nope")


def test_bad_vendor_field_is_named() -> None:
    data = dataclasses.asdict(load_vendor("cgnat"))
    data["usl_sigma"] = -0.1
    with pytest.raises(VendorModelError, match=r"x\.yaml: vendor cgnat: usl_sigma"):
        vendor_from_mapping(data, "x.yaml")
    data = dataclasses.asdict(load_vendor("cgnat"))
    data["surprise"] = 1
    with pytest.raises(VendorModelError, match=r"x\.yaml: unknown field 'surprise'"):
        vendor_from_mapping(data, "x.yaml")


# --- magnitudes and scaling ------------------------------------------------------------


def test_vpp_router_one_replica_magnitudes() -> None:
    dp = plane(replicas=1)
    ndr_64 = dp.ground_truth(64, 1000, 1, True)
    assert 10e6 <= ndr_64 <= 12e6
    # Large frames hit the 2 x 25 GbE line rate with a single replica.
    ndr_1518 = dp.ground_truth(1518, 1000, 1, True)
    assert ndr_1518 == pytest.approx(2 * LINE_1518B_PPS, rel=1e-9)
    assert dp.ground_truth(IMIX, 1000, 1, True) < 2 * 25e9 / ((353.83 + 20) * 8)


def test_vendors_differ_in_scaling_as_designed() -> None:
    vpp, fw, nat = plane("vpp-router"), plane("stateful-firewall"), plane("cgnat")
    ndr = {
        name: [dp.ground_truth(64, 4096, r, True) for r in (1, 2, 4, 8)]
        for name, dp in (("vpp", vpp), ("fw", fw), ("nat", nat))
    }
    # vpp-router: near-linear until the NIC line rate (2 x 37.2 Mpps at 64 bytes).
    assert ndr["vpp"][2] / ndr["vpp"][0] > 3.5
    assert ndr["vpp"][3] <= 2 * LINE_64B_PPS * (1 + 1e-9)
    # cgnat: contention bends the curve and eight replicas forward less than four.
    assert ndr["nat"][1] / ndr["nat"][0] < 1.8
    assert ndr["nat"][3] < ndr["nat"][2]
    # The firewall is dearer per packet than the router.
    assert ndr["fw"][0] < 0.6 * ndr["vpp"][0]


def test_session_table_limits_the_firewall() -> None:
    fw = plane("stateful-firewall")
    table = fw.model.session_table_entries
    assert fw.ground_truth(64, table // 2, 1, True) > 1e6
    # Beyond the table, sessions are not admitted: no load is loss-free.
    assert fw.ground_truth(64, 2 * table, 1, True) == 0.0
    assert fw.ground_truth(64, 2 * table, 1, True, loss_ratio=0.005) == 0.0
    # Spread over enough replicas the same sessions fit again.
    assert fw.ground_truth(64, 2 * table, 4, True) > 1e6


def test_few_flows_leave_replicas_idle() -> None:
    dp = plane(replicas=4)
    one_replica = dp.ground_truth(64, 1000, 1, True)
    assert dp.ground_truth(64, 1, 4, True) == pytest.approx(one_replica, rel=0.05)
    assert dp.ground_truth(64, 10_000, 4, True) > 3 * one_replica


def test_flow_cache_misses_cost_capacity() -> None:
    dp = plane()
    assert dp.ground_truth(64, 1_000_000, 1, True) < 0.85 * dp.ground_truth(64, 1000, 1, True)


def test_pdr_is_above_ndr() -> None:
    dp = plane("cgnat", replicas=2)
    ndr = dp.ground_truth(64, 1000, 2, True)
    pdr = dp.ground_truth(64, 1000, 2, True, loss_ratio=0.005)
    assert ndr < pdr < 1.02 * ndr


# --- forwarding ------------------------------------------------------------------------


def test_no_loss_below_ndr_and_livelock_above() -> None:
    dp = plane("stateful-firewall", noise=False)
    model = dp.model
    ndr = dp.ground_truth(64, 1000, 1, True)
    below = dp.forward(bidir(0.999 * ndr), 0.0, 60.0)
    assert all(o.forwarded == o.offered for o in below)
    assert below[0].offered == round(0.999 * ndr / 2 * 60)
    # Above capacity a replica forwards less than its capacity (receive livelock).
    above = dp.forward(bidir(2.0 * ndr), 60.0, 60.0)
    forwarded_pps = sum(o.forwarded for o in above) / 60.0
    kept = max(model.livelock_floor, 1 - model.livelock_slope * (2.0 - 1.0))
    assert forwarded_pps == pytest.approx(kept * ndr, rel=1e-3)
    assert forwarded_pps < 0.7 * ndr


def test_loss_follows_capacity_over_offered() -> None:
    dp = plane("vpp-router", noise=False)
    ndr = dp.ground_truth(64, 1000, 1, True)
    outcomes = dp.forward(bidir(1.25 * ndr), 0.0, 10.0)
    # VPP's livelock slope is small, so loss is close to 1 - capacity / offered.
    assert loss_ratio(outcomes) == pytest.approx(1 - 1 / 1.25, abs=0.02)


def test_line_rate_is_a_hard_ceiling() -> None:
    dp = plane(replicas=8, noise=False)
    outcomes = dp.forward(bidir(4 * LINE_64B_PPS), 0.0, 1.0)
    for outcome in outcomes:
        assert outcome.offered == pytest.approx(LINE_64B_PPS, rel=1e-6)
        assert outcome.forwarded <= outcome.offered


def test_link_down_forwards_nothing() -> None:
    dp = plane(noise=False)
    dp.set_link(1, False)
    out = dp.forward(bidir(1e6), 0.0, 1.0)
    assert out[0].forwarded == 0  # 0 -> 1: nothing arrives on the dead port
    assert out[1].offered == 0  # 1 -> 0: nothing leaves it


def test_per_replica_steering_by_mac() -> None:
    dp = plane(replicas=2, noise=False)
    macs = list(dp.replica_macs().values())
    lane = Lane(0, 1, 1e5, ((64, 1.0),), 100, dst_mac=macs[1], measure_latency=False)
    stray = Lane(0, 1, 1e5, ((64, 1.0),), 100, dst_mac="02:ff:ff:ff:ff:ff")
    out = dp.forward([lane, stray], 0.0, 1.0)
    assert out[0].forwarded == out[0].offered
    assert out[1].forwarded == 0
    counters = dp.replica_counters()
    assert counters["replica-0"].rx_packets == 0
    assert counters["replica-1"].rx_packets == out[0].offered


def test_replica_counters_add_up() -> None:
    dp = plane(replicas=3, noise=False)
    out = dp.forward(bidir(3e6), 0.0, 2.0)
    counters = dp.replica_counters().values()
    assert sum(c.rx_packets for c in counters) == pytest.approx(sum(o.offered for o in out), abs=3)
    assert sum(c.tx_packets for c in counters) == pytest.approx(
        sum(o.forwarded for o in out), abs=3
    )
    assert all(c.drop_packets == 0 for c in counters)


def test_warm_up_after_ready() -> None:
    dp = DataPlane(load_vendor("stateful-firewall"), 3, noise=False)
    dp.add_replica("a", at_s=0.0)
    warm_ndr = dp.ground_truth(64, 1000, 1, True)
    during = dp.forward(bidir(0.9 * warm_ndr), 0.0, 5.0)
    after = dp.forward(bidir(0.9 * warm_ndr), dp.model.warmup_s + 1, 5.0)
    assert loss_ratio(during) > 0.05
    assert loss_ratio(after) == 0.0


def test_removed_replica_loses_its_flows_until_rehash() -> None:
    dp = plane("vpp-router", replicas=3, noise=False)
    rate = 0.3 * dp.ground_truth(64, 1000, 3, True)  # the two others can carry it all
    dp.remove_replica("replica-2", at_s=10.0)
    rehash_s = dp.model.rehash_s
    gone = dp.forward(bidir(rate), 10.0, rehash_s)
    later = dp.forward(bidir(rate), 10.0 + rehash_s, 5.0)
    assert 0.2 < loss_ratio(gone) < 0.45  # about a third of the flows hashed to it
    assert loss_ratio(later) == 0.0
    assert dp.replica_ids() == ["replica-0", "replica-1"]
    with pytest.raises(LabError, match="not in the data plane"):
        dp.remove_replica("replica-2", at_s=20.0)


# --- latency ---------------------------------------------------------------------------


def test_latency_rises_with_utilisation() -> None:
    dp = plane(noise=False)
    ndr = dp.ground_truth(64, 1000, 1, True)
    light = dp.forward(bidir(0.3 * ndr, latency=True), 0.0, 10.0)[0].latency
    heavy = dp.forward(bidir(0.95 * ndr, latency=True), 10.0, 10.0)[0].latency
    assert light is not None and heavy is not None
    assert light.min_us >= dp.model.base_latency_us
    assert heavy.p99_us > 2 * light.p99_us
    assert heavy.p99_us - heavy.p50_us > light.p99_us - light.p50_us  # percentiles widen
    decoded = HdrHistogram.decode(heavy.encoded())
    assert decoded.get_total_count() == heavy.samples


def test_latency_samples_match_forwarded_frames() -> None:
    dp = plane(noise=False)
    out = dp.forward([Lane(0, 1, 1000.0, ((64, 1.0),), 1)], 0.0, 60.0)[0]
    assert out.latency is not None
    assert out.latency.samples == out.forwarded == 60_000
    assert out.latency.min_us <= out.latency.mean_us <= out.latency.max_us


# --- noise, bursts, determinism --------------------------------------------------------


def test_same_seed_same_counts_other_seed_other_noise() -> None:
    def run(seed: int) -> list[tuple[int, int]]:
        dp = plane("cgnat", replicas=2, seed=seed)
        ndr = dp.ground_truth(64, 1000, 2, True)
        return [(o.offered, o.forwarded) for o in dp.forward(bidir(1.02 * ndr), 0.0, 30.0)]

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_ground_truth_with_a_trials_noise() -> None:
    dp = plane("cgnat", replicas=2)
    clean = dp.ground_truth(64, 1000, 2, True)
    trial = dp.begin_trial()
    noisy = dp.ground_truth(64, 1000, 2, True, noise=True, trial=trial)
    cv = dp.model.capacity_noise_cv
    assert noisy != clean
    assert abs(noisy / clean - 1) < 6 * cv
    assert dp.ground_truth(64, 1000, 2, True, noise=True) == noisy  # latest trial
    # The trial really meets that capacity: clean just below it, lossy just above.
    below = dp.forward(bidir(0.998 * noisy), 0.0, 1.0, trial=trial)
    above = dp.forward(bidir(1.01 * noisy), 1.0, 1.0, trial=trial)
    assert sum(o.burst_lost for o in below + above) == 0  # no burst in this window
    assert loss_ratio(below) == 0.0
    assert loss_ratio(above) > 0.0


def test_loss_bursts_hit_busy_replicas_only() -> None:
    model = dataclasses.replace(load_vendor("vpp-router"), loss_burst_rate_per_s=0.5)
    dp = DataPlane(model, 5)
    dp.set_replicas(1, at_s=-1e6)
    ndr = dp.ground_truth(64, 1000, 1, True)
    busy = dp.forward(bidir(0.9 * ndr), 0.0, 60.0)
    idle = dp.forward(bidir(0.1 * ndr), 60.0, 60.0)
    assert sum(o.burst_lost for o in busy) > 0
    assert loss_ratio(busy) < 0.01  # short bursts: little loss, but not zero
    assert sum(o.burst_lost for o in idle) == 0


def test_windowed_trial_equals_one_shot() -> None:
    model = dataclasses.replace(load_vendor("vpp-router"), loss_burst_rate_per_s=0.2)

    def fresh() -> DataPlane:
        dp = DataPlane(model, 9)
        dp.set_replicas(2, at_s=-1e6)
        return dp

    lanes = bidir(0.9 * fresh().ground_truth(64, 1000, 2, True))
    one = fresh()
    whole = one.forward(lanes, 0.0, 30.0, trial=1)
    pieces = fresh()
    parts = [pieces.forward(lanes, float(t), 1.0, trial=1, trial_start_s=0.0) for t in range(30)]
    burst_lost = sum(o.burst_lost for o in whole)
    assert burst_lost > 0
    assert burst_lost == pytest.approx(
        sum(p[0].burst_lost + p[1].burst_lost for p in parts), abs=10
    )
    assert sum(o.forwarded for o in whole) == pytest.approx(
        sum(p[0].forwarded + p[1].forwarded for p in parts), abs=60
    )


def test_bad_lanes_are_refused() -> None:
    with pytest.raises(LabError, match="flows"):
        Lane(0, 1, 1.0, ((64, 1.0),), 0)
    with pytest.raises(LabError, match="rate"):
        Lane(0, 1, math.inf, ((64, 1.0),), 1)
    with pytest.raises(LabError, match="offered_counts"):
        plane().forward(bidir(1.0), 0.0, 1.0, offered_counts=[1])


def test_vendor_model_is_frozen_and_validated() -> None:
    model = load_vendor("vpp-router")
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.cpu_hz = 1.0  # type: ignore[misc]
    with pytest.raises(VendorModelError, match="livelock_floor"):
        dataclasses.replace(model, livelock_floor=1.5)
    assert isinstance(model, VendorModel)


def test_a_replica_may_return_under_its_name() -> None:
    dp = plane(replicas=2, noise=False)
    dp.forward(bidir(1e6), 0.0, 1.0)
    dp.remove_replica("replica-1", at_s=1.0)
    dp.add_replica("replica-1", at_s=2.0, mac="02:00:00:00:00:aa")
    assert dp.replica_ids() == ["replica-0", "replica-1"]
    assert dp.replica_counters()["replica-1"].rx_packets == 0  # a new pod, new counters
    with pytest.raises(LabError, match="already in the data plane"):
        dp.add_replica("replica-1", at_s=3.0)
    dp.add_replica("late", at_s=1e5)  # an hour later the departed one is forgotten
    assert sum(1 for r in dp._replicas if r.replica_id == "replica-1") == 1


def test_ground_truth_of_the_live_replicas_uses_their_models() -> None:
    dp = DataPlane(load_vendor("vpp-router"), 1, noise=False)
    dp.add_replica("router", at_s=0.0)
    dp.add_replica("nat", at_s=0.0, model=load_vendor("cgnat"))
    live = dp.ground_truth(64, 1000, None, True)
    assert live < dp.ground_truth(64, 1000, 2, True)  # a slow member bounds the hash
    ndr = dp.ground_truth(64, 1000, None, True)
    warm = dp.forward(bidir(0.99 * ndr), 1e3, 1.0)
    assert loss_ratio(warm) == 0.0
    assert loss_ratio(dp.forward(bidir(1.05 * ndr), 2e3, 1.0)) > 0.0
