"""One scenario, two servers: every request is recorded on both sides and the records compared."""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .allowed import ALLOWED, Allowed
from .servers import ADMIN_PASSWORD, ADMIN_USERNAME
from .shape import Shape, differences, shape_of


@dataclass
class Record:
    label: str
    status: int
    code: str | None
    shape: Shape
    content_type: str


@dataclass
class Side:
    """A client of one server; `vars` holds this server's ids so paths can name them."""

    name: str
    url: str
    records: dict[str, Record] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)
    csrf: str = ""

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=40)
        self.anon = httpx.Client(base_url=self.url, timeout=40)

    def _reconnect(self) -> None:
        cookies = self.http.cookies
        self.close()
        self.http = httpx.Client(base_url=self.url, timeout=40, cookies=cookies)
        self.anon = httpx.Client(base_url=self.url, timeout=40)

    def close(self) -> None:
        self.http.close()
        self.anon.close()

    def login(self) -> None:
        r = self.http.post(
            "/api/admin/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
        )
        r.raise_for_status()
        self.csrf = r.json()["data"]["csrfToken"]

    def call(
        self,
        label: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        auth: str = "admin",
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        record: bool = True,
    ) -> httpx.Response:
        """`auth`: admin (cookie, and CSRF on writes), nocsrf, agent (vars['agentToken']),
        agent:<var> (another token), or none."""
        path = path.format(**self.vars)
        hdrs = dict(headers or {})
        client = self.http
        if auth == "admin" and method not in ("GET", "HEAD"):
            hdrs.setdefault("X-CSRF-Token", self.csrf)
        elif auth.startswith("agent"):
            var = auth.split(":", 1)[1] if ":" in auth else "agentToken"
            hdrs["Authorization"] = f"Bearer {self.vars[var]}"
            client = self.anon
        elif auth == "none":
            client = self.anon
        kwargs: dict[str, Any] = {"params": params, "headers": hdrs}
        if content is not None:
            kwargs["content"] = content
        elif json is not None:
            kwargs["json"] = json
        try:
            r = client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            # Recorded as a (failing) answer so the scenario goes on and the break is reported.
            r = httpx.Response(
                599,
                json={"success": False, "error": {"code": f"TRANSPORT:{type(exc).__name__}"}},
                request=httpx.Request(method, self.url + path),
            )
        if record:
            self.records[label] = describe(label, r)
        if r.status_code >= 500:
            # A server may close the connection after a 5xx; the next request must not inherit
            # that reset (it would fail one request later, at random).
            self._reconnect()
        if client is self.http and r.headers.get("content-type", "").startswith("application/json"):
            # GET …/auth/csrf issues a new token on both servers: keep using the newest one.
            data = r.json().get("data") if isinstance(r.json(), dict) else None
            if isinstance(data, dict) and isinstance(data.get("csrfToken"), str):
                self.csrf = data["csrfToken"]
        return r

    def data(self, r: httpx.Response) -> Any:
        return r.json().get("data")


def describe(label: str, r: httpx.Response) -> Record:
    ctype = r.headers.get("content-type", "").split(";")[0].strip()
    code = None
    shape: Shape = f"<{ctype or 'empty'}>"
    if ctype == "application/json":
        try:
            body = r.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            code = body["error"].get("code")
        shape = shape_of(body)
    return Record(label, r.status_code, code, shape, ctype)


@dataclass
class Outcome:
    scenario: str
    label: str
    problems: list[str]  # not allowed
    allowed: list[tuple[str, Allowed]]

    @property
    def passed(self) -> bool:
        return not self.problems


def compare(scenario: str, ours: Record | None, ref: Record | None, label: str) -> Outcome:
    diffs: list[str] = []
    if ours is None or ref is None:
        diffs.append(f"!not recorded on {'ours' if ours is None else 'reference'}")
    else:
        if ours.status != ref.status:
            diffs.append(f"status {ours.status}/{ref.status}")
        if ours.code != ref.code:
            diffs.append(f"code {ours.code}/{ref.code}")
        # An answer and a refusal have no common shape: the status difference says it all.
        if (ours.status < 400) != (ref.status < 400):
            pass
        # An error's details are free-form; its code and the envelope keys are the contract.
        elif ours.code is not None and ref.code is not None:
            diffs.extend(
                d
                for d in differences(ours.shape, ref.shape)
                if not d[1:].startswith("error.details")
            )
        else:
            diffs.extend(differences(ours.shape, ref.shape))
    problems: list[str] = []
    allowed: list[tuple[str, Allowed]] = []
    for d in diffs:
        rule = find_allowed(scenario, label, d)
        if rule is None:
            problems.append(d)
        else:
            allowed.append((d, rule))
    return Outcome(scenario, label, problems, allowed)


def find_allowed(scenario: str, label: str, diff: str) -> Allowed | None:
    for rule in ALLOWED:
        if (
            fnmatch.fnmatchcase(scenario, rule.scenario)
            and fnmatch.fnmatchcase(label, rule.label)
            and fnmatch.fnmatchcase(diff, rule.diff)
        ):
            return rule
    return None


Scenario = Callable[[Side], None]


def run_both(name: str, fn: Scenario, ours: Side, ref: Side) -> tuple[list[Outcome], list[str]]:
    """Runs the scenario on both servers at once (threads), then compares label by label."""
    errors: list[str] = []
    for side in (ours, ref):
        side.records = {}

    def go(side: Side) -> None:
        try:
            fn(side)
        except Exception as exc:  # a scenario that broke part-way still compares what it saw
            errors.append(f"{side.name}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=go, args=(s,)) for s in (ours, ref)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    labels = list(dict.fromkeys([*ref.records, *ours.records]))
    outcomes = [compare(name, ours.records.get(k), ref.records.get(k), k) for k in labels]
    return outcomes, errors
