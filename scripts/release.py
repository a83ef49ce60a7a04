#!/usr/bin/env python3
"""Build pantau's release artefacts: the sdist, the wheel and the offline agent bundles.

    python scripts/release.py [--out DIR] [--cache DIR] [--bundle linux-x86_64|windows-x64 ...]
                              [--python 3.11 ...] [--refresh] [--no-archive]

Run with a Python that has ``build``, ``packaging`` and ``pip`` (the ``dev`` extra); needs a
package index once per requirement set (the downloads are cached, see ``--cache``).

What it makes, in ``--out`` (default ``dist/``):

- ``pantau-VERSION.tar.gz`` and ``pantau-VERSION-py3-none-any.whl``: the version is
  ``pantau.__version__`` (``pantau/__init__.py``, the one source; pyproject.toml reads it too).
  The wheel is built from the sdist, so a file missing from the sdist fails the build, and it
  must hold nothing but the ``pantau`` package.
- ``pantau-agent-VERSION-linux-x86_64/`` (+ ``.tar.gz``) and ``pantau-agent-VERSION-windows-x64/``
  (+ ``.zip``): everything a recording PC without internet needs: the pantau wheel and every
  binary wheel the agent needs on that platform for each supported Python (``wheels/``), one
  pinned, hash-checked requirements file per Python (``requirements-cp3XY.txt``), pip itself as
  a wheel (the installer runs it from the wheel, so no ``ensurepip``/``python3-venv`` is
  needed), the service definition, the install/uninstall scripts and ``SHA256SUMS``.

Why the requirements are resolved here and not by pip alone: ``pip download --platform`` picks
wheels for the target platform but evaluates environment markers (``sys_platform == 'win32'``)
for the machine it runs on. So the agent's requirements are evaluated for the target with
``packaging``, then each downloaded wheel's own requirements are checked for the target too, and
anything missing is downloaded, until the set is closed.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
#: Pythons a station may have: Debian 12 (3.11), Ubuntu 24.04 (3.12), python.org's current
#: Windows installers (3.11-3.13). Each gets its own requirements file in every bundle.
PYTHONS = ("3.11", "3.12", "3.13")
#: WinSW, the Windows service wrapper: not on any package index, so the bundle names the exact
#: release file and its SHA-256 and install.ps1 refuses any other executable.
WINSW_VERSION = "2.12.0"
WINSW_ASSET = "WinSW-x64.exe"
WINSW_SHA256 = "05b82d46ad331cc16bdc00de5c6332c1ef818df8ceefcd49c726553209b3a0da"


@dataclass(frozen=True)
class Target:
    name: str
    #: pip ``--platform`` tags (pip also accepts older manylinux tags for a manylinux_2_X one).
    pip_platforms: tuple[str, ...]
    markers: dict[str, str]
    files: tuple[tuple[str, str], ...]  # (repository path, path in the bundle)
    archive: str  # "tar.gz" or "zip"


TARGETS = {
    "linux-x86_64": Target(
        "linux-x86_64",
        # glibc 2.17 or newer: every Debian/Ubuntu/RHEL a station may run.
        ("manylinux_2_17_x86_64",),
        {
            "os_name": "posix",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": "x86_64",
        },
        (
            ("deploy/systemd/install.sh", "install.sh"),
            ("deploy/systemd/uninstall.sh", "uninstall.sh"),
            ("deploy/systemd/pantau-agent.service", "pantau-agent.service"),
        ),
        "tar.gz",
    ),
    "windows-x64": Target(
        "windows-x64",
        ("win_amd64",),
        {
            "os_name": "nt",
            "sys_platform": "win32",
            "platform_system": "Windows",
            "platform_machine": "AMD64",
        },
        (
            ("deploy/windows/install.ps1", "install.ps1"),
            ("deploy/windows/uninstall.ps1", "uninstall.ps1"),
            ("deploy/windows/pantau-agent.xml", "pantau-agent.xml"),
            ("deploy/windows/README.md", "README-windows.md"),
        ),
        "zip",
    ),
}


class ReleaseError(Exception):
    pass


def version() -> str:
    """``pantau.__version__``, read without importing pantau."""
    tree = ast.parse((REPO / "pantau" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            if isinstance(value, str):
                return str(Version(value))
    raise ReleaseError("pantau/__init__.py has no __version__ = '...'")


def environment(target: Target, python: str) -> dict[str, str]:
    """PEP 508 marker environment of a CPython ``python`` on ``target``."""
    return {
        **target.markers,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "python_version": python,
        "python_full_version": f"{python}.0",
        "implementation_version": f"{python}.0",
        "platform_release": "",
        "platform_version": "",
    }


def _applies(req: Requirement, env: dict[str, str], extras: tuple[str, ...]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**env, "extra": e}) for e in (*extras, ""))


def wheel_metadata(wheel: Path) -> tuple[str, str, list[Requirement]]:
    """(name, version, Requires-Dist) of a wheel."""
    with zipfile.ZipFile(wheel) as zf:
        [meta] = [n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        msg = HeaderParser().parsestr(zf.read(meta).decode("utf-8"))
    reqs = [Requirement(r) for r in msg.get_all("Requires-Dist") or []]
    return str(msg["Name"]), str(msg["Version"]), reqs


def agent_requirements(pantau_wheel: Path, env: dict[str, str]) -> list[Requirement]:
    """What ``pantau[agent]`` needs on the target (markers evaluated for the target)."""
    _name, _version, reqs = wheel_metadata(pantau_wheel)
    return [r for r in reqs if _applies(r, env, ("agent",))]


# --------------------------------------------------------------------------- build


def run(cmd: list[str], **kw: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def build_dists(out: Path, ver: str) -> tuple[Path, Path]:
    """sdist, then the wheel from the sdist; checks names, version and the wheel's contents."""
    with tempfile.TemporaryDirectory(prefix="pantau-build-") as tmp:
        run([sys.executable, "-m", "build", "--outdir", tmp, str(REPO)])
        made = sorted(Path(tmp).iterdir())
        sdists = [p for p in made if p.name.endswith(".tar.gz")]
        wheels = [p for p in made if p.suffix == ".whl"]
        if len(sdists) != 1 or len(wheels) != 1:
            raise ReleaseError(f"build made {[p.name for p in made]}, expected one sdist and wheel")
        out.mkdir(parents=True, exist_ok=True)
        sdist = out / sdists[0].name
        wheel = out / wheels[0].name
        shutil.copyfile(sdists[0], sdist)
        shutil.copyfile(wheels[0], wheel)
    if sdist.name != f"pantau-{ver}.tar.gz":
        raise ReleaseError(f"sdist {sdist.name}: expected version {ver}")
    name, wver, _build, _tags = parse_wheel_filename(wheel.name)
    if name != "pantau" or str(wver) != ver:
        raise ReleaseError(f"wheel {wheel.name}: expected pantau {ver}")
    check_wheel(wheel, ver)
    return sdist, wheel


