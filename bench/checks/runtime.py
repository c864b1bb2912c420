"""Runtime checks on a cluster (registered once the cluster driver is in place)."""
