"""The shape of the code that the architecture promises: layers import only downward, modules
stay small, every stage module is in the registry, and the code cites only files that exist."""

from __future__ import annotations

import ast
import importlib
import re

import pytest

from haic_platform.stage import StageSpec
from haic_assets.stages import STAGES
from tests.helpers import REPO_ROOT

PACKAGES = ("haic_core", "haic_resources", "haic_assets")
SOURCES = sorted(p for pkg in PACKAGES for p in (REPO_ROOT / pkg).rglob("*.py"))
# What each layer may import from the project: the science imports nothing above it.
ALLOWED = {"haic_core": {"haic_core"}, "haic_resources": {"haic_core", "haic_resources"},
           "haic_assets": {"haic_core", "haic_resources", "haic_assets"}}
# A path as code cites one: a top-level folder of the repository, then more of the path.
CITED_PATH = re.compile(r"(?<![\w./$-])((?:haic_core|haic_resources|haic_assets|sql|tests|docs|deploy|samples|bench|"
                        r"scripts)/[\w./-]*\w)")


def imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_a_module_imports_only_from_its_own_layer_or_below(path):
    layer = path.relative_to(REPO_ROOT).parts[0]
    project = {m.split(".")[0] for m in imported_modules(path)} & set(PACKAGES)
    assert project <= ALLOWED[layer], f"{path.name} imports {sorted(project - ALLOWED[layer])}"
    if layer == "haic_core":
        assert not any(m.split(".")[0] == "dagster" for m in imported_modules(path))


def test_no_module_outside_the_tests_is_longer_than_400_lines():
    long = {str(p.relative_to(REPO_ROOT)): n for p in SOURCES + sorted((REPO_ROOT / "bench").glob("*.py"))
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_every_stage_module_is_in_the_registry_in_its_domain_folder():
    declared = []
    for path in SOURCES:
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        if parts[0] != "haic_assets" or parts[1] not in ("accumulation", "haic_train", "haicbench", "evaluation",
                                                                   "curation"):
            continue
        module = importlib.import_module(".".join(parts))
        declared += [v for v in vars(module).values() if isinstance(v, StageSpec) and v.body.__module__ == module.__name__]
    assert sorted(s.name for s in declared) == sorted(s.name for s in STAGES)
    assert all(s.body.__module__.split(".")[1] == s.group for s in STAGES)


def test_the_code_cites_only_files_of_the_repository():
    missing = []
    for path in SOURCES + sorted((REPO_ROOT / "bench").glob("*.py")):
        for cited in CITED_PATH.findall(path.read_text()):
            target = cited.rstrip(".")
            if "<" in target or "*" in target or target.endswith("_") or target.startswith("bench/results"):
                continue  # a pattern or an output the code writes, not a file it points a reader to
            if not (REPO_ROOT / target).exists() and not (REPO_ROOT / target).with_suffix(".py").exists():
                missing.append(f"{path.relative_to(REPO_ROOT)}: {cited}")
    assert missing == []
