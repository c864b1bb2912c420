"""The embedded lab: an emulated testbed on loopback.

The lab stands in for real equipment.  Nothing here imports the controller (`bench`,
`traffic`, `analysis`): whatever the controller learns about the lab, it learns
through the protocols, as it would on a real testbed.

The parts, and what other parts of the lab call:

- `lab.clock.VirtualClock(time_scale)`: ``now_s()`` is lab time, shared by every
  server of one lab; ``wall_for(virtual_s)`` and ``sleep(virtual_s)`` convert back.
- `lab.dataplane`: the CNF model.  ``load_vendor(name) -> VendorModel`` (data in
  ``lab/vendors/*.yaml``), ``DataPlane(model, seed, port_speeds_bps, noise=True)`` with
  ``add_replica(id, at_s, mac=None, model=None)``, ``remove_replica(id, at_s)``,
  ``set_replicas(count, at_s)``, ``forward(lanes, start_s, duration_s, *, trial,
  trial_start_s, offered_counts) -> list[LaneOutcome]``, ``ground_truth(frame_sizes,
  flows, replicas, bidirectional, *, loss_ratio=0.0, noise=False, trial=None,
  steering="shared-front") -> pps`` and ``replica_counters()``.
- `lab.trex.TRexServer(dataplane, clock, ...)`: the TRex-compatible RPC server.
- `lab.control`: the loopback HTTP control channel for tests (ground truth, replicas,
  faults, the generator's owners and traffic).
- `lab.supervisor`: ``python -m lab up --state-dir DIR`` runs every service in
  `lab.supervisor.SERVICES` and publishes their endpoints in ``DIR/state.json``.
"""

from __future__ import annotations

__all__: list[str] = []
