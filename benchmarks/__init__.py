"""Benchmarks of vbounds against the alternatives (``python -m benchmarks.run``).

Each module measures one thing and exposes ``run(quick: bool) -> dict`` with a ``rows``
list for the printed table. Alternatives run interleaved in one process and are
reported as medians and ratios; tests never assert timings.
"""
