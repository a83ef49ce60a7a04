"""Synthetic fleets for benchmarks, tests and demos (pure; no I/O).

:func:`make_inventory` builds ``n`` inventory entries spread over Klaten-like kecamatan and
:func:`make_state` a realistic ~1 KB state for one of them (four peripherals, login probes, host
health with two disks), so benchmarks measure what a real fleet would send.
"""

from __future__ import annotations

from pantau.contract import wire
from pantau.contract.inventory import InventoryEntry
from pantau.contract.vocabulary import DEVICE_CLASSES, PeripheralReason, ProbeReason

KECAMATAN = (
    "Bayat", "Cawas", "Ceper", "Delanggu", "Gantiwarno", "Jatinom", "Jogonalan", "Juwiring",
    "Kalikotes", "Karanganom", "Karangdowo", "Karangnongko", "Kebonarum", "Kemalang",
    "Klaten Selatan", "Klaten Tengah", "Klaten Utara", "Manisrenggo", "Ngawen", "Pedan",
    "Polanharjo", "Prambanan", "Trucuk", "Tulung", "Wedi", "Wonosari",
)  # fmt: skip
CLASSES = DEVICE_CLASSES


def make_inventory(n: int, provinsi: str = "33") -> list[InventoryEntry]:
    """``n`` stations: 26 kecamatan per kabkota, two stations per kecamatan."""
    out: list[InventoryEntry] = []
    for i in range(n):
        kab = f"{provinsi}{10 + i // 52:02d}"
        kec = KECAMATAN[(i // 2) % len(KECAMATAN)]
        slug = kec.lower().replace(" ", "-")
        station = f"{kab}-{slug}-{i:05d}"
        out.append(InventoryEntry(station, provinsi, kab, kec, CLASSES))
    return out


def make_state(
    entry: InventoryEntry,
    *,
    seq: int = 1,
    ts: float = 1_790_000_000.0,
    session: str = "s1",
    missing: tuple[str, ...] = (),
    login_up: bool = True,
) -> wire.State:
    """A realistic full state for ``entry`` with ``missing`` device classes absent."""
    peripherals = tuple(
        wire.Peripheral(
            device_class=cls,
            present=cls not in missing,
            expected=1,
            found=0 if cls in missing else 1,
            devices=()
            if cls in missing
            else (
                wire.Device(
                    vid=0x04A9 + k,
                    pid=0x3200 + k,
                    bus=1,
                    port=f"1-{k + 2}",
                    manufacturer="Vendor",
                    product=f"{cls} device",
                ),
            ),
            reason=PeripheralReason.MISSING.value
            if cls in missing
            else "",  # plain str, as decoded
        )
        for k, cls in enumerate(entry.device_classes)
    )
    return wire.State(
        station=entry.station,
        agent_version="0.1.0",
        session=session,
        seq=seq,
        ts=ts,
        os="Windows 10 (10.0.19045)",
        kecamatan=entry.kecamatan,
        interval_s=30.0,
        peripherals=peripherals,
        probes=(
            wire.Probe(
                target="login",
                kind="https",
                up=login_up,
                duration_s=0.042,
                reason=(ProbeReason.OK if login_up else ProbeReason.TIMEOUT).value,
            ),
            wire.Probe(target="regional-server", kind="tcp", up=True, duration_s=0.012),
        ),
        host=wire.Host(
            cpu_ratio=0.125,
            mem_available_bytes=2_147_483_648,
            mem_total_bytes=8_589_934_592,
            boot_ts=ts - 3600.0,
            agent_start_ts=ts - 3500.0,
            disks=(
                wire.Disk(mount="C:\\", free_bytes=53_687_091_200, size_bytes=256_060_514_304),
                wire.Disk(mount="D:\\", free_bytes=107_374_182_400, size_bytes=512_110_190_592),
            ),
        ),
        checks=(
            wire.CheckRun(name="usb", ok=True, duration_s=0.0004),
            wire.CheckRun(name="login", ok=True, duration_s=0.05),
            wire.CheckRun(name="host", ok=True, duration_s=0.0001),
        ),
    )


def state_topic(entry: InventoryEntry) -> str:
    return wire.topic(entry.provinsi, entry.kabkota, entry.station, "state")
