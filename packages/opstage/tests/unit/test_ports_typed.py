"""The app→store seam stays typed (ADR 0011).

Every repository a unit of work exposes is a protocol of ``app/repositories.py`` whose
signatures name records, never ``Any``: mypy then checks each call a use case makes into
persistence, and ``store/uow.py`` makes mypy fail when a store class drifts from its protocol.
This test keeps ``Any`` from coming back into either file.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import opstage
from opstage.app import ports

APP = Path(opstage.__file__).resolve().parent / "app"


def _anys(node: ast.AST) -> list[int]:
    """Lines where ``Any`` is named (``Any``, ``typing.Any``, or inside a string annotation)."""
    lines = []
    for n in ast.walk(node):
        if (isinstance(n, ast.Name) and n.id == "Any") or (
            isinstance(n, ast.Attribute) and n.attr == "Any"
        ):
            lines.append(n.lineno)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            try:
                inner = ast.parse(n.value, mode="eval")
            except SyntaxError:
                continue
            if _anys(inner):
                lines.append(n.lineno)
    return lines


def _class(tree: ast.Module, name: str) -> ast.ClassDef:
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)


def test_the_repository_protocols_name_no_any() -> None:
    tree = ast.parse((APP / "repositories.py").read_text())
    assert _anys(tree) == [], "app/repositories.py types something as Any"


def test_the_unit_of_work_exposes_each_repository_as_a_protocol() -> None:
    tree = ast.parse((APP / "ports.py").read_text())
    unit = _class(tree, "UnitOfWork")
    assert _anys(unit) == [], "UnitOfWork types something as Any"
    properties = [
        f
        for f in unit.body
        if isinstance(f, ast.AsyncFunctionDef | ast.FunctionDef)
        and any(isinstance(d, ast.Name) and d.id == "property" for d in f.decorator_list)
    ]
    assert len(properties) >= 13
    for prop in properties:
        assert isinstance(prop.returns, ast.Name), prop.name
        protocol = getattr(ports, prop.returns.id)
        assert getattr(protocol, "_is_protocol", False), f"UnitOfWork.{prop.name}: not a Protocol"
        where = inspect.getsourcefile(protocol)
        assert where is not None
        declared = _class(ast.parse(Path(where).read_text()), protocol.__name__)
        assert _anys(declared) == [], f"{protocol.__name__} types something as Any"


def test_the_scan_sees_any_where_it_hides() -> None:
    sample = ast.parse(
        "class P:\n"
        "    def a(self) -> 'dict[str, Any]': ...\n"
        "    def b(self) -> typing.Any: ...\n"
        "    def c(self) -> list[Any]: ...\n"
    )
    assert _anys(sample) == [2, 3, 4]
