"""The maxlik command line, run as the installed console script in a subprocess."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import maxlik

_BIN = os.path.dirname(sys.executable)
_SCRIPT = shutil.which("maxlik", path=_BIN)
CMD = [_SCRIPT] if _SCRIPT else [sys.executable, "-m", "maxlik"]


def run(*args, env=None, cmd=None):
    e = dict(os.environ)
    e.pop("MAXLIK_NUM_THREADS", None)
    if env:
        e.update(env)
    p = subprocess.run((cmd or CMD) + [str(a) for a in args], capture_output=True, text=True,
                       env=e, timeout=300)
    return p.returncode, p.stdout, p.stderr


def assert_data_error(rc, out, err, *fragments):
    assert rc == 1, (rc, out, err)
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("maxlik: error: "), err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def faithful():
    path = os.path.join(os.path.dirname(maxlik.__file__), "data", "faithful.csv")
    return np.loadtxt(path, delimiter=",", skiprows=1)


# ---- default job, info -------------------------------------------------------------------

def test_no_arguments_fits_bundled_old_faithful():
    rc, out, err = run()
    assert rc == 0, err
    info = maxlik.build_info()
    assert out.startswith(f"maxlik {maxlik.__version__} (instruction set {info['isa']}, "
                          f"{info['num_threads']} threads)")
    assert "272 rows x 2 columns (eruptions, waiting)" in out
    assert "component 0" in out and "component 1" in out and "component 2" not in out
    for word in ("weight", "mean", "covariance", "log-likelihood", "BIC", "AIC", "converged"):
        assert word in out
    assert "Traceback" not in err


def test_python_dash_m_is_the_same_program():
    rc, out, _ = run("info", cmd=[sys.executable, "-m", "maxlik"])
    assert rc == 0 and out.startswith(f"maxlik {maxlik.__version__}")


def test_info():
    rc, out, err = run("info")
    assert rc == 0, err
    info = maxlik.build_info()
    assert out.startswith(f"maxlik {maxlik.__version__}")
    assert f"instruction set: {info['isa']}" in out
    assert "compiler:" in out and "flags:" in out
    assert f"threads: {maxlik.get_num_threads()}" in out
    assert "optional dependencies" in out and "scikit-learn" in out
    rc, out, _ = run("info", "--json", env={"MAXLIK_NUM_THREADS": "1"})
    d = json.loads(out)
    assert d["num_threads"] == 1 and d["isa"] == info["isa"]
    assert set(d["optional"]) >= {"scipy", "scikit-learn", "torch", "matplotlib", "pyarrow"}


# ---- fit: numbers ------------------------------------------------------------------------

def test_fit_json_matches_in_process_mixture():
    rc, out, err = run("fit", "--json", "--seed", "0")
    assert rc == 0, err
    d = json.loads(out)
    X = faithful()
    assert d["data"]["n_samples"] == 272 and d["data"]["columns"] == ["eruptions", "waiting"]
    assert d["model"] == "gmm" and d["n_components"] == 2 and d["covariance_type"] == "full"
    # The classic two-component fit of Old Faithful.
    from sklearn.mixture import GaussianMixture

    ref = GaussianMixture(2, random_state=0).fit(X)
    order = np.argsort(np.asarray(d["means"])[:, 0])
    ref_order = np.argsort(ref.means_[:, 0])
    np.testing.assert_allclose(np.asarray(d["means"])[order], ref.means_[ref_order], rtol=1e-4)
    np.testing.assert_allclose(np.asarray(d["weights"])[order], ref.weights_[ref_order],
                               rtol=1e-4)
    np.testing.assert_allclose(d["log_likelihood"], ref.score(X) * len(X), rtol=1e-6)
    np.testing.assert_allclose(d["bic"], ref.bic(X), rtol=1e-6)
    np.testing.assert_allclose(d["aic"], ref.aic(X), rtol=1e-6)
    assert d["converged"] is True and d["n_iter"] >= 1
    lb = d["lower_bounds"]
    assert len(lb) >= 1 and all(b >= a - 1e-9 for a, b in zip(lb, lb[1:]))  # EM is monotone


def test_select_k_picks_lowest_bic():
    rc, out, err = run("fit", "--select-k", "1..4", "--json")
    assert rc == 0, err
    d = json.loads(out)
    table = d["select_k"]["table"]
    assert [row["n_components"] for row in table] == [1, 2, 3, 4]
    best = min(table, key=lambda r: r["bic"])["n_components"]
    assert d["select_k"]["best_n_components"] == best == d["n_components"] == 2
    assert all(row["covariance_type"] == "full" for row in table)
    # the table is select_mixture's
    sel = maxlik.select_mixture(faithful(), n_components=range(1, 5), covariance_types="full",
                                random_state=0)
    for row, ref in zip(table, sel.table):
        np.testing.assert_allclose(row["bic"], ref["bic"], rtol=1e-12)
        np.testing.assert_allclose(row["icl"], ref["icl"], rtol=1e-12)
    rc, out, _ = run("fit", "--select-k", "1,2")
    assert rc == 0 and "<- best BIC" in out and "BIC" in out.splitlines()[2]


def test_select_k_with_every_covariance_type():
    rc, out, err = run("fit", "--select-k", "1..3", "--covariance", "all", "--json")
    assert rc == 0, err
    d = json.loads(out)
    table = d["select_k"]["table"]
    assert [(r["n_components"], r["covariance_type"]) for r in table] == [
        (k, t) for k in (1, 2, 3) for t in ("full", "tied", "diag", "spherical")]
    best = min(table, key=lambda r: r["bic"])
    assert (d["n_components"], d["covariance_type"]) == (best["n_components"],
                                                         best["covariance_type"])
    assert d["select_k"]["best_covariance_type"] == d["covariance_type"]
    rc, out, _ = run("fit", "--select-k", "1,2", "--covariance", "all")
    assert rc == 0 and out.count("<- best BIC") == 1 and "spherical" in out


def test_kmeans_model_matches_estimator(tmp_path):
    X = faithful()
    rc, out, err = run("fit", "--model", "kmeans", "-k", "3", "--seed", "1", "--json")
    assert rc == 0, err
    d = json.loads(out)
    km = maxlik.KMeans(3, random_state=1).fit(X)
    np.testing.assert_allclose(d["centers"], km.cluster_centers_, rtol=1e-12)
    np.testing.assert_allclose(d["inertia"], km.inertia_, rtol=1e-12)
    assert sum(d["sizes"]) == 272


def test_gaussian_model():
    if not hasattr(maxlik, "fit_gaussian"):
        rc, out, err = run("fit", "--model", "gaussian")
        assert_data_error(rc, out, err, "fit_gaussian")
        pytest.skip("maxlik.fit_gaussian not in this build")
    rc, out, err = run("fit", "--model", "gaussian", "--json")
    assert rc == 0, err
    d = json.loads(out)
    X = faithful()
    np.testing.assert_allclose(d["mean"], X.mean(0), rtol=1e-12)
    np.testing.assert_allclose(d["covariance"], np.cov(X.T, ddof=0), rtol=1e-10)


# ---- fit: data formats -------------------------------------------------------------------

def test_csv_header_detection_delimiters_and_columns(tmp_path):
    X = faithful()
    # no header, semicolons, an extra text column that --columns leaves out
    p = tmp_path / "plain.csv"
    p.write_text("\n".join(f"{a};{b};x{i}" for i, (a, b) in enumerate(X)) + "\n")
    rc, out, err = run("fit", p, "--columns", "0,1", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["data"]["columns"] == ["x0", "x1"] and d["data"]["n_samples"] == 272
    # header, columns by name in another order
    p2 = tmp_path / "named.csv"
    p2.write_text("id,waiting,eruptions\n" + "\n".join(
        f"{i},{b},{a}" for i, (a, b) in enumerate(X)) + "\n")
    rc, out, err = run("fit", p2, "--columns", "eruptions,waiting", "--model", "kmeans",
                       "--json")
    assert rc == 0, err
    assert json.loads(out)["data"]["columns"] == ["eruptions", "waiting"]


def test_npy_and_npz(tmp_path):
    X = faithful()
    np.save(tmp_path / "x.npy", X)
    rc, out, err = run("fit", tmp_path / "x.npy", "--model", "kmeans", "--json")
    assert rc == 0, err
    assert json.loads(out)["data"]["n_samples"] == 272
    np.savez(tmp_path / "x.npz", a=X, b=X[:10])
    rc, out, err = run("fit", tmp_path / "x.npz", "--key", "a", "--model", "kmeans", "--json")
    assert rc == 0, err
    assert json.loads(out)["data"]["n_samples"] == 272
    rc, out, err = run("fit", tmp_path / "x.npz")
    assert_data_error(rc, out, err, "--key", "a, b")
    rc, out, err = run("fit", tmp_path / "x.npz", "--key", "c")
    assert_data_error(rc, out, err, "no array 'c'")


def test_parquet(tmp_path):
    p = tmp_path / "x.parquet"
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        p.write_bytes(b"PAR1")
        rc, out, err = run("fit", p)
        assert_data_error(rc, out, err, "pyarrow")
        return
    X = faithful()
    pq.write_table(pa.table({"eruptions": X[:, 0], "waiting": X[:, 1]}), p)
    rc, out, err = run("fit", p, "--json")
    assert rc == 0, err
    assert json.loads(out)["data"]["columns"] == ["eruptions", "waiting"]
    q = tmp_path / "text.parquet"
    pq.write_table(pa.table({"a": X[:, 0], "name": [f"r{i}" for i in range(len(X))]}), q)
    assert_data_error(*run("fit", q), "column 'name' is not numeric")
    rc, out, err = run("fit", q, "--columns", "a", "--model", "kmeans", "--json")
    assert rc == 0, err


# ---- fit: errors and exit codes ----------------------------------------------------------

def test_data_errors_exit_1_with_one_line(tmp_path):
    assert_data_error(*run("fit", tmp_path / "missing.csv"), "no such file")
    p = tmp_path / "text.csv"
    p.write_text("a,b\n1,2\n3,oops\n5,6\n")
    assert_data_error(*run("fit", p), "column 'b' is not numeric", "line 3")
    p = tmp_path / "nan.csv"
    rows = ["a,b"] + [f"{i},{i % 7}" for i in range(30)]
    rows[5] = "4,NA"
    rows[9] = "8,"
    p.write_text("\n".join(rows) + "\n")
    assert_data_error(*run("fit", p), "2 row(s)", "--drop-na")
    rc, out, err = run("fit", p, "--drop-na", "--model", "kmeans", "--json")
    assert rc == 0, err
    assert json.loads(out)["data"]["n_samples"] == 28 and "dropped 2 row(s)" in err
    assert_data_error(*run("fit", "--columns", "nope"), "no column 'nope'", "eruptions")
    # more components than rows is a data problem too, reported in one line
    p = tmp_path / "tiny.csv"
    p.write_text("a,b\n1,2\n3,4\n")
    assert_data_error(*run("fit", p, "-k", "5"))


@pytest.mark.parametrize("args", [
    ["fit", "--components", "0"],
    ["fit", "--model", "tree"],
    ["fit", "--covariance", "banana"],
    ["fit", "--select-k", "a..b"],
    ["fit", "--model", "kmeans", "--select-k", "1..3"],
    ["fit", "--covariance", "all"],
    ["fit", "--model", "gaussian", "--covariance", "all"],
    ["fit", "--tol", "-1"],
    ["bench", "everything"],
    ["frobnicate"],
])
def test_usage_errors_exit_2(args):
    rc, out, err = run(*args)
    assert rc == 2, (rc, out, err)
    assert "usage:" in err and "Traceback" not in err


def test_help_exits_0():
    rc, out, _ = run("--help")
    assert rc == 0 and "fit" in out and "bench" in out and "info" in out
    rc, out, _ = run("fit", "--help")
    assert rc == 0 and "--select-k" in out


# ---- plot ---------------------------------------------------------------------------------

def test_plot_png(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.image

    png = tmp_path / "fit.png"
    rc, out, err = run("fit", "--plot", png)
    assert rc == 0, err
    img = matplotlib.image.imread(str(png))
    h, w = img.shape[:2]
    assert (w, h) == (1100, 450)  # two panels: data + ellipses, log-likelihood per iteration
    rgb = img[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.05  # not blank
    assert len(np.unique((rgb * 255).astype(int), axis=0)) > 20  # points, ellipses, text
    # the data panel has coloured points for both components
    assert ((rgb[:, 0] > 0.8) & (rgb[:, 2] < 0.3)).sum() > 50  # orange (tab10 #1)
    assert ((rgb[:, 2] > 0.6) & (rgb[:, 0] < 0.3)).sum() > 50  # blue (tab10 #0)


def test_plot_without_matplotlib_exits_1(tmp_path):
    fake = tmp_path / "fake"
    (fake / "matplotlib").mkdir(parents=True)
    (fake / "matplotlib" / "__init__.py").write_text("raise ImportError('no matplotlib')\n")
    env = {"PYTHONPATH": str(fake) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    rc, out, err = run("fit", "--plot", tmp_path / "x.png", env=env)
    assert_data_error(rc, out, err, "matplotlib", "maxlik[plot]")
    assert not (tmp_path / "x.png").exists()


# ---- bench ----------------------------------------------------------------------------------

def test_bench_kmeans_json():
    pytest.importorskip("sklearn")
    rc, out, err = run("bench", "kmeans", "--size", "small", "--repeat", "1", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["size"] == "small" and d["threads"] == maxlik.get_num_threads()
    impls = {r["impl"]: r for r in d["results"] if r["case"].endswith("float64")}
    # sklearn always; sklearnex and faiss where installed (the bench extra)
    assert {"maxlik", "sklearn"} <= set(impls) <= {"maxlik", "sklearn", "sklearnex", "faiss"}
    assert impls["maxlik"]["speedup_vs_maxlik"] == 1.0
    assert impls["sklearn"]["median_s"] > 0 and impls["sklearn"]["speedup_vs_maxlik"] > 0
    # the fraction of the machine's floor (measured in the same run) is reported
    assert set(d["floors"]) == {"read_GBps", "dgemm_GFLOPs", "sgemm_GFLOPs"}
    assert 0 < impls["maxlik"]["floor_fraction"] and impls["maxlik"]["unit"] in ("GB/s", "GFLOP/s")


def test_bench_reports_skipped_areas_clearly(monkeypatch, capsys):
    # In process (no peers imported): an area whose maxlik function is missing
    # is skipped with a message saying so, and the run still succeeds.
    from maxlik import _bench

    monkeypatch.setitem(_bench.CASES, "gmm",
                        lambda size: ("maxlik.GaussianMixture is not available in this build", []))
    assert _bench.run("gmm", "small", False, 1) == 0
    out = capsys.readouterr().out
    assert "gmm" in out and "skipped: maxlik.GaussianMixture is not available" in out
    assert "thread(s)" in out and "speed-up" in out


# ---- the CSV reader: blocks, C parsers, out of core ---------------------------------------

def _engines():
    import importlib.util

    return ["numpy"] + (["pyarrow"] if importlib.util.find_spec("pyarrow") else [])


@pytest.fixture(params=_engines())
def csv_engine(request, monkeypatch):
    """The CSV reader with small blocks (many block boundaries), per installed engine."""
    from maxlik import _readers

    monkeypatch.setenv("MAXLIK_CSV_ENGINE", request.param)
    monkeypatch.setattr(_readers, "_BLOCK_BYTES", 200)
    return _readers


def test_csv_blocks_give_numpys_values(csv_engine, tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 3)) * 10.0 ** rng.integers(-5, 5, size=(500, 3))
    p = tmp_path / "x.csv"
    with open(p, "w", newline="") as fh:
        fh.write("\ufeffa;b;c\r\n")
        for i, row in enumerate(X):
            fh.write(";".join(repr(float(v)) for v in row) + "\r\n")
            if i % 97 == 0:
                fh.write("\r\n")  # blank lines are skipped
    got, names, _ = csv_engine.load_data(str(p))
    assert names == ["a", "b", "c"]
    np.testing.assert_array_equal(got, X)  # repr round-trips: exactly the same floats
    got, names, _ = csv_engine.load_data(str(p), columns=["c", "0"])
    assert names == ["c", "a"]
    np.testing.assert_array_equal(got, X[:, [2, 0]])


def test_csv_missing_values_need_no_per_cell_python(csv_engine, tmp_path, monkeypatch):
    # A file with missing-value tokens is parsed by the C readers (the NA
    # tokens rewritten to nan), not by the exact per-cell parser.
    def refuse(*args, **kwargs):
        raise AssertionError("the per-cell parser ran")

    monkeypatch.setattr(csv_engine, "_parse_exact", refuse)
    rows = [f"{i},{i % 7}.5,x{i}" for i in range(300)]
    na = {17: "NA", 40: "", 111: " n/a ", 250: "?", 299: "None"}
    for i, tok in na.items():
        rows[i] = f"{i},{tok},x{i}"
    p = tmp_path / "na.csv"
    p.write_text("a,b,name\n" + "\n".join(rows) + "\n")
    with pytest.raises(csv_engine.DataError, match=r"5 row\(s\) .*first: data row 18\).*--drop-na"):
        csv_engine.load_data(str(p), columns=["a", "b"])
    X, _, _ = csv_engine.load_data(str(p), columns=["a", "b"], drop_na=True)
    keep = [i for i in range(300) if i not in na]
    np.testing.assert_array_equal(X[:, 0], keep)


def test_csv_errors_name_the_line_in_any_block(csv_engine, tmp_path):
    rows = [f"{i},{i}" for i in range(400)]
    rows[321] = "321,oops"
    p = tmp_path / "bad.csv"
    p.write_text("a,b\n" + "\n".join(rows) + "\n")
    with pytest.raises(csv_engine.DataError, match=r"column 'b' is not numeric \(line 323: 'oops'\)"):
        csv_engine.load_data(str(p))
    # a text column left out by --columns is not parsed
    X, _, _ = csv_engine.load_data(str(p), columns=["a"])
    np.testing.assert_array_equal(X[:, 0], np.arange(400))
    rows[321] = "321,3,4"
    p.write_text("a,b\n" + "\n".join(rows) + "\n")
    for cols in (None, ["b"]):
        with pytest.raises(csv_engine.DataError, match="line 323 has 3 fields, expected 2"):
            csv_engine.load_data(str(p), columns=cols)
    rows[321] = "321"
    p.write_text("a,b\n" + "\n".join(rows) + "\n")
    with pytest.raises(csv_engine.DataError, match="line 323 has 1 fields, expected 2"):
        csv_engine.load_data(str(p), columns=["a"])
    p.write_bytes(b"a,b\n" + b"1,2\n" * 300 + b"3,\xff\n")
    with pytest.raises(csv_engine.DataError, match="not a text"):
        csv_engine.load_data(str(p))


def test_csv_larger_than_the_memory_limit_is_fitted_from_a_memmap(tmp_path, monkeypatch):
    from maxlik import _readers

    X = np.concatenate([np.random.default_rng(0).normal(m, 1.0, size=(3000, 2)) for m in (0, 6)])
    p = tmp_path / "big.csv"
    np.savetxt(p, X, delimiter=",", header="u,v", comments="", fmt="%.17g")
    monkeypatch.setenv("MAXLIK_IN_MEMORY_LIMIT", "10000")
    monkeypatch.setattr(_readers, "_BLOCK_BYTES", 4096)
    got, names, _ = _readers.load_data(str(p))
    assert isinstance(got, np.memmap) and not got.flags.writeable and names == ["u", "v"]
    np.testing.assert_array_equal(got, X)
    # the command line fits it out of core, to the in-memory fit
    rc, out, err = run("fit", p, "--json", env={"MAXLIK_IN_MEMORY_LIMIT": "10000"})
    assert rc == 0, err
    rc2, out2, err2 = run("fit", p, "--json")
    assert rc2 == 0, err2
    a, b = json.loads(out), json.loads(out2)
    assert a["data"]["n_samples"] == 6000
    np.testing.assert_allclose(a["means"], b["means"], rtol=1e-9)
    np.testing.assert_allclose(a["log_likelihood"], b["log_likelihood"], rtol=1e-9)


@pytest.mark.parametrize("covariance", ["diag", "tied", "spherical"])
def test_bic_aic_match_the_estimators(covariance):
    # the CLI derives BIC/AIC from its one score pass (no re-scoring of X per criterion)
    rc, out, err = run("fit", "--covariance", covariance, "-k", "3", "--json")
    assert rc == 0, err
    d = json.loads(out)
    X = faithful()
    gm = maxlik.GaussianMixture(3, covariance_type=covariance, random_state=0).fit(X)
    np.testing.assert_allclose(d["bic"], gm.bic(X), rtol=1e-9)
    np.testing.assert_allclose(d["aic"], gm.aic(X), rtol=1e-9)
