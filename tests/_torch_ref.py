"""PyTorch reference outputs for the torch-comparison tests, live or recorded.

A test hands the numpy arrays it would give torch, and a function that builds
torch's result from them, to the ``torch_ref`` fixture::

    def build(torch, z, y):
        zt = torch.tensor(z, requires_grad=True)
        loss = torch.nn.functional.cross_entropy(zt, torch.tensor(y))
        loss.backward()
        return {"loss": loss, "grad": zt.grad}

    inp, ref = torch_ref.call("ce", build, z=z, y=y)
    got_loss, got_grad = softmax_cross_entropy(inp.z, inp.y, return_grad=True)
    # ... compare with ref.loss, ref.grad

``inp`` holds the inputs to feed to maxlik and ``ref`` torch's outputs (numpy).
Which ones depends on the mode:

* live (torch importable): ``build`` runs on the test's own inputs, as before.
  The recorded entry must also still hold: same input names, shapes and dtypes;
  same input values (else the recording is stale); and torch, run on the
  *stored* inputs, reproduces the stored outputs.
* replay (torch not importable, or ``MAXLIK_TORCH_REF=replay``): ``inp`` and
  ``ref`` are the inputs and outputs stored in ``data/torch_refs.npz`` (or in the
  file ``MAXLIK_TORCH_REF_FILE`` names). The stored inputs are used rather than
  the test's, so the check does not depend on numpy's random streams being the
  same as when the file was recorded; only their names, shapes and dtypes must
  agree with the test's.
* record (``MAXLIK_RECORD_TORCH=<path>``, torch required): like live, and every
  entry is collected; when the pytest session ends without failures they are
  written to <path>. Use ``scripts/record_torch_refs.py``, which runs both test
  files (a partial run would write a partial file) and then replays the result.

The file is read from the test directory (``Path(__file__).parent``), not from
the installed package, so nothing needs to be in the package data.

Entries are keyed by test file, test id (including parameters) and the key
given to ``call``. Identical arrays are stored once.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

DATA = Path(__file__).parent / "data" / "torch_refs.npz"
RECORD_ENV = "MAXLIK_RECORD_TORCH"
MODE_ENV = "MAXLIK_TORCH_REF"  # "replay" forces the recorded outputs even with torch
FILE_ENV = "MAXLIK_TORCH_REF_FILE"  # read the recording from here instead of DATA
FORMAT = 1
REGEN = "regenerate with: python scripts/record_torch_refs.py (needs torch)"

# How closely torch, re-run on the stored inputs, must reproduce the stored
# outputs (relative, and absolute relative to the array's largest magnitude).
# This is a check of the recording, not of maxlik: about 8 ulp in float32 and
# ~4500 in float64, room for a different CPU's vector code or reduction order.
_REPRO_RTOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}


def _torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _to_numpy(value):
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.array(value, copy=True)


def _describe(a):
    return None if a is None else (np.asarray(a).dtype.str, list(np.shape(a)))


def _equal(a, b):
    """Same dtype, shape and values (NaN equal to NaN); None only equals None."""
    if a is None or b is None:
        return a is b
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def _assert_reproduces(live, stored, what):
    live, stored = np.asarray(live), np.asarray(stored)
    assert live.dtype == stored.dtype and live.shape == stored.shape, (
        f"{what}: torch now gives {_describe(live)}, recorded {_describe(stored)}; {REGEN}")
    if live.dtype.kind != "f":
        np.testing.assert_array_equal(live, stored, err_msg=f"{what}; {REGEN}")
        return
    rtol = _REPRO_RTOL[live.dtype]
    finite = stored[np.isfinite(stored)]
    atol = rtol * float(np.max(np.abs(finite))) if finite.size else 0.0
    np.testing.assert_allclose(live, stored, rtol=rtol, atol=atol, equal_nan=True,
                               err_msg=f"{what}: torch no longer reproduces the recording; {REGEN}")
    # assert_allclose(equal_nan=True) already requires NaNs in the same places;
    # infinities must match exactly, including their sign.
    np.testing.assert_array_equal(np.isinf(live), np.isinf(stored), err_msg=what)


class _Store:
    """The recorded file: unique arrays plus a JSON index of entries."""

    def __init__(self):
        self.entries = {}  # key -> {"in": {name: id | None}, "out": {name: id}}
        self.arrays = {}  # id -> array
        self._by_hash = {}
        self.meta = {}

    # -- reading
    @classmethod
    def load(cls, path):
        s = cls()
        with np.load(path, allow_pickle=False) as f:
            index = json.loads(str(f["__index__"]))
            if index.get("format") != FORMAT:
                raise RuntimeError(f"{path}: unknown format {index.get('format')!r}; {REGEN}")
            s.entries = index["entries"]
            s.meta = index.get("meta", {})
            s.arrays = {k: f[k] for k in f.files if k != "__index__"}
        return s

    def get(self, key):
        e = self.entries.get(key)
        if e is None:
            return None
        inp = {n: (None if i is None else self.arrays[i]) for n, i in e["in"].items()}
        out = {n: self.arrays[i] for n, i in e["out"].items()}
        return inp, out

    # -- writing
    def _put_array(self, a):
        a = np.array(a, order="C", copy=True)  # (ascontiguousarray would make 0-d 1-d)
        h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode() + a.tobytes()).hexdigest()
        if h not in self._by_hash:
            name = f"a{len(self.arrays)}"
            self._by_hash[h] = name
            self.arrays[name] = a
        return self._by_hash[h]

    def add(self, key, inputs, outputs):
        if key in self.entries:
            raise RuntimeError(f"torch reference key {key!r} recorded twice")
        self.entries[key] = {
            "in": {n: (None if a is None else self._put_array(a)) for n, a in inputs.items()},
            "out": {n: self._put_array(a) for n, a in outputs.items()},
        }

    def save(self, path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        index = {"format": FORMAT, "meta": self.meta,
                 "entries": dict(sorted(self.entries.items()))}
        arrays = {"__index__": np.array(json.dumps(index, sort_keys=True)), **self.arrays}
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        os.close(fd)
        try:
            # An .npz that np.load reads, written by hand so that the same recording gives
            # the same bytes (np.savez_compressed stamps the current time on every member).
            with zipfile.ZipFile(tmp, "w") as zf:
                for name, a in arrays.items():
                    buf = io.BytesIO()
                    np.lib.format.write_array(buf, a, allow_pickle=False)
                    info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
                    zf.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED,
                                compresslevel=9)
            os.chmod(tmp, 0o644)  # mkstemp makes it private
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise


_loaded = {}  # path -> _Store (or the exception met loading it)
_recording = None  # the _Store being recorded this session


def _recorded():
    path = Path(os.environ.get(FILE_ENV) or DATA)
    if path not in _loaded:
        try:
            _loaded[path] = _Store.load(path)
        except FileNotFoundError as e:
            _loaded[path] = e
    s = _loaded[path]
    if isinstance(s, Exception):
        pytest.fail(f"recorded torch references {path} are missing; {REGEN}")
    return s


def _check_inputs(inputs):
    for n, a in inputs.items():
        if a is not None and not isinstance(a, (np.ndarray, np.generic)):
            raise TypeError(f"torch_ref input {n!r} must be a numpy array or scalar, or None;"
                            f" got {type(a).__name__} (pass constants through the closure)")


def _as_input(a):
    # 0-d arrays go back to numpy scalars (np.int64(3) stays a scalar target).
    return a[()] if isinstance(a, np.ndarray) and a.ndim == 0 else a


class TorchRef:
    def __init__(self, request, mode, torch):
        self._request = request
        self.mode = mode  # "live", "replay" or "record"
        self.torch = torch  # the torch module, or None in replay mode
        self._keys = set()

    def _key(self, key):
        node = self._request.node
        return f"{node.path.stem}::{node.name}::{key}"

    def _run(self, build, inputs):
        out = build(self.torch, **{n: _as_input(a) for n, a in inputs.items()})
        if not isinstance(out, dict) or not out:
            raise TypeError("the torch_ref build function must return a non-empty dict")
        return {n: _to_numpy(v) for n, v in out.items()}

    def call(self, key, build, **inputs):
        """(inputs, outputs) as namespaces of numpy values; see the module docstring."""
        _check_inputs(inputs)
        full = self._key(key)
        if full in self._keys:
            raise RuntimeError(f"torch_ref key {key!r} used twice in one test")
        self._keys.add(full)
        inputs = {n: (None if a is None else np.asarray(a)) for n, a in inputs.items()}

        if self.mode == "replay":
            inp, out = self._stored(full, inputs)
            # copies: tests sharing a stored array must not see each other's edits
            return (SimpleNamespace(**{n: _as_input(None if a is None else a.copy())
                                       for n, a in inp.items()}),
                    SimpleNamespace(**{n: a.copy() for n, a in out.items()}))

        out = self._run(build, inputs)
        if self.mode == "record":
            _recording.add(full, inputs, out)
        else:
            s_inp, s_out = self._stored(full, inputs)
            assert out.keys() == s_out.keys(), (
                f"{full}: torch outputs {sorted(out)} but recorded {sorted(s_out)}; {REGEN}")
            stale = [n for n, a in inputs.items() if not _equal(a, s_inp[n])]
            assert not stale, (
                f"{full}: the test's inputs {stale} differ from the recorded ones "
                f"(test changed, or numpy's random streams did); {REGEN}")
            for n in out:
                _assert_reproduces(out[n], s_out[n], f"{full} output {n!r}")
        return (SimpleNamespace(**{n: _as_input(a) for n, a in inputs.items()}),
                SimpleNamespace(**out))

    def _stored(self, full, inputs):
        got = _recorded().get(full)
        if got is None:
            pytest.fail(f"no recorded torch reference for {full}; {REGEN}")
        s_inp, s_out = got
        want = {n: _describe(inputs[n]) for n in sorted(inputs)}
        have = {n: _describe(s_inp[n]) for n in sorted(s_inp)}
        assert want == have, (
            f"{full}: the test passes inputs {want} but the recording has {have}; {REGEN}")
        return s_inp, s_out


def _write_recording(session, path):
    if session.testsfailed or session.shouldfail or session.shouldstop:
        print(f"\n{RECORD_ENV}: tests failed; {path} not written")
        return
    _recording.save(path)
    print(f"\n{RECORD_ENV}: wrote {len(_recording.entries)} entries,"
          f" {len(_recording.arrays)} arrays to {path}")


@pytest.fixture
def torch_ref(request):
    """Torch reference outputs: live with torch installed, else the recorded ones."""
    global _recording
    record_path = os.environ.get(RECORD_ENV)
    forced = os.environ.get(MODE_ENV, "")
    if forced not in ("", "replay"):
        raise RuntimeError(f"{MODE_ENV} must be unset or 'replay', got {forced!r}")
    if record_path:
        torch = _torch_or_none()
        if torch is None:
            pytest.fail(f"{RECORD_ENV} is set but torch is not importable")
        if forced:
            pytest.fail(f"{RECORD_ENV} and {MODE_ENV}=replay are exclusive")
        if os.environ.get("PYTEST_XDIST_WORKER"):
            pytest.fail(f"{RECORD_ENV}: record in one process (no pytest-xdist -n)")
        if _recording is None:
            _recording = _Store()
            _recording.meta = {"torch": torch.__version__, "numpy": np.__version__}
            request.config.add_cleanup(
                lambda session=request.session: _write_recording(session, record_path))
        return TorchRef(request, "record", torch)
    torch = None if forced == "replay" else _torch_or_none()
    return TorchRef(request, "replay" if torch is None else "live", torch)
