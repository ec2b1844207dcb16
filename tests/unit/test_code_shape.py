"""Production functions stay short enough to read in one screen: at most 60 lines in `domain/`,
`infrastructure/`, `workers/` and `api/`, unless a `# long:` comment right above the `def` says
why. (Branching is bounded by ruff's mccabe rule, max-complexity 12, in pyproject.toml.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "infrastructure", "workers", "api")
MAX_LINES = 60


def long_functions() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            lines = path.read_text().splitlines()
            for node in ast.walk(ast.parse("\n".join(lines))):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                explained = first >= 2 and lines[first - 2].strip().startswith("# long:")
                if length > MAX_LINES and not explained:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length})")
    return found


def test_no_production_function_is_over_60_lines_without_a_reason() -> None:
    assert long_functions() == []
