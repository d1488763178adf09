"""The package is laid out as the pipeline, and imports run one way through it.

    cli → web → dispatch → compose | audience | delivery → root

A module may import its own stage and any stage below it; the three middle stages are
independent of one another; nothing imports upward. Every import counts, including those
inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "newsletter"
ROOT_MODULES = {"settings", "db", "models", "errors", "headers", "users", "migrations", "audit"}
#: Stage -> rank. A higher rank may import a lower one; equal ranks only themselves.
RANKS = {"root": 0, "compose": 1, "audience": 1, "delivery": 1, "dispatch": 2, "web": 3, "cli": 4}


def stage_of(dotted: str) -> str:
    """The stage of ``newsletter.<part>…``; a name that is no known stage or root module is an error."""
    parts = dotted.split(".")
    if len(parts) == 1:
        return "root"
    first = parts[1]
    if first in RANKS:
        return first
    if first in ROOT_MODULES:
        return "root"
    if first == "__main__":
        return "cli"
    raise ValueError(f"newsletter.{first} is neither a stage nor a root module")


def module_name(path: Path, package: Path) -> str:
    relative = path.relative_to(package.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, package: Path) -> list[tuple[int, str]]:
    """``(line, imported module)`` for every import of the package in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = module_name(path, package).split(".")
    is_package = path.name == "__init__.py"
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_package else here[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # ``from newsletter.stage import x``: x may be a submodule, so name it too
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == package.name]


def violations(package: Path) -> list[str]:
    """Every import in ``package`` that runs against the pipeline, as ``file:line: …``."""
    problems: list[str] = []
    for path in sorted(package.rglob("*.py")):
        importer = module_name(path, package)
        try:
            source_stage = stage_of(importer)
        except ValueError as exc:
            problems.append(f"{path.relative_to(package.parent)}: {exc}")
            continue
        for line, imported in imports_of(path, package):
            where = f"{path.relative_to(package.parent)}:{line}"
            try:
                target_stage = stage_of(imported)
            except ValueError as exc:
                problems.append(f"{where}: imports {imported}: {exc}")
                continue
            if target_stage == source_stage:
                continue
            if RANKS[target_stage] >= RANKS[source_stage]:
                problems.append(
                    f"{where}: {source_stage} imports {imported} ({target_stage}); "
                    f"{source_stage} may import only stages below it"
                )
    return problems


def test_imports_run_one_way_through_the_pipeline() -> None:
    problems = violations(PACKAGE)
    assert not problems, "imports against the pipeline:\n" + "\n".join(problems)


def test_every_stage_says_what_it_may_do() -> None:
    for stage in RANKS.keys() - {"root"}:
        init = PACKAGE / stage / "__init__.py"
        docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert docstring and "import" in docstring, f"{init} needs a docstring naming its imports"


def test_no_module_is_left_beside_the_stages() -> None:
    loose = {p.stem for p in PACKAGE.glob("*.py")} - ROOT_MODULES - {"__init__", "__main__"}
    assert not loose, f"modules outside a stage folder: {sorted(loose)}"


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("compose/render.py", "from newsletter.dispatch import outbox\n", "compose imports newsletter.dispatch.outbox"),
        ("compose/render.py", "from newsletter.audience import tokens\n", "compose imports newsletter.audience.tokens"),
        ("delivery/message.py", "def f():\n    import newsletter.models\n    from newsletter.web import app\n", "delivery imports newsletter.web"),
        ("dispatch/sender.py", "from ..cli import core\n", "dispatch imports newsletter.cli"),
        ("web/app.py", "from newsletter import cli\n", "web imports newsletter.cli"),
        ("settings.py", "from newsletter.compose import render\n", "root imports newsletter.compose.render"),
        ("db.py", "from newsletter import campaign\n", "imports newsletter.campaign: newsletter.campaign is neither"),
    ],
)  # fmt: skip
def test_an_upward_import_is_named(tmp_path: Path, path: str, source: str, expected: str) -> None:
    package = tmp_path / "newsletter"
    for stage in RANKS.keys() - {"root"}:
        (package / stage).mkdir(parents=True)
        (package / stage / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / path).write_text(source)
    problems = violations(package)
    assert len(problems) == 1, problems
    assert f"newsletter/{path}:" in problems[0]
    assert expected in problems[0]
