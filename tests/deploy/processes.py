"""Start-ups run as a deployer runs them: ``shms serve`` or ``uvicorn app:app`` in a subprocess
with a chosen environment, timed, with everything they printed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SHMS = str(Path(sys.executable).parent / "shms")
UVICORN = [sys.executable, "-m", "uvicorn", "app:app"]


@dataclass
class Run:
    code: int
    output: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.strip()]


PRODUCTION_SECRETS = {
    "SHMS_DEIDENTIFY_SECRET": "test-only-deidentify-secret-of-production",
    "SHMS_MASTER_KEY": "dGVzdC1vbmx5LW1hc3Rlci1rZXktb2YtcHJvZHVjdGk=",  # 32 bytes, tests only
}
"""The secrets production refuses to run without (their defaults are published), as the
environment names them; ``production_secrets()`` gives them as ``Settings`` arguments."""


def production_secrets() -> dict[str, Any]:
    return {name.lower(): value for name, value in PRODUCTION_SECRETS.items()}


def environment(**settings: str) -> dict[str, str]:
    """This process's environment without any SHMS setting, plus ``settings``: what the test
    configures is all the server sees (a developer's MONGODB_URL must not leak in)."""
    names = {"MONGODB_URL", "MONGODB_DB", "REDIS_URL", "WEB_CONCURRENCY"}
    base = {k: v for k, v in os.environ.items() if k not in names and not k.startswith("SHMS_")}
    # The checkout under test, whatever the editable install last mapped.
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), base.get("PYTHONPATH")]))
    return {**base, **settings}


def run(argv: Sequence[str], env: dict[str, str], timeout: float = 60) -> Run:
    """Run to its end (a start-up that fails must end by itself), stdout and stderr together."""
    started = time.monotonic()
    done = subprocess.run(
        list(argv),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout.decode(), time.monotonic() - started)
