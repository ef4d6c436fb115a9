"""Every error code has its status at the edge (ADR 0006).

The contract's codes must carry the contract's status, and every code the server can raise must
be in the table: the codes are collected from the source itself (the ``code`` class attributes
of DomainError subclasses and every ``code=`` handed to one), so a new code without a status
fails here instead of reaching a client as a 500.
"""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import opstage
import pytest
from opstage.api.errors import STATUS_BY_CODE, domain_error_body, error_headers, status_for
from opstage.domain.errors import ActionPrepareFailed, Conflict, DomainError
from opstage_testing.contracts import contract_dir

SOURCE = Path(opstage.__file__).resolve().parent
CODE_KEYWORDS = {"code", "too_large_code"}  # the keywords that carry an error code
# ``code=`` values that are not ours to map, each with the attribute that maps it instead.
DYNAMIC = {"command['error_code'] or 'ACTION_PREPARE_FAILED'"}  # ActionPrepareFailed.family


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(), str(p))) for p in sorted(SOURCE.rglob("*.py"))]


def _error_classes(modules: list[tuple[Path, ast.Module]]) -> dict[str, ast.ClassDef]:
    """DomainError and its subclasses, by name, over the whole source."""
    defs = {n.name: n for _, m in modules for n in ast.walk(m) if isinstance(n, ast.ClassDef)}
    found = {"DomainError": defs["DomainError"]}
    grew = True
    while grew:
        grew = False
        for name, node in defs.items():
            bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
            if name not in found and bases & found.keys():
                found[name] = node
                grew = True
    return found


def _strings(node: ast.expr, module: ast.Module, func: ast.AST | None) -> list[str] | None:
    """The codes an expression can take, or None when they cannot be read off the source."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.BoolOp):
        parts = [_strings(v, module, func) for v in node.values]
        return None if any(p is None for p in parts) else [s for p in parts for s in p or []]
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        table = _module_value(module, node.value.id)
        if isinstance(table, ast.Dict):
            return [v.value for v in table.values if isinstance(v, ast.Constant)]
    if isinstance(node, ast.Name):
        value = _module_value(module, node.id)
        if value is not None:
            return _strings(value, module, None)
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            # A parameter: its default here; what callers pass is collected at their call.
            args = func.args
            for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
                if arg.arg == node.id and default is not None:
                    return _strings(default, module, None)
            positional = args.posonlyargs + args.args
            for arg, default in zip(positional[-len(args.defaults) :], args.defaults, strict=False):
                if arg.arg == node.id:
                    return _strings(default, module, None)
    return None


def _module_value(module: ast.Module, name: str) -> ast.expr | None:
    for stmt in module.body:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in stmt.targets
        ):
            return stmt.value
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and stmt.target.id == name
        ):
            return stmt.value
    return None


def _calls(node: ast.AST, func: ast.AST | None) -> list[tuple[ast.Call, ast.AST | None]]:
    """Every call under ``node``, each with the innermost function around it."""
    found: list[tuple[ast.Call, ast.AST | None]] = []
    for child in ast.iter_child_nodes(node):
        inner = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else func
        if isinstance(child, ast.Call):
            found.append((child, func))
        found.extend(_calls(child, inner))
    return found


def raised_codes() -> tuple[dict[str, str], list[str]]:
    """Every code the source can raise (code → where), and the sites that cannot be read."""
    modules = _modules()
    classes = _error_classes(modules)
    codes: dict[str, str] = {}
    unreadable: list[str] = []
    for name, cls in classes.items():
        for stmt in cls.body:
            if isinstance(stmt, ast.Assign | ast.AnnAssign):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for target in targets:
                    if (
                        isinstance(target, ast.Name)
                        and target.id in ("code", "family")
                        and isinstance(stmt.value, ast.Constant)
                        and stmt.value.value
                    ):
                        codes.setdefault(stmt.value.value, f"class {name}")
    for path, module in modules:
        where_base = path.relative_to(SOURCE.parent)
        for node, func in _calls(module, None):
            callee = node.func
            callee_name = callee.attr if isinstance(callee, ast.Attribute) else None
            callee_name = callee.id if isinstance(callee, ast.Name) else callee_name
            for kw in node.keywords:
                if kw.arg not in CODE_KEYWORDS:
                    continue
                if kw.arg == "code" and callee_name not in classes:
                    continue
                where = f"{where_base}:{node.lineno}"
                found = _strings(kw.value, module, func)
                if found is None:
                    if ast.unparse(kw.value) not in DYNAMIC:
                        unreadable.append(f"{where}: code={ast.unparse(kw.value)}")
                    continue
                for code in found:
                    codes.setdefault(code, where)
    return codes, unreadable


def test_every_contract_code_has_the_contract_status() -> None:
    directory = contract_dir()
    assert directory is not None, "contracts/ not found"
    doc = json.loads((directory / "errors.json").read_text())
    contract = {c["code"]: c["httpStatus"] for g in doc["groups"] for c in g["codes"]}
    wrong = {
        code: (STATUS_BY_CODE.get(code), status)
        for code, status in contract.items()
        if STATUS_BY_CODE.get(code) != status
    }
    assert not wrong, f"code: (mapped, contract) — {wrong}"


def test_every_code_the_server_raises_has_a_status() -> None:
    codes, unreadable = raised_codes()
    assert not unreadable, (
        "error codes the mapping test cannot read off the source (spell them out, or list the "
        f"site in DYNAMIC with what maps it): {unreadable}"
    )
    unmapped = {code: where for code, where in codes.items() if code not in STATUS_BY_CODE}
    assert not unmapped, f"error codes without a status in api/errors.py: {unmapped}"


def test_the_scan_finds_codes_of_every_kind() -> None:
    """The collector reads class attributes, literals, module constants, parameter defaults
    and spelled-out tables; were it blind, the test above would pass on nothing."""
    codes, _ = raised_codes()
    for code in (
        "VALIDATION_FAILED",  # class attribute
        "LOGIN_FAILED",  # a literal code=
        "BACKUP_UNSUPPORTED_ENGINE",  # a module constant
        "PAYLOAD_TOO_LARGE",  # a parameter default
        "AGENT_DISABLED",  # a spelled-out table
        "ACTION_PREPARE_FAILED",  # a family
    ):
        assert code in codes, code


def test_an_agents_own_code_takes_the_status_of_its_family() -> None:
    assert status_for(ActionPrepareFailed("no disk", code="DISK_FULL")) == 424
    assert status_for(ActionPrepareFailed("no disk", code="NOT_FOUND")) == 424


def test_an_unmapped_code_has_no_status_to_guess() -> None:
    assert status_for(DomainError("?", code="NO_SUCH_CODE_ANYWHERE")) is None
    assert status_for(Conflict("agent", code="AGENT_DISABLED")) == 403


def test_an_unmapped_code_answers_a_masked_500_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = DomainError("secret internals", code="NO_SUCH_CODE_ANYWHERE", details={"a": 1})
    with caplog.at_level(logging.ERROR, logger="opstage.api"):
        status, body = domain_error_body(error, "req-1")
    assert status == 500
    assert body == {
        "success": False,
        "error": {
            "code": "INTERNAL_ERROR",
            "message": "Internal server error.",
            "details": {"requestId": "req-1"},
        },
    }
    assert any("NO_SUCH_CODE_ANYWHERE" in r.getMessage() for r in caplog.records)


def test_a_retry_hint_becomes_the_retry_after_header() -> None:
    assert error_headers(DomainError("busy", code="RATE_LIMITED", retry_after_seconds=7)) == {
        "Retry-After": "7"
    }
    assert error_headers(Conflict("no hint")) is None
