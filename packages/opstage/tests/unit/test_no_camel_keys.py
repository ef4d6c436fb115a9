"""The app never reads or writes the wire's camelCase keys (ADR 0011).

Bodies are parsed at the edge into typed, snake_case inputs (``api/inputs.py``), use cases
return the records of ``domain/records.py``, and only ``api/views.py`` writes camelCase. This
scans ``app/`` for string constants used as dict keys, subscripts or ``.get``/``in`` keys that
look camelCase, outside the payloads the contract defines as free-form documents: error
``details`` and audit ``metadata`` (or ``meta``, or what a ``…_meta`` helper returns) are
stored and shown as written, in the contract's spelling.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import opstage

APP = Path(opstage.__file__).resolve().parent / "app"
CAMEL = re.compile(r"^[a-z]+[A-Z]")
# Keyword arguments whose dict is a contract document, not a record crossing layers.
DOCUMENTS = {"details", "metadata"}

# Modules not converted yet, each with why. Remove an entry when its module is converted: the
# test fails on an entry that no longer needs it.
NOT_CONVERTED = {
    # Capsule Bus admission (ADR 0009) reads the publish body as the wire's dict and builds
    # its answers (and its rows, as loose dicts) itself.
    "bus_admission.py": "bus admission reads the wire body and builds its answers (ADR 0009)",
    # Route bodies are parsed at the edge (RouteSpec); the simulation's report, made of
    # bus.evaluate_route's entries, is still built in the app.
    "bus_routes.py": "the simulation report is a wire document built from the bus's entries",
    # Dashboards, metrics and diagnostics are built as wire documents in the app.
    "observability.py": "dashboard/diagnostics documents are built in the app",
    "maintenance.py": "the sweep's run report is a wire document built in the app",
    "system.py": "capabilities and system info are wire documents built in the app",
    "event_log.py": "the live stream's event documents are built in the app",
    "cross_node.py": "the cross-node status shown by diagnostics is built in the app",
}


def _document(node: ast.AST) -> bool:
    """A document's own name (``details``, ``meta``…), or an attribute/subscript of it."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return isinstance(node, ast.Name) and node.id in DOCUMENTS | {"meta"}


def _keys(tree: ast.AST) -> list[tuple[int, str]]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        parts: list[ast.AST] = []
        if isinstance(node, ast.Call):
            parts = [kw.value for kw in node.keywords if kw.arg in DOCUMENTS]
            if isinstance(node.func, ast.Attribute) and _document(node.func.value):
                parts.append(node)
        elif isinstance(node, ast.FunctionDef) and node.name.endswith("_meta"):
            parts = [n for n in ast.walk(node) if isinstance(n, ast.Return)]  # builds metadata
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is not None and any(_document(t) for t in targets):
                parts = [node]
        for part in parts:
            skip.update(id(n) for n in ast.walk(part))
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        keys: list[ast.expr | None] = []
        if isinstance(node, ast.Dict):
            keys = list(node.keys)
        elif isinstance(node, ast.Subscript):
            keys = [node.slice]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("get", "pop", "setdefault") and node.args:
                keys = [node.args[0]]
        elif isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In | ast.NotIn):
            keys = [node.left]
        for key in keys:
            if (
                isinstance(key, ast.Constant)
                and isinstance(key.value, str)
                and CAMEL.match(key.value)
            ):
                found.append((key.lineno, key.value))
    return found


def _modules() -> dict[str, ast.Module]:
    return {p.name: ast.parse(p.read_text(), str(p)) for p in sorted(APP.glob("*.py"))}


def test_converted_app_modules_use_no_camel_case_keys() -> None:
    offenders = {
        name: _keys(tree)
        for name, tree in _modules().items()
        if name not in NOT_CONVERTED and _keys(tree)
    }
    assert offenders == {}


def test_the_allow_list_holds_only_modules_that_still_need_it() -> None:
    modules = _modules()
    stale = [name for name in NOT_CONVERTED if name not in modules or not _keys(modules[name])]
    assert stale == []


def test_the_scan_sees_keys_reads_and_membership() -> None:
    sample = ast.parse(
        "x = {'agentId': 1}\n"
        "y = body['eventType']\n"
        "z = body.get('routePolicy')\n"
        "w = 'displayName' in changes\n"
        "raise E('m', details={'serviceId': 1})\n"
        "audit(metadata={'actionName': 1})\n"
        "meta: dict = {'fromStatus': 1}\n"
        "meta.setdefault('ipAddress', 1)\n"
        "def _audit_meta(s):\n    return {'dlqTopic': s}\n"
        "ok = row['agent_id']\n"
    )
    assert [k for _, k in _keys(sample)] == ["agentId", "eventType", "routePolicy", "displayName"]
