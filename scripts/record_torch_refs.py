#!/usr/bin/env python
"""Re-record the PyTorch reference outputs in tests/data/torch_refs.npz.

    python scripts/record_torch_refs.py            # needs torch importable
    python scripts/record_torch_refs.py --check    # record to a temp file, compare, keep the old

The torch-comparison tests (tests/test_losses.py, tests/test_divergences.py)
take torch's outputs through the ``torch_ref`` fixture (tests/_torch_ref.py).
This script runs exactly those tests with MAXLIK_RECORD_TORCH=<tmp file>, so the
recording is whatever the tests hand to torch, inputs included; the file is
written only if every test passed. It then re-runs the tests in replay mode
(MAXLIK_TORCH_REF=replay: recorded inputs and outputs, torch unused) against the
new file, and only then moves it into place.

Run it after changing a torch-comparison test, or when the live tests report
that the recording is stale.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["tests/test_losses.py", "tests/test_divergences.py"]
TARGET = ROOT / "tests" / "data" / "torch_refs.npz"
sys.path.insert(0, str(ROOT / "tests"))
import _torch_ref  # noqa: E402  (the recording's reader, tests/_torch_ref.py)


def _pytest(env_extra):
    env = dict(os.environ)
    env.pop("MAXLIK_RECORD_TORCH", None)
    env.pop("MAXLIK_TORCH_REF", None)
    env.pop("MAXLIK_TORCH_REF_FILE", None)
    env.update(env_extra)
    # -p no:cacheprovider: leave .pytest_cache (last-failed state) alone
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS]
    print("+", " ".join(f"{k}={v}" for k, v in env_extra.items()), " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="record to a temporary file and report whether it matches the "
                         "committed one (arrays compared exactly); do not replace it")
    ap.add_argument("--output", type=Path, default=TARGET, help=f"default: {TARGET}")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.exit("torch is not importable from this Python; recording needs it")
    print(f"torch {torch.__version__}, {sys.executable}")

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d) / "torch_refs.npz"
        if _pytest({"MAXLIK_RECORD_TORCH": str(tmp)}) != 0 or not tmp.exists():
            sys.exit("recording failed (tests failed?): nothing written")
        # the new file on its own: every test replays from it, torch unused
        if _pytest({"MAXLIK_TORCH_REF": "replay", "MAXLIK_TORCH_REF_FILE": str(tmp)}) != 0:
            sys.exit("replay of the new recording failed: nothing written")
        new = _torch_ref._Store.load(tmp)
        size = tmp.stat().st_size
        print(f"{len(new.entries)} entries, {len(new.arrays)} distinct arrays, "
              f"{size / 1024:.0f} KiB")
        if args.check:
            if not args.output.exists():
                sys.exit(f"{args.output} does not exist")
            old = _torch_ref._Store.load(args.output)
            diff = _compare(old, new)
            for line in diff:
                print(line)
            sys.exit(1 if diff else 0)
        if args.output.exists() and args.output.read_bytes() == tmp.read_bytes():
            print(f"{args.output} unchanged")
            return
        args.output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp, args.output)
        print(f"wrote {args.output}")


def _compare(old, new):
    """Differences between two recordings, entry by entry (exact comparison)."""
    import numpy as np

    out = []
    for key in sorted(set(old.entries) | set(new.entries)):
        a, b = old.get(key), new.get(key)
        if a is None or b is None:
            out.append(f"{'added' if a is None else 'removed'}: {key}")
            continue
        for part, x, y in (("input", a[0], b[0]), ("output", a[1], b[1])):
            for n in sorted(set(x) | set(y)):
                u, v = x.get(n), y.get(n)
                same = (u is None and v is None) or (
                    u is not None and v is not None and u.dtype == v.dtype
                    and u.shape == v.shape and np.array_equal(u, v, equal_nan=u.dtype.kind == "f"))
                if not same:
                    out.append(f"differs: {key} {part} {n!r}")
    return out


if __name__ == "__main__":
    main()
