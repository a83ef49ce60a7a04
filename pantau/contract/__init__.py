"""The contract layer: what agent, collector and dashboards agree on.

Stdlib and msgspec only, imports nothing else of pantau: the wire format (:mod:`.wire`), the
inventory (:mod:`.inventory`), the strict config base (:mod:`.config`) and the Klaten
reference fleet (:mod:`.klaten`).
"""
