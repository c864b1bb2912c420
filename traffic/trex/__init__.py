"""The TRex generator: `traffic.trex.driver.TrexGenerator` drives a worker subprocess
(`traffic.trex.worker`) over a JSON-lines channel (`traffic.trex.channel`).

This package module imports nothing, so that the worker starts without the
controller's modules (pyzmq, hdrh) loaded ahead of the client library's own.
"""
