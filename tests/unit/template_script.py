"""scripts/check_template.py, loaded as a module for the template tests (it is a script, not part of `medic`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_check_script() -> ModuleType:
    """The script as the module `check_template` (loaded once: dataclasses resolve annotations through sys.modules)."""
    if "check_template" in sys.modules:
        return sys.modules["check_template"]
    spec = importlib.util.spec_from_file_location("check_template", ROOT / "scripts" / "check_template.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
