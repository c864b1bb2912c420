"""The embedded lab: an emulated testbed on loopback.

The lab stands in for real equipment.  It holds a seeded model of a CNF data plane
(`lab.dataplane`), a virtual clock shared by all its servers (`lab.clock`), and servers
that speak the protocols of real equipment: a TRex-compatible RPC server
(`lab.trex_server`), started and published by one supervisor process (`lab.supervisor`,
``python -m lab up``).

Nothing here imports the controller (`bench`, `traffic`, `analysis`): whatever the
controller learns about the lab, it learns through the protocols, as it would on a real
testbed.
"""

from __future__ import annotations

__all__: list[str] = []