def check_wheel(wheel: Path, ver: str) -> None:
    """The wheel installs the ``pantau`` package and its metadata, nothing else."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    tops = {n.split("/", 1)[0] for n in names}
    if tops != {"pantau", f"pantau-{ver}.dist-info"}:
        raise ReleaseError(f"{wheel.name}: top-level entries {sorted(tops)}, expected only pantau")
    for needed in ("pantau/agent/cli.py", "pantau/contract/wire.py", "pantau/agent/py.typed"):
        if needed not in names:
            raise ReleaseError(f"{wheel.name}: {needed} missing")


# --------------------------------------------------------------------------- resolve


def _download(reqs: list[str], target: Target, python: str, dest: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--no-deps",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        python,
        "--dest",
        str(dest),
    ]
    for p in target.pip_platforms:
        cmd += ["--platform", p]
    run([*cmd, *reqs])


def _wheels_by_name(folder: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for whl in sorted(folder.glob("*.whl")):
        name = canonicalize_name(parse_wheel_filename(whl.name)[0])
        out.setdefault(name, []).append(whl)
    return out


def resolve(
    pantau_wheel: Path, target: Target, python: str, cache: Path, refresh: bool
) -> dict[str, Path]:
    """Every wheel ``pantau[agent]`` needs for ``python`` on ``target``: name -> wheel file.

    Downloads one requirement at a time without pip's own dependency resolution (its markers
    would be evaluated for this machine), walks each wheel's requirements for the target, and
    repeats until nothing is missing. Cached in ``cache`` under a key of the requirement set,
    target and Python: a second run needs no network."""
    env = environment(target, python)
    top = agent_requirements(pantau_wheel, env)
    key_src = json.dumps(
        [target.name, target.pip_platforms, python, sorted(str(r) for r in top)], sort_keys=True
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    folder = cache / f"{target.name}-cp{python.replace('.', '')}-{key}"
    done = folder / ".complete"
    if refresh and folder.exists():
        shutil.rmtree(folder)
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        _download([*(str(r) for r in top), "pip"], target, python, folder)
    for _round in range(20):
        have = _wheels_by_name(folder)
        chosen: dict[str, Path] = {}
        missing: list[str] = []
        pending = [*top, Requirement("pip")]
        seen: set[str] = set()
        while pending:
            req = pending.pop()
            name = canonicalize_name(req.name)
            files = [
                w
                for w in have.get(name, [])
                if req.specifier.contains(str(parse_wheel_filename(w.name)[1]), prereleases=True)
            ]
            if not files:
                missing.append(str(Requirement(f"{req.name}{req.specifier}")))
                continue
            if name in seen:
                continue
            seen.add(name)
            best = max(files, key=lambda w: parse_wheel_filename(w.name)[1])
            chosen[name] = best
            _n, _v, sub = wheel_metadata(best)
            pending += [r for r in sub if _applies(r, env, tuple(req.extras))]
        if not missing:
            done.write_text(key_src + "\n")
            return chosen
        if done.exists():
            raise ReleaseError(f"cache {folder} is incomplete ({missing}): rerun with --refresh")
        _download(sorted(set(missing)), target, python, folder)
    raise ReleaseError(f"{target.name} cp{python}: requirements do not close: {missing}")


# --------------------------------------------------------------------------- bundle


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def bundle(
    pantau_wheel: Path, target: Target, pythons: tuple[str, ...], out: Path, cache: Path, **kw: bool
) -> Path:
    ver = version()
    root = out / f"pantau-agent-{ver}-{target.name}"
    if root.exists():
        shutil.rmtree(root)
    (root / "wheels").mkdir(parents=True)
    shutil.copyfile(pantau_wheel, root / "wheels" / pantau_wheel.name)
    locks: dict[str, dict[str, Path]] = {}
    for python in pythons:
        chosen = resolve(pantau_wheel, target, python, cache, kw.get("refresh", False))
        locks[python] = chosen
        for name, whl in chosen.items():
            # pip runs the install from its wheel (tools/); it is not installed into the venv.
            dst = root / ("tools" if name == "pip" else "wheels") / whl.name
            dst.parent.mkdir(exist_ok=True)
            if not dst.exists():
                shutil.copyfile(whl, dst)
    for python, chosen in locks.items():
        tag = f"cp{python.replace('.', '')}"
        lines = [
            f"# pantau-agent {ver} for CPython {python} on {target.name}: every wheel is in",
            "# wheels/ next to this file; install with pip --no-index --require-hashes.",
            f"pantau[agent]=={ver} --hash=sha256:{sha256(pantau_wheel)}",
        ]
        for name, whl in sorted(chosen.items()):
            if name == "pip":
                continue
            v = parse_wheel_filename(whl.name)[1]
            lines.append(f"{name}=={v} --hash=sha256:{sha256(whl)}")
        (root / f"requirements-{tag}.txt").write_text("\n".join(lines) + "\n")
    for src, dst in target.files:
        shutil.copy2(REPO / src, root / dst)
    manifest = {
        "name": "pantau-agent",
        "version": ver,
        "platform": target.name,
        "pythons": list(pythons),
        "wheels": sorted(p.name for p in (root / "wheels").iterdir()),
        "pip": sorted(p.name for p in (root / "tools").iterdir()),
    }
    if target.name.startswith("windows"):
        manifest["winsw"] = {
            "version": WINSW_VERSION,
            "file": WINSW_ASSET,
            "sha256": WINSW_SHA256,
            "install_as": "pantau-agent.exe",
        }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (root / "README.txt").write_text(_readme(target, ver, pythons))
    sums = [
        f"{sha256(p)}  {p.relative_to(root).as_posix()}"
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "SHA256SUMS"
    ]
    (root / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    if not kw.get("no_archive", False):
        _archive(root, target.archive)
    return root


def _readme(target: Target, ver: str, pythons: tuple[str, ...]) -> str:
    pys = ", ".join(pythons)
    if target.name.startswith("windows"):
        steps = f"""\
