"""``pantau status-page``: the public page of a kabkota (see :mod:`pantau.tools.report`)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

from pantau.contract.inventory import InventoryError, load_inventory
from pantau.tools.report import Prometheus, ReportError, public_status, render_status_page


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pantau status-page",
        description="Public page of a kabkota: which kecamatan can record today. Nothing else "
        "(no station ids, devices or causes): safe to publish.",
    )
    p.add_argument("--prometheus", required=True, help="Prometheus URL")
    p.add_argument("--kabkota", required=True, help="kabupaten/kota code, e.g. 3310")
    p.add_argument("--name", default="", help="name to show, e.g. 'Kabupaten Klaten'")
    p.add_argument("--inventory", type=Path, help="inventory CSV (for the neighbours column)")
    p.add_argument("--lang", choices=["id", "en"], default="id")
    p.add_argument("--out", type=Path, required=True, help="HTML file to write")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        inventory = load_inventory(args.inventory) if args.inventory else []
        statuses = public_status(Prometheus(args.prometheus), args.kabkota, inventory)
        page = render_status_page(
            statuses, args.name or args.kabkota, args.lang, dt.datetime.now(dt.UTC).timestamp()
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(args.out)  # a web server never serves half a page
    except (ReportError, InventoryError) as exc:
        print(f"pantau status-page: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"pantau status-page: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    print(args.out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
