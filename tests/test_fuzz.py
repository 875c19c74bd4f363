"""Fuzzing the public API: random shapes, dtypes, strides and special values.

Every call must either return a correct result (shape, dtype, and for the
scipy-equivalent functions the values) or raise TypeError / ValueError
(MemoryError for requests that cannot fit). A crash of the process must fail
the test, not kill pytest: the calls run in a child process
(tests/_fuzz_worker.py) that is restarted after a crash; the case that was
running is reported.

Hypothesis draws batches of case *descriptions* (shape, dtype, layout, special
values, seed); the child builds the arrays, so strides survive. The profile is
fixed (derandomize=True, bounded examples) so the run is reproducible and
takes well under a minute.
"""
from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

WORKER = os.path.join(os.path.dirname(__file__), "_fuzz_worker.py")
BATCH = 25
FUZZ = settings(
    derandomize=True,
    max_examples=int(os.environ.get("MAXLIK_FUZZ_EXAMPLES", "20")),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
    # No shrinking: every verdict already names its case, and shrinking a
    # batch costs one child round trip per attempt.
    phases=[Phase.explicit, Phase.generate],
)
TIMEOUT = float(os.environ.get("MAXLIK_FUZZ_TIMEOUT", "120"))


class Worker:
    """A long-lived child process that runs batches of cases."""

    def __init__(self):
        self.proc = None

    def _start(self):
        env = dict(os.environ, MAXLIK_NUM_THREADS="2", PYTHONFAULTHANDLER="1")
        self.proc = subprocess.Popen([sys.executable, WORKER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.stderr = []
        self._reader = threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr),
                                        daemon=True)
        self._reader.start()

    def _close_pipes(self):
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass

    def _read(self, n, timer):
        buf = b""
        while len(buf) < n:
            chunk = self.proc.stdout.read(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def run(self, cases):
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        data = pickle.dumps(cases)
        self.proc.stdin.write(struct.pack("<Q", len(data)) + data)
        self.proc.stdin.flush()
        timer = threading.Timer(TIMEOUT, self.proc.kill)
        timer.start()
        current = None
        try:
            while True:
                head = self._read(8, timer)
                if head is None:
                    break
                (n,) = struct.unpack("<Q", head)
                msg = pickle.loads(self._read(n, timer))
                if msg[0] == "start":
                    current = msg[1]
                else:
                    return msg[1]
        finally:
            timer.cancel()
        # the child died (crash, abort, sanitizer report) or hung
        rc = self.proc.wait()
        self._reader.join(timeout=5)
        err = b"".join(self.stderr).decode(errors="replace")[-4000:]
        self._close_pipes()
        self.proc = None
        case = cases[current] if current is not None else None
        what = "timed out" if rc == -9 else f"crashed with exit code {rc}"
        pytest.fail(f"the child {what} while running case {current}: {case!r}\n{err}")

    def close(self):
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        self._close_pipes()
        self.proc = None


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.close()


# ----------------------------------------------------------------------------- strategies
DTYPES = ["float64", "float32", "float16", "int64", "int32", "uint8", "bool", "object", "complex"]
CLEAN_DTYPES = ["float64", "float32", "float16", "int64", "bool"]
LAYOUTS = ["C", "F", "reversed", "slice", "colslice", "readonly"]
SPECIAL_NAMES = ["nan", "inf", "-inf", "huge", "-huge", "max", "subnormal", "-0", "zero"]
N_ROWS = [0, 1, 2, 3, 7, 64, 513, 1100]  # 513 and 1100 cross the 512-row block edge
N_COLS = [1, 2, 3, 5, 9, 17]


@st.composite
def arrays(draw, shape, *, dtypes=DTYPES, values="normal", specials=True, **extra):
    # mostly well-formed data, so that calls get past validation into the kernels
    dirty = specials and draw(st.integers(0, 3)) == 0
    sp = ()
    if dirty:
        sp = tuple(draw(st.lists(st.tuples(st.sampled_from(SPECIAL_NAMES), st.integers(1, 3)),
                                 min_size=1, max_size=3)))
    dtype = draw(st.sampled_from(dtypes)) if draw(st.integers(0, 2)) == 0 else "float64"
    return dict(shape=tuple(shape), dtype=dtype, layout=draw(st.sampled_from(LAYOUTS)),
                values=values, specials=sp,
                scale=draw(st.sampled_from([1.0, 1e-3, 1e3, 1e150])), **extra)


def _seed(draw):
    return draw(st.integers(0, 2**31 - 1))


@st.composite
def special_cases(draw):
    f = draw(st.sampled_from(["logsumexp", "softmax", "log_softmax"]))
    ndim = draw(st.integers(0, 3))
    shape = [draw(st.sampled_from([0, 1, 2, 3, 5, 17, 600])) for _ in range(ndim)]
    if ndim == 3:
        shape = [min(s, 17) for s in shape]
    a = draw(arrays(shape))
    axis = draw(st.one_of(st.none(), st.integers(-ndim - 1, ndim)) if ndim else st.none())
    if ndim >= 2 and draw(st.booleans()):
        axis = tuple(sorted(draw(st.sets(st.integers(0, ndim - 1), min_size=1, max_size=ndim))))
    kwargs = {"axis": axis}
    if f == "logsumexp":
        kwargs["keepdims"] = draw(st.booleans())
        kwargs["return_sign"] = draw(st.booleans())
        if draw(st.booleans()):
            bshape = list(shape)
            if bshape and draw(st.booleans()):
                bshape[draw(st.integers(0, len(bshape) - 1))] = 1  # broadcasting
            kwargs["b"] = draw(arrays(bshape))
    return (f, dict(args=(a,), kwargs=kwargs, seed=_seed(draw)))


@st.composite
def gaussian_cases(draw):
    N = draw(st.sampled_from(N_ROWS))
    D = draw(st.sampled_from(N_COLS[:4]))
    K = draw(st.sampled_from([1, 2, 3, N + 1, 700]))  # K > N and large K
    ctype = draw(st.sampled_from(["full", "tied", "diag", "spherical"]))
    X = draw(arrays((N, D)))
    means = draw(arrays((K, D), specials=False, dtypes=CLEAN_DTYPES))
    cov = {"full": ("spd", K, D, "full"), "tied": ("spd", 1, D, "tied"),
           "diag": dict(shape=(K, D), values="positive"),
           "spherical": dict(shape=(K,), values="positive")}[ctype]
    if draw(st.integers(0, 5)) == 0:  # a broken covariance
        cov = draw(arrays({"full": (K, D, D), "tied": (D, D), "diag": (K, D),
                           "spherical": (K,)}[ctype]))
    return ("gaussian_logpdf", dict(args=(X, means, cov, ctype), seed=_seed(draw)))


@st.composite
def misc_cases(draw):
    N = draw(st.sampled_from(N_ROWS))
    D = draw(st.sampled_from(N_COLS))
    f = draw(st.sampled_from([
        "precision_cholesky", "fit_gaussian", "fit_categorical", "fit_bernoulli", "entropy",
        "cross_entropy", "kl_divergence", "gaussian_kl", "kl_to_standard_normal",
        "softmax_cross_entropy", "binary_cross_entropy_with_logits", "gaussian_nll", "mse",
        "kmeans_plusplus", "mixture_statistics", "vae_loss"]))
    seed = _seed(draw)
    A = lambda shape=(N, D), **kw: draw(arrays(shape, **kw))  # noqa: E731
    red = draw(st.sampled_from(["mean", "sum", "none"]))
    grad = draw(st.booleans())
    if f == "precision_cholesky":
        ctype = draw(st.sampled_from(["full", "tied", "diag", "spherical"]))
        K = draw(st.sampled_from([1, 3]))
        cov = draw(st.sampled_from([("spd", K, D, "full" if ctype == "full" else "tied"),
                                    dict(shape={"full": (K, D, D), "tied": (D, D), "diag": (K, D),
                                                "spherical": (K,)}[ctype], values="positive")]))
        if ctype in ("diag", "spherical") and isinstance(cov, tuple):
            cov = dict(shape=(K, D) if ctype == "diag" else (K,), values="positive")
        return (f, dict(args=(cov, ctype), seed=seed))
    if f == "fit_gaussian":
        kw = dict(covariance_type=draw(st.sampled_from(["full", "diag", "spherical"])),
                  ddof=draw(st.sampled_from([0, 1, -1])))
        if draw(st.booleans()):
            kw["sample_weight"] = A((N,), values="positive")
        return (f, dict(args=(A(),), kwargs=kw, seed=seed))
    if f == "fit_categorical":
        if draw(st.booleans()):
            return (f, dict(args=(A((N,), values="labels", n_classes=D, dtypes=["int64", "int32",
                                                                               "float64", "bool"]),),
                            kwargs=dict(alpha=draw(st.sampled_from([0.0, 0.5]))), seed=seed))
        return (f, dict(kwargs=dict(counts=A((D,), values="positive")), seed=seed))
    if f == "fit_bernoulli":
        return (f, dict(args=(A(values="binary"),), kwargs=dict(alpha=draw(st.sampled_from([0.0, 1.0]))),
                        seed=seed))
    if f in ("entropy", "cross_entropy", "kl_divergence"):
        args = (A(values="prob"),) if f == "entropy" else (A(values="prob"), A(values="prob"))
        return (f, dict(args=args, kwargs=dict(normalize=draw(st.booleans()),
                                               base=draw(st.sampled_from([None, 2.0]))), seed=seed))
    if f == "gaussian_kl":
        ctype = draw(st.sampled_from(["full", "diag"]))
        cov = ("spd", 1, D, "one") if ctype == "full" else dict(shape=(D,), values="positive")
        return (f, dict(args=(A((D,)), cov, A((D,)), cov, ctype), seed=seed))
    if f == "kl_to_standard_normal":
        return (f, dict(args=(A(), A()), kwargs=dict(return_grad=grad), seed=seed))
    if f == "softmax_cross_entropy":
        if draw(st.booleans()):
            tgt = A((N,), values="labels", n_classes=D + draw(st.sampled_from([0, 0, 1])),
                    dtypes=["int64", "int32", "uint8"])
        else:
            tgt = A(values="prob", dtypes=["float64", "float32"])
        kw = dict(reduction=red, return_grad=grad,
                  label_smoothing=draw(st.sampled_from([0.0, 0.1])))
        if draw(st.booleans()):
            kw["weight"] = A((D,), values="positive")
        return (f, dict(args=(A(), tgt), kwargs=kw, seed=seed))
    if f == "binary_cross_entropy_with_logits":
        kw = dict(reduction=red, return_grad=grad)
        if draw(st.booleans()):
            kw["pos_weight"] = A((D,), values="positive")
        return (f, dict(args=(A(), A(values="binary")), kwargs=kw, seed=seed))
    if f == "gaussian_nll":
        return (f, dict(args=(A(), A(), A(values="positive")),
                        kwargs=dict(reduction=red, return_grad=grad, full=draw(st.booleans())),
                        seed=seed))
    if f == "vae_loss":
        L = draw(st.sampled_from([1, 2, 4]))
        return (f, dict(args=(A(), A(), A((N, L)), A((N, L))),
                        kwargs=dict(reduction=red, return_grad=grad, full=draw(st.booleans()),
                                    beta=draw(st.sampled_from([0.0, 1.0, 4.0]))), seed=seed))
    if f == "mse":
        return (f, dict(args=(A(), A()), kwargs=dict(reduction=red, return_grad=grad), seed=seed))
    if f == "kmeans_plusplus":
        return (f, dict(args=(A(), draw(st.sampled_from([1, 2, N, N + 1, 10**9]))),
                        kwargs=dict(random_state=0), seed=seed))
    # mixture_statistics with parameters of any K (even K > N, large K)
    K = draw(st.sampled_from([1, 2, 50]))
    ctype = draw(st.sampled_from(["diag", "spherical"]))
    params = {"params": dict(type=ctype, weights=dict(shape=(K,), values="prob"),
                             means=dict(shape=(K, D)),
                             prec=dict(shape=(K, D) if ctype == "diag" else (K,), values="positive"))}
    return (f, dict(args=(A(), params), seed=seed))


@st.composite
def estimator_cases(draw):
    kind = draw(st.sampled_from(["kmeans", "gmm", "linreg", "logreg"]))
    N = draw(st.sampled_from(N_ROWS[:7]))
    D = draw(st.sampled_from(N_COLS[:4]))
    X = draw(arrays((N, D)))
    seed = _seed(draw)
    k = draw(st.sampled_from([1, 2, 3, N, N + 1, 10**9]))
    if kind == "kmeans":
        params = dict(n_clusters=k, n_init=1, max_iter=20, random_state=0)
        return ("est:kmeans", dict(args=(X,), params=params, seed=seed))
    if kind == "gmm":
        params = dict(n_components=k, max_iter=5, random_state=0, reg_covar=1e-3,
                      covariance_type=draw(st.sampled_from(["full", "tied", "diag", "spherical"])))
        return ("est:gmm", dict(args=(X,), params=params, seed=seed))
    if kind == "linreg":
        return ("est:linreg", dict(args=(X, draw(arrays((N,)))), seed=seed))
    y = draw(arrays((N,), values="labels", n_classes=draw(st.sampled_from([1, 2, 3])),
                    dtypes=["int64", "bool", "float64"]))
    return ("est:logreg", dict(args=(X, y), params=dict(max_iter=15), seed=seed))


def _check(worker, cases):
    verdicts = worker.run(cases)
    assert len(verdicts) == len(cases)
    bad = [(c, v) for c, v in zip(cases, verdicts) if v[0] == "bad"]
    if bad:
        pytest.fail(f"{len(bad)} bad result(s):\n" + "\n\n".join(f"{c!r}\n  -> {v[1]}"
                                                                for c, v in bad), pytrace=False)


@FUZZ
@given(st.lists(special_cases(), min_size=BATCH, max_size=BATCH))
def test_fuzz_logsumexp_softmax(worker, cases):
    _check(worker, cases)


@FUZZ
@given(st.lists(gaussian_cases(), min_size=BATCH, max_size=BATCH))
def test_fuzz_gaussian_logpdf(worker, cases):
    _check(worker, cases)


@FUZZ
@given(st.lists(misc_cases(), min_size=BATCH, max_size=BATCH))
def test_fuzz_functions(worker, cases):
    _check(worker, cases)


@FUZZ
@given(st.lists(estimator_cases(), min_size=10, max_size=10))
def test_fuzz_estimators(worker, cases):
    _check(worker, cases)


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="a deliberate segfault is (rightly) a sanitizer report")
def test_worker_reports_a_crash(worker):
    """The harness itself: a segfault in the child fails the test, names the case,
    and the next batch gets a fresh child."""
    w = Worker()
    try:
        with pytest.raises(pytest.fail.Exception, match=r"crashed with exit code -?\d+ while running case 1"):
            w.run([("logsumexp", dict(args=([1.0],))), ("__segfault__", {})])
        assert w.run([("logsumexp", dict(args=([1.0, 2.0],)))])[0][0] == "ok"
    finally:
        w.close()
