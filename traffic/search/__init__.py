"""Throughput search strategies behind the `traffic.model.Search` protocol.

`make_search(method)` returns one by the name a profile uses:

- ``"mlrsearch"``: RFC 9971 MLRsearch through the PyPI library (`MlrSearch`);
- ``"rfc2544-binary"``: RFC 2544 §26.1 binary search (`BinarySearch`);
- ``"tst009-binary"``: ETSI NFV-TST 009 §12.3.3 binary search with loss verification.

Warm start across a sweep: `SweepWarmStart` gives the hints a search takes.
"""

from __future__ import annotations

from traffic.errors import SearchError
from traffic.model import Search
from traffic.search.binary import BinarySearch
from traffic.search.mlr import MlrSearch
from traffic.search.warm import SweepWarmStart, scaled_hints

METHODS = ("mlrsearch", "rfc2544-binary", "tst009-binary")

__all__ = [
    "METHODS",
    "BinarySearch",
    "MlrSearch",
    "SweepWarmStart",
    "make_search",
    "scaled_hints",
]


def make_search(method: str, *, search_duration_max_s: float | None = None) -> Search:
    """The search strategy a profile names (`SearchSpec.method`)."""
    if method == "mlrsearch":
        if search_duration_max_s is None:
            return MlrSearch()
        return MlrSearch(search_duration_max_s=search_duration_max_s)
    if method == "rfc2544-binary":
        return BinarySearch(verification=False)
    if method == "tst009-binary":
        return BinarySearch(verification=True)
    raise SearchError(f"unknown search method {method!r}; use one of {', '.join(METHODS)}")
