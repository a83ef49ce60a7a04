"""pantau: live health monitoring for a fleet of e-KTP recording stations.

Packages:
- :mod:`pantau.contract.wire`: wire contract v1 (topics, payloads), shared by agent and collector.
- :mod:`pantau.contract.config`: strict TOML configuration helpers.
- :mod:`pantau.agent`, :mod:`pantau.collector`, :mod:`pantau.dashboards`: the three components.
"""

__version__ = "0.1.0"
