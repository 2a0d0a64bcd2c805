"""Print the imports that cross between the top-level packages, and which bypass a service.

`python scripts/imports.py [ROOT ...]` counts `import`/`from ... import` statements whose target
is another of the given top-level packages, by (importer, imported) package, and how many of
the ones between contexts reach past the imported sub-domain's `service`, `schemas` or
`exceptions` module (the public rooms a service's signatures use), or past its `service` alone.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

DEFAULT_ROOTS = ["kit", "eprescribe", "pharmacy_gateway", "price_portal", "erx"]
CONTEXTS = {"eprescribe", "pharmacy_gateway", "price_portal"}
PUBLIC = {"service", "schemas", "exceptions"}


def targets(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        # `from pkg import service` names the module in the alias.
        return [f"{node.module}.{alias.name}" for alias in node.names]
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return []


def main(roots: list[str]) -> None:
    crossing: Counter[tuple[str, str]] = Counter()
    bypassing: Counter[tuple[str, str]] = Counter()
    not_service: Counter[tuple[str, str]] = Counter()
    for root in roots:
        for path in sorted(Path(root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                found = {t.split(".")[0]: t for t in targets(node)}
                for top, target in found.items():
                    if top not in roots or top == root:
                        continue
                    crossing[(root, top)] += 1
                    parts = target.split(".")
                    if root in CONTEXTS and top in CONTEXTS and not PUBLIC & set(parts[1:]):
                        bypassing[(root, top)] += 1
                    if root in CONTEXTS and top in CONTEXTS and "service" not in parts[1:]:
                        not_service[(root, top)] += 1
    print(
        f"{'importer':18} {'imported':18} {'imports':>7} {'not a service':>13} {'past its public rooms':>21}"
    )
    for pair, count in sorted(crossing.items()):
        print(f"{pair[0]:18} {pair[1]:18} {count:7} {not_service[pair]:13} {bypassing[pair]:21}")
    between = sum(n for (a, b), n in crossing.items() if a in CONTEXTS and b in CONTEXTS)
    print(
        f"between contexts: {between} imports; {sum(not_service.values())} of something other than a "
        f"service, {sum(bypassing.values())} past service/schemas/exceptions"
    )


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT_ROOTS)
