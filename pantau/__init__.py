"""pantau: live health monitoring for a fleet of e-KTP recording stations.

Packages:
- :mod:`pantau.wire`: wire contract v1 (topics, payloads), shared by agent and collector.
- :mod:`pantau.config`: strict TOML configuration helpers.
- :mod:`agent`, :mod:`collector`, :mod:`dashboards`: the three components.
"""

__version__ = "0.1.0"
