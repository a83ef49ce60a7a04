"""The contract layer: what agent, collector and dashboards agree on.

Stdlib and msgspec only, imports nothing else of pantau: the wire format (:mod:`.wire`), the
inventory (:mod:`.inventory`), the strict config base (:mod:`.config`), the Klaten
reference fleet (:mod:`.klaten`) and the metric-family table (:mod:`.metrics`).
"""
