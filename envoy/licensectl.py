"""Build and run licensectl (the crate licensectl/) for the demo and the tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "licensectl"


def build() -> Path:
    """`cargo build --locked --release -p licensectl` (a no-op when up to date);
    $LICENSECTL names a binary to use instead."""
    if os.environ.get("LICENSECTL"):
        return Path(os.environ["LICENSECTL"]).resolve()
    proc = subprocess.run(["cargo", "build", "--locked", "--release", "-p", "licensectl"], cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"cargo build -p licensectl failed:\n{proc.stderr[-4000:]}")
    return BINARY


def run(binary: Path, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """licensectl ARGS; raises with its stderr when `check` and it exits 2 (an error)."""
    proc = subprocess.run([str(binary), *args], input=stdin, capture_output=True, text=True, timeout=60)
    if check and proc.returncode not in (0, 1):
        raise RuntimeError(f"licensectl {' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


def output(binary: Path, *args: str) -> str:
    """stdout of a licensectl command that must succeed (keygen, mint, jwks, revoke)."""
    proc = run(binary, *args, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"licensectl {' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout.strip()