Windows 10 / 11 or Windows Server 2016+ (64-bit), CPython {pys} (64-bit, python.org installer,
"for all users"). In an Administrator PowerShell, in this folder:

  1. Put WinSW next to this file as {WINSW_ASSET} (WinSW {WINSW_VERSION}, SHA-256
     {WINSW_SHA256}); install.ps1 checks the hash.
  2. .\\install.ps1 -Station D:\\3310-juwiring-01      (the station's folder from `pantau provision`)
     Upgrade: .\\install.ps1 (no -Station: the installed config, password and spool are kept)
  3. Uninstall: .\\uninstall.ps1 [-Purge]  (-Purge also deletes C:\\ProgramData\\pantau)

If scripts are blocked: powershell -ExecutionPolicy Bypass -File .\\install.ps1 -Station ...
Details: README-windows.md."""
    else:
        steps = f"""\
Linux x86_64 with glibc 2.17+ and systemd, CPython {pys} (python3; no python3-venv or pip
needed), libusb-1.0 (Debian/Ubuntu: libusb-1.0-0). As root, in this folder:

  1. sudo ./install.sh --station /media/usb/3310-juwiring-01   (the folder from `pantau provision`)
     Upgrade: sudo ./install.sh   (the config in /etc/pantau and the spool are kept)
  2. Uninstall: sudo ./uninstall.sh [--purge]   (--purge also deletes /etc/pantau and the spool)"""
    return f"""\
pantau-agent {ver}, offline bundle for {target.name}
{"=" * (40 + len(ver) + len(target.name))}

Nothing here needs a network: every wheel is in wheels/, pip itself in tools/.

{steps}

Check the files first if they travelled: sha256sum -c SHA256SUMS (Linux) or compare
Get-FileHash output with SHA256SUMS (Windows).
"""


def _archive(root: Path, kind: str) -> Path:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if kind == "zip":
        dest = root.with_name(root.name + ".zip")
        with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in files:
                zf.write(p, f"{root.name}/{p.relative_to(root).as_posix()}")
        return dest
    dest = root.with_name(root.name + ".tar.gz")
    with tarfile.open(dest, "w:gz") as tf:
        for p in files:
            info = tf.gettarinfo(str(p), f"{root.name}/{p.relative_to(root).as_posix()}")
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with p.open("rb") as fh:
                tf.addfile(info, io.BufferedReader(fh))  # type: ignore[arg-type]
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/release", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="output folder (dist/)")
    default_cache = Path(
        os.environ.get("PANTAU_RELEASE_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pantau-release"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=default_cache,
        help=f"downloaded wheels, keyed by requirement set (default {default_cache})",
    )
    parser.add_argument("--bundle", action="append", choices=sorted(TARGETS), default=None)
    parser.add_argument("--python", action="append", choices=PYTHONS, default=None)
    parser.add_argument("--refresh", action="store_true", help="download again (newer versions)")
    parser.add_argument("--no-archive", action="store_true", help="folders only, no .tar.gz/.zip")
    args = parser.parse_args(argv)
    try:
        ver = version()
        sdist, wheel = build_dists(args.out, ver)
        print(f"sdist  {sdist}\nwheel  {wheel}")
        for name in args.bundle or sorted(TARGETS):
            root = bundle(
                wheel,
                TARGETS[name],
                tuple(args.python or PYTHONS),
                args.out,
                args.cache,
                refresh=args.refresh,
                no_archive=args.no_archive,
            )
            print(f"bundle {root}")
    except ReleaseError as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(
            f"release: {' '.join(map(str, exc.cmd))} failed (exit {exc.returncode})",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
