"""The package's layering (docs/architecture.md): a module imports only from its own layer of negtrain_core or below,
imports inside functions included, so that the folder layout stays a true map of the pipeline's stages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "negtrain_core"
# layer of each top-level module or subpackage, bottom first (docs/architecture.md, "Layering")
LAYERS = {"config": 0, "io": 0, "stage": 0, "device": 0, "gpu_slots": 0, "data": 1, "models": 2, "search": 3,
          "evaluate": 3, "negtrain": 4, "comparisons": 4, "tables": 5}


def unit(parts: tuple[str, ...]) -> str:
    """The layered unit a module path under negtrain_core belongs to: its subpackage, or the top-level module."""
    return parts[0].removesuffix(".py")


def imported_units(path: Path) -> set[tuple[str, int]]:
    """(unit, line) of every negtrain_core import in ``path``, module-level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "negtrain_core" and len(parts) > 1 and parts[1] in LAYERS:
                found.add((parts[1], node.lineno))
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def no_layer(units) -> str:
    """What to do about ``units`` of negtrain_core that LAYERS does not place."""
    names = ", ".join(f"negtrain_core.{u}" for u in sorted(units))
    return (f"{names} in no layer: add it to LAYERS in tests/test_architecture.py and to docs/architecture.md, "
            f"'Layering'")


def test_every_module_belongs_to_a_layer():
    units = {unit(p.relative_to(PACKAGE).parts) for p in MODULES} - {"__init__"}
    assert not units - set(LAYERS), no_layer(units - set(LAYERS))
    assert not set(LAYERS) - units, f"LAYERS names what negtrain_core no longer holds: {sorted(set(LAYERS) - units)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_its_own_layer_or_below(path):
    own = unit(path.relative_to(PACKAGE).parts)
    if own == "__init__":
        return
    assert own in LAYERS, no_layer({own})
    upward = sorted(f"line {line}: negtrain_core.{u} (layer {LAYERS[u]})" for u, line in imported_units(path)
                    if LAYERS[u] > LAYERS[own])
    assert not upward, (f"{path.relative_to(PACKAGE)} (layer {LAYERS[own]}) imports upward: {upward}; move what it "
                        f"needs down to its layer or below, or the caller up (docs/architecture.md, 'Layering')")


def test_the_check_sees_an_upward_import(tmp_path):
    """The checker itself: a function-level import of a higher layer is found."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from negtrain_core.tables import report\n    import negtrain_core.config\n")
    assert imported_units(probe) == {("tables", 2), ("config", 3)}
