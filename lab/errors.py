"""Errors of the lab.  `LabError` is the root; anything else is a bug."""

from __future__ import annotations


class LabError(Exception):
    """A lab input (a vendor model, an option, a request) was not acceptable."""


class VendorModelError(LabError):
    """A vendor model file is missing or has a bad field."""
