"""pantau-collector: MQTT -> fleet state (inventory-aware) -> Prometheus /metrics and a board.

Public surface:

- :class:`collector.service.Collector` (``Collector(config).start()``/``.stop()``,
  ``.http_address``, ``.summary()``, ``.snapshot()``)
- :func:`collector.config.load` and :class:`collector.config.CollectorConfig`
- :class:`collector.errors.CollectorError` (the package's base exception)

Modules: ``config`` (TOML), ``fleet`` (pure state), ``exposition`` (fast /metrics text),
``reference`` (prometheus-client rendering for tests and benches), ``mqtt`` (paho adapter),
``board`` (HTML), ``http`` (server), ``service`` (wiring), ``cli`` (``pantau-collector``),
``synthetic`` (fleets for benches and demos).
"""
