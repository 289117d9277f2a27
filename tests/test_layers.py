"""Data flows one way (STYLE.md): every import inside the package goes to a module the README's module
list puts before or beside the importing one, lazy imports inside functions included."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "src" / "agentdigest"
#: The README names this exception: settings asks due whether a schedule sends every period.
EXCEPTIONS = {("settings", "due")}


def _ranks() -> dict[str, int]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listing = readme.split("Modules, in the order data flows", 1)[1].split("\n\n", 1)[0]
    listing = listing.split("):", 1)[1]  # after the sentence about the exception
    return {name: rank for rank, group in enumerate(listing.split("→")) for name in re.findall(r"`([a-z_]+)/?`", group)}


def _imports() -> list[tuple[str, str, str]]:
    """(importing module, imported module, where) for every relative import in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        module = parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            if len(parts) > 1 and node.level == 1:  # render/ and channels/ importing their own modules
                continue
            names = [node.module.split(".")[0]] if node.module else [alias.name for alias in node.names]
            found += [(module, name, f"{'/'.join(parts)}:{node.lineno}") for name in names
                      if (PACKAGE / f"{name}.py").exists() or (PACKAGE / name).is_dir()]  # not __version__
    return found


def test_every_module_is_in_the_readme_list() -> None:
    ranks = _ranks()
    modules = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.rglob("*.py")}
    assert modules - {"__init__", "templates"} <= set(ranks), sorted(modules - set(ranks) - {"__init__"})


def test_imports_go_down_the_list() -> None:
    ranks = _ranks()
    upward = [f"{where}: {module} imports {imported}, which the README lists after it"
              for module, imported, where in _imports()
              if module != "__init__" and (module, imported) not in EXCEPTIONS and ranks[imported] > ranks[module]]
    assert not upward, upward
    assert len(_imports()) > 100  # the walk found the package's imports
