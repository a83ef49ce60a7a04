"""Fixtures of the deploy tests."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest
from _compose import DEPLOY, REPO


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the documented steps (make-certs, provision, install-secrets) into a temporary
    deploy directory; returns the directory standing in for deploy/ for generated paths."""
    root = tmp_path_factory.mktemp("deploy-steps")
    me = pwd.getpwuid(os.geteuid()).pw_name
    env = dict(os.environ, MOSQUITTO_UID=me, COLLECTOR_UID=me, ALERTMANAGER_UID=me)
    steps = [
        [
            DEPLOY / "scripts" / "make-certs.sh", "-o", root / "certs", "mosquitto", "localhost",
            "nats1", "nats2", "nats3",
        ],
        [
            REPO / ".venv" / "bin" / "pantau", "provision", DEPLOY / "inventory" / "klaten.csv",
            "--out", root / "provisioned", "--broker-host", "mqtt.example",
            "--ca-cert", root / "certs" / "ca.crt",
            # the single-node stack's identity and the cluster example's two shards
            "--collector-user", "collector", "--collector-user", "collector-west",
            "--collector-user", "collector-east",
            # and the NATS example's two replicas
            "--collector-user", "collector-1", "--collector-user", "collector-2",
        ],
        [
            DEPLOY / "scripts" / "install-secrets.sh", "-o", root / "secrets",
            root / "provisioned", root / "certs",
        ],
        [
            sys.executable, DEPLOY / "scripts" / "nats-users.py", root / "provisioned",
            "-o", root / "secrets" / "nats" / "users.conf",
        ],
    ]  # fmt: skip
    for argv in steps:
        proc = subprocess.run(
            [str(a) for a in argv], capture_output=True, text=True, env=env, check=False
        )
        assert proc.returncode == 0, f"{argv[0]}: {proc.stderr}"
    return root
