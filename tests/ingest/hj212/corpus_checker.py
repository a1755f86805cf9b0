"""The corpus checker, corpus/derive_expectations.py, loaded as a module: a stdlib-only reading
of HJ 212 written from the standard, independent of the project's ``ingest`` package."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"


def load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "hj212_corpus_derive_expectations", CORPUS_DIR / "derive_expectations.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
