import subprocess
import sys

import pytest

import maxlik


def test_version_and_isa():
    info = maxlik.build_info()
    assert info["version"] == maxlik.__version__
    assert info["isa"] in ("baseline", "x86-64-v2", "x86-64-v3", "x86-64-v4")
    assert maxlik._cpu.supports(info["isa"])
    # 64-byte registers on AVX-512; 32 otherwise unless forced (MAXLIK_VEC_BYTES)
    assert info["simd_bytes"] in (16, 32, 64)
    if info["isa"] == "x86-64-v4":
        assert info["simd_bytes"] == 64


def test_python_m_maxlik_prints_version_isa_threads():
    out = subprocess.run([sys.executable, "-m", "maxlik"], capture_output=True, text=True, check=True).stdout
    assert maxlik.__version__ in out
    assert "instruction set" in out
    assert "threads" in out


def test_set_get_num_threads_roundtrip():
    old = maxlik.get_num_threads()
    try:
        maxlik.set_num_threads(1)
        assert maxlik.get_num_threads() == 1
        maxlik.set_num_threads(3)
        assert maxlik.get_num_threads() == 3
    finally:
        maxlik.set_num_threads(old)


@pytest.mark.parametrize("bad", [0, -2])
def test_set_num_threads_rejects_nonpositive(bad):
    with pytest.raises(ValueError, match="n must be >= 1"):
        maxlik.set_num_threads(bad)


@pytest.mark.parametrize("bad", [1.5, "2", None, True])
def test_set_num_threads_rejects_non_integers(bad):
    with pytest.raises(TypeError, match="integer"):
        maxlik.set_num_threads(bad)


def test_env_var_sets_thread_count():
    code = "import maxlik; print(maxlik.get_num_threads())"
    env = {"MAXLIK_NUM_THREADS": "3", "PATH": ""}
    import os
    env = dict(os.environ, MAXLIK_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "3"


def test_env_var_invalid_warns_and_uses_default():
    import os
    env = dict(os.environ, MAXLIK_NUM_THREADS="lots")
    code = "import warnings; warnings.simplefilter('always'); import maxlik; print(maxlik.get_num_threads() >= 1)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    assert "MAXLIK_NUM_THREADS" in out.stderr
