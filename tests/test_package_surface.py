"""Each stage package names its public surface in ``__all__``, and every name resolves."""

import importlib
import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["ingest", "rules", "alerts", "nonsite"])
def test_every_public_name_resolves(package):
    module = importlib.import_module(package)
    assert module.__all__, f"{package} names its public surface"
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


def test_importing_the_codec_does_not_load_the_database_layer():
    # A fresh interpreter: the simulator and `nonsite decode` import the codec alone.
    code = "import sys, ingest.hj212; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
