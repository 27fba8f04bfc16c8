"""The house is layered: the platform core knows no workload; workloads sit above it; the CLI on top.

Static checks of every module's imports (what `import` statements say, not what runs), so a
workload can never become a dependency of the core by accident.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "platform" / "kindml"


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def core_modules() -> list[Path]:
    return [p for p in CORE.rglob("*.py") if "cli" not in p.relative_to(CORE).parts and p.name != "__main__.py"]


def test_core_never_imports_a_workload_or_the_cli() -> None:
    offenders = {}
    for p in core_modules():
        bad = sorted(m for m in imports(p) if m.startswith(("kindml.pipelines", "kindml.cli")))
        if bad:
            offenders[str(p.relative_to(REPO))] = bad
    assert not offenders, f"core modules import the workload layer or the CLI: {offenders}"


def test_components_are_workload_agnostic() -> None:
    for p in (REPO / "components").rglob("*.py"):
        assert not any(m.startswith("kindml.pipelines") for m in imports(p)), p


def test_workloads_do_not_import_the_cli() -> None:
    for p in (REPO / "pipelines").rglob("*.py"):
        assert not any(m.startswith("kindml.cli") for m in imports(p)), p


def test_the_core_does_not_name_a_capstone() -> None:
    """`grep -ri fraud platform/kindml` finds nothing: fraud lives in its workload folder."""
    hits = [f"{p.relative_to(REPO)}:{i}" for p in CORE.rglob("*") if p.is_file() and p.suffix in (".py", ".yaml", ".json", ".md")
            for i, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1) if "fraud" in line.lower()]
    assert not hits, f"the core mentions a capstone: {hits[:20]}"
