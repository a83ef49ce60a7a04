"""Real-server test harness for pantau (fixtures are registered in tests/conftest.py).

Import from here as ``harness`` (tests/ is on sys.path via pytest's rootdir conftest), e.g.
``from harness import MqttClient, PANTAU_ACL``. Modules:

- :mod:`harness.mosquitto`: :class:`Mosquitto` broker (auth, ACL, TLS listener, restart, log).
- :mod:`harness.mqtt`: :class:`MqttClient`, a synchronous paho 2.x wrapper with timeouts.
- :mod:`harness.certs`: :class:`TlsCerts` throwaway CA and good/bad server certificates.
- :mod:`harness.prom`: :class:`Prometheus`, :class:`Alertmanager`, :class:`WebhookReceiver`.
- :mod:`harness.usb`: :class:`UsbBus` on umockdev (read its docstring: libusb ordering rule).
- :mod:`harness.http`: :class:`LocalHttpServer`, a tiny HTTP/HTTPS server.
- :mod:`harness.netproxy`: :class:`LinkProxy`, a counting TCP proxy that emulates a thin line
  (bandwidth, latency, stalls, a silent blackhole).
- :mod:`harness.procs`: free ports, process start/stop with no leaks, :class:`HarnessError`.
"""

from .certs import TlsCerts, make_tls_certs
from .http import LocalHttpServer
from .mosquitto import DEFAULT_USERS, PANTAU_ACL, Mosquitto
from .mqtt import MqttClient
from .netproxy import LinkProxy, Shape
from .procs import HarnessError, free_port
from .prom import Alertmanager, Prometheus, WebhookReceiver
from .usb import UsbBus, UsbDevice

__all__ = [
    "DEFAULT_USERS",
    "PANTAU_ACL",
    "Alertmanager",
    "HarnessError",
    "LinkProxy",
    "LocalHttpServer",
    "Mosquitto",
    "MqttClient",
    "Prometheus",
    "Shape",
    "TlsCerts",
    "UsbBus",
    "UsbDevice",
    "WebhookReceiver",
    "free_port",
    "make_tls_certs",
]
