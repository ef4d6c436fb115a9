"""Use cases take narrow dependencies, never the whole ``AppContext`` (ADR 0010).

Each use case names what it reads of the context in a protocol (``UnitContext`` and the ones
built on it: ``AgentContext``, ``CommandContext``, ``TopicContext``, ...); ``AppContext`` is the
composition root's one object that satisfies them all, and mypy checks that at every call site
in the routes, the hot path, the workers and the CLI. This test keeps ``AppContext`` from coming
back into an app module's signatures: only ``app/context.py``, which defines it, names it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import opstage

APP = Path(opstage.__file__).resolve().parent / "app"
NAME = "AppContext"


def _names_it(node: ast.AST | None) -> bool:
    """``AppContext`` named in an annotation: bare, dotted, in a union, or inside a string."""
    if node is None:
        return False
    for n in ast.walk(node):
        if (isinstance(n, ast.Name) and n.id == NAME) or (
            isinstance(n, ast.Attribute) and n.attr == NAME
        ):
            return True
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            try:
                inner = ast.parse(n.value, mode="eval")
            except SyntaxError:
                continue
            if _names_it(inner):
                return True
    return False


def _uses(tree: ast.Module) -> list[str]:
    """Where a module takes, returns, holds or imports ``AppContext``: ``line: what``."""
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef):
            a = n.args
            params = [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]
            for p in params:
                if p is not None and _names_it(p.annotation):
                    found.append(f"{p.lineno}: {n.name}({p.arg})")
            if _names_it(n.returns):
                found.append(f"{n.lineno}: {n.name} returns it")
        elif isinstance(n, ast.AnnAssign) and _names_it(n.annotation):
            found.append(f"{n.lineno}: {ast.unparse(n.target)}")
        elif isinstance(n, ast.ImportFrom) and any(alias.name == NAME for alias in n.names):
            found.append(f"{n.lineno}: imported")
    return found


def test_no_use_case_takes_the_whole_app_context() -> None:
    modules = sorted(p for p in APP.rglob("*.py") if p.name != "context.py")
    assert len(modules) > 20, "the scan found no app modules"
    offenders = {
        str(p.relative_to(APP)): uses
        for p in modules
        if (uses := _uses(ast.parse(p.read_text(), filename=str(p))))
    }
    assert offenders == {}, (
        "app modules name AppContext; declare a protocol of what the use case reads instead "
        "(ADR 0010): " + repr(offenders)
    )


def test_the_scan_sees_app_context_where_it_hides() -> None:
    sample = ast.parse(
        "from opstage.app.context import Actor, AppContext\n"
        "async def a(ctx: AppContext) -> None: ...\n"
        "def b(x: int, *, ctx: 'AppContext | None' = None) -> None: ...\n"
        "def c(ctx: context.AppContext) -> None: ...\n"
        "def d() -> AppContext: ...\n"
        "class W:\n"
        "    _ctx: AppContext | None = None\n"
        "    def bind(self, ctx: UnitContext) -> None: ...\n"
    )
    assert _uses(sample) == [
        "1: imported",
        "2: a(ctx)",
        "3: b(ctx)",
        "4: c(ctx)",
        "5: d returns it",
        "7: _ctx",
    ]
