"""maxlik.torch is optional: importing maxlik never imports torch, and without
torch ``import maxlik.torch`` says how to install it (these run without torch)."""
import os
import subprocess
import sys


def _run(code, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e,
                          timeout=120)


def test_import_maxlik_does_not_import_torch():
    p = _run("import sys, maxlik, maxlik.losses, maxlik.special, maxlik.cli\n"
             "assert 'torch' not in sys.modules, 'torch imported'\n"
             "import numpy as np\n"
             "maxlik.logsumexp(np.ones(3)); maxlik.softmax_cross_entropy(np.ones((2, 3)), [0, 1])\n"
             "assert 'torch' not in sys.modules, 'torch imported by a call'\n")
    assert p.returncode == 0, p.stderr


def test_maxlik_torch_without_torch_says_how_to_install(tmp_path):
    fake = tmp_path / "fake"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text("raise ImportError('No module named torch')\n")
    env = {"PYTHONPATH": str(fake) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = _run("import maxlik\n"
             "try:\n"
             "    import maxlik.torch\n"
             "except ImportError as exc:\n"
             "    print(exc)\n"
             "else:\n"
             "    raise SystemExit('imported')\n", env)
    assert p.returncode == 0, p.stderr
    assert "maxlik.torch needs PyTorch" in p.stdout and "pip install torch" in p.stdout
