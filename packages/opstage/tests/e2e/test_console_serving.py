"""The console at ``/``: SPA fallback, STATIC_NOT_FOUND, ``/api`` never shadowed, offline docs.

A real server process serves a small build laid out like Vite's (``index.html``, hashed
``assets/``, the ``swagger-ui/`` copy) through ``OPSTAGE_STATIC_DIR``; a second one has an
empty directory, as a checkout before ``make console`` or a wheel built without Node.
The wheel test at the end builds the real console (``make dist``) and serves it from a clean
venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from opstage_testing.fixtures import DatabaseFactory
from opstage_testing.inprocess import InProcessServer
from opstage_testing.server import ServerProcess, free_port

INDEX = (
    '<!doctype html><html><body><div id="root"></div>'
    '<script src="/assets/app-1a2b.js"></script></body></html>'
)
BUNDLE = "console.log('opstage console');"
REPO = Path(__file__).resolve().parents[4]


def fake_build(root: Path) -> Path:
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "app-1a2b.js").write_text(BUNDLE)
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (root / "swagger-ui").mkdir()
    (root / "swagger-ui" / "swagger-ui-bundle.js").write_text("window.SwaggerUIBundle=1;")
    (root / "swagger-ui" / "swagger-ui.css").write_text("body{}")
    (root.parent / "secret.txt").write_text("outside the build")
    return root


def _start(
    tmp_path_factory: pytest.TempPathFactory,
    database_factory: DatabaseFactory,
    static: Callable[[Path], Path],
) -> ServerProcess:
    data_dir = tmp_path_factory.mktemp("console")
    static_dir = static(data_dir / "site" / "dist")
    env = {"OPSTAGE_STATIC_DIR": str(static_dir)}
    return InProcessServer(data_dir, database_factory(data_dir, migrated=True), env).start()


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, database_factory: Callable[[Path], str | None]
) -> Iterator[ServerProcess]:
    srv = _start(tmp_path_factory, database_factory, fake_build)
    yield srv
    srv.stop()


def _empty(root: Path) -> Path:
    root.mkdir(parents=True)
    return root


@pytest.fixture(scope="module")
def unbuilt(
    tmp_path_factory: pytest.TempPathFactory, database_factory: Callable[[Path], str | None]
) -> Iterator[ServerProcess]:
    srv = _start(tmp_path_factory, database_factory, _empty)
    yield srv
    srv.stop()


def _is_static_not_found(r: httpx.Response) -> None:
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {
        "success": False,
        "error": {"code": "STATIC_NOT_FOUND", "message": "Static UI build not found."},
    }


@pytest.mark.parametrize(
    "path", ["/", "/agents", "/services/svc_123", "/audit-events?action=x&page=2", "/bus/routes/"]
)
def test_console_routes_answer_the_index(built: ServerProcess, path: str) -> None:
    r = httpx.get(built.url + path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.text == INDEX
    assert r.headers["cache-control"] == "no-cache"


def test_head_of_the_console(built: ServerProcess) -> None:
    r = httpx.head(built.url + "/dashboard")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")


def test_assets_are_served_with_their_type_and_cached(built: ServerProcess) -> None:
    r = httpx.get(built.url + "/assets/app-1a2b.js")
    assert r.status_code == 200
    assert r.text == BUNDLE
    assert "javascript" in r.headers["content-type"]
    assert "immutable" in r.headers["cache-control"]
    icon = httpx.get(built.url + "/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")


@pytest.mark.parametrize(
    "path", ["/assets/app-OLD.js", "/assets/deep/missing", "/robots.txt", "/agents/logo.png"]
)
def test_a_missing_asset_is_static_not_found(built: ServerProcess, path: str) -> None:
    _is_static_not_found(httpx.get(built.url + path))


@pytest.mark.parametrize(
    "path", ["/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt"]
)
def test_no_file_outside_the_build(built: ServerProcess, path: str) -> None:
    r = httpx.get(built.url + path)
    assert "outside the build" not in r.text
    assert r.status_code in (404, 200)
    if r.status_code == 200:  # a normalised path is just a console route
        assert r.text == INDEX


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api"),
        ("GET", "/api/"),
        ("GET", "/api/nope"),
        ("GET", "/api/admin/nothing-here"),
        ("GET", "/api/app.js"),
        ("POST", "/api/nope"),
        ("DELETE", "/api/admin/nothing-here"),
        ("POST", "/agents"),
    ],
)
def test_api_misses_stay_json_not_found(built: ServerProcess, method: str, path: str) -> None:
    r = httpx.request(method, built.url + path)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "NOT_FOUND"


def test_api_routes_are_not_shadowed(built: ServerProcess) -> None:
    assert httpx.get(built.url + "/api/system/health").json()["success"] is True
    assert httpx.get(built.url + "/api/admin/agents").status_code == 401
    assert httpx.get(built.url + "/api/openapi.json").json()["info"]["title"] == "Opstage"
    assert httpx.get(built.url + "/metrics").status_code == 200


@pytest.mark.parametrize("path", ["/docs", "/api/docs"])
def test_docs_page_uses_local_assets(built: ServerProcess, path: str) -> None:
    r = httpx.get(built.url + path)
    assert r.status_code == 200
    assert "/swagger-ui/swagger-ui-bundle.js" in r.text
    assert "/api/openapi.json" in r.text
    assert "cdn" not in r.text.lower()
    assert httpx.get(built.url + "/swagger-ui/swagger-ui.css").status_code == 200


@pytest.mark.parametrize("path", ["/", "/agents", "/assets/app-1a2b.js", "/docs", "/api/docs"])
def test_without_a_build_the_console_is_static_not_found(unbuilt: ServerProcess, path: str) -> None:
    _is_static_not_found(httpx.get(unbuilt.url + path))


def test_without_a_build_the_api_still_answers(unbuilt: ServerProcess) -> None:
    assert httpx.get(unbuilt.url + "/api/system/health").status_code == 200
    assert httpx.get(unbuilt.url + "/api/nope").json()["error"]["code"] == "NOT_FOUND"


# --- the wheel ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.sqlite_only
@pytest.mark.timeout(900)
def test_wheel_serves_the_built_console(tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        pytest.fail("npm is needed to build the console into the wheel")
    dist = tmp_path / "dist"
    subprocess.run(
        ["make", "-C", str(REPO), "dist", f"DIST_DIR={dist}"],
        check=True,
        timeout=800,
        capture_output=True,
    )
    (wheel,) = dist.glob("opstage-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert len(names) == len(set(names)), "a file is in the wheel twice"
    assert "opstage/console/dist/index.html" in names
    assert any(n.startswith("opstage/console/dist/assets/") for n in names)
    assert "opstage/store/migrations/script.py.mako" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)],
        check=True,
        timeout=600,
        capture_output=True,
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSTAGE_")}
    env.pop("DATABASE_URL", None)
    env.update({"OPSTAGE_DATA_DIR": str(tmp_path / "data"), "OPSTAGE_DEV_MODE": "true"})
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(venv / "bin" / "opstage"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                r = httpx.get(url + "/", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "opstage serve did not answer"
                time.sleep(0.2)
        assert r.status_code == 200
        assert '<div id="root">' in r.text
        script = next(
            p for p in r.text.split('"') if p.startswith("/assets/") and p.endswith(".js")
        )
        assert httpx.get(url + script).status_code == 200
        assert httpx.get(url + "/services").text == r.text
        assert "swagger-ui-bundle.js" in httpx.get(url + "/docs").text
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
