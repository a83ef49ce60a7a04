"""Test and bench support for the collector; never imported by the running collector.

- :mod:`.reference`: the same /metrics families rendered with prometheus-client, the oracle the
  fast renderer is compared with (tests) and the baseline of ``bench/collector_render.py``;
- :mod:`.synthetic`: synthetic fleets (inventory and realistic states) for tests and benches.

An import-linter contract (pyproject.toml) keeps the service's modules from importing it.
"""
