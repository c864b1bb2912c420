"""Disruption under traffic (registered once the traffic driver is in place)."""
