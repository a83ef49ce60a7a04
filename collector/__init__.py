"""pantau-collector: MQTT -> fleet state (inventory-aware) -> Prometheus /metrics and a board.

Public surface:

- :class:`pantau.collector.service.Collector` (``Collector(config).start()``/``.stop()``,
  ``.http_address``, ``.summary()``, ``.snapshot()``)
- :func:`pantau.collector.config.load` and :class:`pantau.collector.config.CollectorConfig`
- :class:`pantau.collector.errors.CollectorError` (the package's base exception)

Modules: ``config`` (TOML), ``fleet`` (pure state), ``exposition`` (fast /metrics text),
``mqtt`` (paho adapter), ``board`` (HTML), ``http`` (server), ``service`` (wiring), ``cli``
(``pantau-collector``). Test and bench support, never imported by those: ``testing.reference``
(prometheus-client rendering), ``testing.synthetic`` (synthetic fleets).
"""
