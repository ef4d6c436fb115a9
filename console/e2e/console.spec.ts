// The walk-through, in one browser session: sign in, create a registration token,
// watch the demo agent appear live, run actions (the confirmation-gated one included), read
// the results, export the audit CSV, route a bus event to a command, create a topic and follow
// a message into a subscription's lag and its DLQ — and a screenshot of
// each main page into docs/screenshots/.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { expect, test, type Page } from "@playwright/test";
import { ADMIN } from "../playwright.config";
import { port, repo, startServer, stop } from "./stack";

const shots = path.join(repo, "docs/screenshots");
const require = (await import("node:module")).createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

test.describe.configure({ mode: "serial" });

let page: Page;
let server: ChildProcess | null = null;
let agent: ChildProcess | null = null;
let agentLog = "";

async function shot(name: string) {
  await page.waitForLoadState("networkidle").catch(() => undefined);
  await page.screenshot({ path: path.join(shots, `${name}.png`) });
}

async function axe(context: string) {
  await page.addScriptTag({ content: AXE });
  const violations = await page.evaluate(async () => {
    type Node = { target: string[]; failureSummary?: string };
    const w = window as unknown as { axe: { run: (ctx: Document, o: object) => Promise<{ violations: { id: string; impact: string; nodes: Node[] }[] }> } };
    const result = await w.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] } });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary ?? ""}`) }));
  });
  const serious = violations.filter((v) => v.impact === "critical" || v.impact === "serious");
  expect(serious, `${context}: ${JSON.stringify(violations)}`).toEqual([]);
}

async function openMenu(label: string) {
  await page.getByRole("navigation", { name: "Main" }).getByText(label, { exact: true }).click();
}

async function closeAction() {
  await page.getByTestId("action-close").click();
  await expect(page.getByTestId("action-close")).toBeHidden();
}

async function closeDrawer() {
  await page.locator(".ant-drawer-open .ant-drawer-close").click();
  await expect(page.locator(".ant-drawer-open")).toHaveCount(0);
}

async function runAction(name: string) {
  await page.locator(`button[data-action="${name}"]`).click();
  const dialog = page.getByRole("dialog").last();
  // ACTION_PREPARE done: the form (or the error) replaces the spinner.
  await expect(dialog.getByRole("tab", { name: "Form" })).toBeVisible({ timeout: 30_000 });
  return dialog;
}

// The topic walk-through talks to the API directly for what an agent does (publish, nack) with
// the demo agent's own credentials, and for setup an admin does (a DLQ topic, a scratch topic).
function agentCredentials(): { agentId: string; agentToken: string } {
  const file = path.join(process.env.E2E_DATA_DIR ?? "/tmp", "demo-agent.token.json");
  return JSON.parse(readFileSync(file, "utf8")) as { agentId: string; agentToken: string };
}

async function asAgent(method: string, route: string, body: unknown): Promise<Record<string, unknown>> {
  const { agentId, agentToken } = agentCredentials();
  const r = await fetch(`http://127.0.0.1:${port}/api/agents/${agentId}${route}`, {
    method,
    headers: { authorization: `Bearer ${agentToken}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = (await r.json()) as { data: Record<string, unknown> };
  expect(r.status, JSON.stringify(json)).toBe(200);
  return json.data;
}

async function asAdmin(method: string, route: string, body?: unknown): Promise<Record<string, unknown>> {
  const base = `http://127.0.0.1:${port}`;
  const login = await fetch(`${base}/api/admin/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(ADMIN),
  });
  const session = (await login.json()) as { data: { csrfToken: string } };
  const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  const r = await fetch(`${base}${route}`, {
    method,
    headers: { cookie, "x-csrf-token": session.data.csrfToken, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await r.json()) as { data: Record<string, unknown> };
  expect(r.status, JSON.stringify(json)).toBe(200);
  return json.data;
}

test.beforeAll(async ({ browser }) => {
  server = await startServer();
  page = await browser.newPage();
});

test.afterAll(async () => {
  await stop(agent);
  await stop(server);
  await page.close();
});

test("the console loads at / and a wrong password is refused", async () => {
  await page.goto("/");
  await expect(page.getByRole("button", { name: "Sign in" })).toBeVisible();
  await page.getByLabel("Username").fill(ADMIN.username);
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toBeVisible();
  await shot("login");
  await axe("login");
});

test("sign in and see the dashboard", async () => {
  await page.getByLabel("Password").fill(ADMIN.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("whoami")).toContainText("(owner)");
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
});

test("create a token, start the demo agent with it, and watch it appear live", async () => {
  await openMenu("Registration Tokens");
  await page.getByRole("button", { name: "New token" }).click();
  await page.getByRole("dialog").getByLabel("Name").fill("e2e demo");
  await page.getByRole("button", { name: "Create" }).click();
  const raw = (await page.getByTestId("raw-token").innerText()).trim();
  expect(raw).toMatch(/^opstage_reg_/);
  await shot("registration-token-created");
  await page.getByTestId("token-close").click();
  await expect(page.getByTestId("raw-token")).toBeHidden();

  await openMenu("Agents");
  await expect(page.getByText("demo-service")).toHaveCount(0);
  agent = spawn(path.join(repo, ".venv/bin/python"), [path.join(repo, "examples/demo_service/service.py")], {
    env: {
      ...process.env,
      OPSTAGE_BACKEND_URL: `http://127.0.0.1:${port}`,
      OPSTAGE_REGISTRATION_TOKEN: raw,
      OPSTAGE_AGENT_CODE: "demo-service",
      OPSTAGE_AGENT_TOKEN_FILE: path.join(process.env.E2E_DATA_DIR ?? "/tmp", "demo-agent.token.json"),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  agent.stdout?.on("data", (d: Buffer) => (agentLog += d.toString()));
  agent.stderr?.on("data", (d: Buffer) => (agentLog += d.toString()));
  // No reload: the row arrives over the SSE stream.
  const row = page.getByRole("row").filter({ hasText: "demo-service" });
  await expect(row, agentLog).toBeVisible({ timeout: 30_000 });
  await expect(row.locator('[data-status="ONLINE"]')).toBeVisible({ timeout: 30_000 });
  await shot("agents");
  await axe("agents");
  await openMenu("Dashboard");
  await expect(page.locator('[data-count="ONLINE:1"]')).toBeVisible();
  await shot("dashboard");
});

test("run echo from the generated form and read its result", async () => {
  await openMenu("Capsule Services");
  await page.getByRole("link", { name: "demo-service" }).click();
  await page.getByRole("tab", { name: "Actions" }).click();
  await shot("service-drawer");
  const dialog = await runAction("echo");
  await dialog.getByLabel("message").fill("hello");
  await dialog.getByLabel("repeat").fill("2");
  await dialog.getByRole("button", { name: "Run" }).click();
  await expect(dialog.getByTestId("result-message")).toHaveText("hello hello");
  await closeAction();
});

test("a table result: listThings with its columns", async () => {
  const dialog = await runAction("listThings");
  await dialog.getByRole("button", { name: "Run" }).click();
  await expect(dialog.getByTestId("command-result").getByRole("columnheader", { name: "Owner" })).toBeVisible();
  await expect(dialog.getByRole("cell", { name: "Invoice exporter" })).toBeVisible();
  await shot("action-result-table");
  await closeAction();
});

test("rotateSecret: prepared payload, confirmation required, then the result", async () => {
  const dialog = await runAction("rotateSecret");
  await expect(dialog.getByText("activeKeyId", { exact: true })).toBeVisible();
  const run = dialog.getByRole("button", { name: "Run" });
  await expect(run).toBeDisabled();
  await dialog.getByTestId("confirm-input").fill("rotateSecret");
  await expect(run).toBeEnabled();
  await shot("action-confirmation");
  await run.click();
  await expect(dialog.getByTestId("result-message")).toContainText("Rotated payments-api");
  await closeAction();
  await closeDrawer();
});

test("commands list shows what ran", async () => {
  await openMenu("Commands");
  await expect(page.getByRole("row").filter({ hasText: "rotateSecret" }).first()).toBeVisible();
  await shot("commands");
});

test("export the audit log as CSV", async () => {
  await openMenu("Audit Events");
  await expect(page.getByRole("row").filter({ hasText: "command.created" }).first()).toBeVisible();
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("export-csv").click()]);
  const file = await download.path();
  const csv = readFileSync(file!, "utf8");
  expect(csv.split("\n")[0]).toContain("action");
  expect(csv).toContain("command");
  await shot("audit-events");
  await axe("audit events");
});

test("a bus route turns the demo's event into a routed command", async () => {
  await openMenu("Capsule Bus");
  await page.getByRole("button", { name: "New route" }).click();
  const form = page.getByRole("dialog");
  await form.getByLabel("Name").fill("announce to echo");
  await form.getByLabel("Event type").fill("demo.announced");
  await form.getByLabel("Target service").fill("demo-service");
  await form.getByLabel("Target action").fill("echo");
  await form.getByLabel("Input mapping (JSON)").fill('{"message": "/payload/text"}');
  await form.getByRole("button", { name: "Create" }).click();
  await expect(page.getByRole("row").filter({ hasText: "announce to echo" })).toBeVisible();
  await shot("bus-routes");

  await openMenu("Capsule Services");
  await page.getByRole("link", { name: "demo-service" }).click();
  await page.getByRole("tab", { name: "Actions" }).click();
  const dialog = await runAction("announce");
  await dialog.getByLabel("text").fill("routed hello");
  await dialog.getByRole("button", { name: "Run" }).click();
  await expect(dialog.getByTestId("result-message")).toContainText("1 routed command");
  await closeAction();
  await closeDrawer();

  await page.goto("/commands?actionName=echo&type=ACTION_EXECUTE");
  const routed = page.getByRole("row").filter({ has: page.locator('[data-status="SUCCEEDED"]') });
  await expect(routed).toHaveCount(2); // the one run by hand, and the routed one
  const messages: string[] = [];
  for (const n of [0, 1]) {
    await routed.nth(n).click();
    messages.push((await page.getByTestId("result-message").innerText()).trim());
    await closeDrawer();
  }
  expect(messages.sort()).toEqual(["hello hello", "routed hello"]);

  await page.goto("/bus?tab=events");
  await expect(page.getByRole("row").filter({ hasText: "demo.announced" })).toBeVisible();
  await shot("bus-events");
  await axe("bus events");
});

test("an existing bus route is edited: mode, filters and target", async () => {
  await page.goto("/bus?tab=routes");
  const row = page.getByRole("row").filter({ hasText: "announce to echo" });
  await row.getByRole("button", { name: "Edit" }).click();
  const form = page.getByRole("dialog");
  await expect(form.getByLabel("Name")).toHaveValue("announce to echo");
  await expect(form.getByLabel("Target action")).toHaveValue("echo");
  await axe("bus route editor");
  await form.getByLabel("Target action").fill("announce");
  await form.getByLabel("Filters (JSON)").fill('[{"path": "/payload/text", "op": "exists"}]');
  await form.getByLabel("Status").click({ force: true }); // the selected value covers the input
  await page.locator(".ant-select-item-option", { hasText: "DRY_RUN" }).click();
  await form.getByRole("button", { name: "Save" }).click();
  await expect(form).toBeHidden();
  await expect(row.locator('[data-status="DRY_RUN"]')).toBeVisible();
  await expect(row).toContainText("demo-service → announce");
  // What the server stored, not only what the table shows.
  const stored = await page.evaluate(async () => {
    const r = await fetch("/api/admin/bus/routes?pageSize=100", { credentials: "same-origin" });
    return ((await r.json()) as { data: { name: string; status: string; filters: unknown; target: { actionName: string } }[] }).data;
  });
  const route = stored.find((r) => r.name === "announce to echo");
  expect(route?.status).toBe("DRY_RUN");
  expect(route?.target.actionName).toBe("announce");
  expect(route?.filters).toMatchObject([{ path: "/payload/text", op: "exists" }]);
  await axe("bus routes");
});

test("topics: create one, see a publish, a durable subscription's lag and its dead letter", async () => {
  await openMenu("Topics");
  await expect(page.getByRole("heading", { name: "Topics" })).toBeVisible();
  await page.getByRole("button", { name: "New topic" }).click();
  const form = page.getByRole("dialog", { name: "New topic" });
  // Refused in the browser first: dots are reserved in every fragment.
  await form.getByLabel("Namespace").fill("shop.eu");
  await form.getByLabel("Name", { exact: true }).fill("orders");
  await form.getByRole("button", { name: "Create" }).click();
  await expect(form.getByText("dots are reserved")).toBeVisible();
  await form.getByLabel("Namespace").fill("shop");
  await expect(form.getByTestId("wire-preview")).toHaveText("shop.default.orders");
  await form.getByLabel("Retention", { exact: true }).fill("7");
  await form.getByLabel("Labels").fill("team=ops, tier=gold");
  await form.getByRole("button", { name: "Create" }).click();
  await expect(form).toBeHidden();
  const row = page.getByRole("row").filter({ hasText: "shop.default.orders" });
  await expect(row).toBeVisible();
  await expect(row).toContainText("7 d");
  await expect(row).toContainText("team=ops");
  // The server's refusal is shown as it gave it: the same topic twice.
  await page.getByRole("button", { name: "New topic" }).click();
  await form.getByLabel("Namespace").fill("shop");
  await form.getByLabel("Name", { exact: true }).fill("orders");
  await form.getByRole("button", { name: "Create" }).click();
  await expect(form.getByRole("alert")).toContainText("TOPIC_EXISTS");
  await form.getByRole("button", { name: "Cancel" }).click();

  // Topics made elsewhere arrive live (topic.changed), no reload.
  await asAdmin("POST", "/api/admin/topics", { namespace: "shop", tenant: "default", name: "orders-dlq", partitions: 1 });
  await asAdmin("POST", "/api/admin/topics", { namespace: "shop", tenant: "default", name: "scratch" });
  await expect(page.getByRole("row").filter({ hasText: "shop.default.orders-dlq" })).toBeVisible();
  const scratch = page.getByRole("row").filter({ hasText: "shop.default.scratch" });
  await expect(scratch).toBeVisible();
  await scratch.getByRole("button", { name: "Delete" }).click();
  await page.locator(".ant-popconfirm").getByRole("button", { name: "OK" }).click();
  await expect(scratch).toHaveCount(0);
  await shot("topics");
  await axe("topics");

  // The demo agent publishes; the topic's peek shows it.
  const receipt = await asAgent("POST", "/topics/publish", {
    topic: "shop.default.orders",
    key: "order-17",
    payload: { orderId: "o-17", total: 42 },
    headers: { trace: "e2e" },
  });
  await page.getByRole("button", { name: "shop.default.orders", exact: true }).click();
  const drawer = page.locator(".ant-drawer-open");
  await expect(drawer.getByTestId("partition-bounds")).toContainText("Partition");
  await drawer.getByRole("tab", { name: "Messages" }).click();
  const message = drawer.getByTestId("topic-messages").getByRole("row").filter({ hasText: "order-17" });
  await expect(message).toBeVisible();
  await expect(message).toContainText('"orderId":"o-17"');
  await expect(message).toContainText("trace=e2e");
  expect(new URL(page.url()).searchParams.get("topic")).toBe("shop.default.orders");

  // A durable subscription from the earliest offset: one message not acked, lag 1.
  await drawer.getByRole("tab", { name: "Subscriptions" }).click();
  await drawer.getByRole("button", { name: "New subscription" }).click();
  const subForm = page.getByRole("dialog", { name: "New subscription" });
  await subForm.getByLabel("Name").fill("billing");
  await subForm.getByLabel("Earliest").check();
  await subForm.getByLabel("DLQ topic").fill("shop.default.orders-dlq");
  await subForm.getByRole("button", { name: "Create" }).click();
  await expect(subForm).toBeHidden();
  const sub = drawer.getByTestId("subscriptions").getByRole("row").filter({ hasText: "billing" });
  await expect(sub.getByTestId("subscription-lag")).toHaveText("1");
  await expect(sub).toContainText(`${String(receipt.partition)}:1`);
  await expect(page.locator(".ant-message-notice")).toHaveCount(0); // the toast covers the drawer's title
  await shot("topic-subscriptions");
  await axe("topic drawer");

  // The agent nacks it: it goes to the DLQ with its origin headers, and the lag falls live.
  await asAgent("POST", "/topics/subscriptions/billing/nack", {
    topic: "shop.default.orders",
    partition: receipt.partition,
    offset: receipt.offset,
    reason: "no such customer",
  });
  await expect(sub.getByTestId("subscription-lag")).toHaveText("0");
  await drawer.getByRole("tab", { name: "Dead letters" }).click();
  const dead = drawer.getByTestId("dlq-messages").getByRole("row").filter({ hasText: "order-17" });
  await expect(dead).toBeVisible();
  await expect(dead).toContainText("origin.topic=shop.default.orders");
  await expect(dead).toContainText("dlq.reason=nack: no such customer");
  await shot("topic-dlq");
  await axe("topic dead letters");
  await closeDrawer();
  expect(new URL(page.url()).searchParams.get("topic")).toBeNull();
});

test("users and settings pages", async () => {
  await openMenu("Users");
  await expect(page.getByRole("row").filter({ hasText: "admin" }).first()).toBeVisible();
  await shot("users");
  await axe("users");
  await openMenu("Settings");
  await expect(page.getByRole("tab", { name: "Maintenance" })).toBeVisible();
  await shot("settings");
  await axe("settings");
});

test("filters live in the URL and survive a reload", async () => {
  await page.goto("/commands?status=SUCCEEDED&pageSize=10");
  await expect(page.getByRole("row").filter({ hasText: "rotateSecret" }).first()).toBeVisible();
  await page.reload();
  await expect(page.getByLabel("Status").first()).toBeVisible();
  expect(new URL(page.url()).searchParams.get("status")).toBe("SUCCEEDED");
  await expect(page.getByRole("row").filter({ has: page.locator('[data-status="FAILED"]') })).toHaveCount(0);
});

test("the server restarts: the banner shows, and the stream resumes with Last-Event-ID", async () => {
  await page.goto("/agents");
  await expect(page.getByRole("row").filter({ hasText: "demo-service" })).toBeVisible();
  const requests: Promise<string>[] = [];
  page.on("request", (r) => {
    if (r.url().includes("/api/admin/events/stream")) {
      requests.push(
        r.allHeaders().then((h) => h["last-event-id"] ?? new URL(r.url()).searchParams.get("lastEventId") ?? ""),
      );
    }
  });
  await stop(server);
  await expect(page.getByTestId("stream-banner")).toBeVisible({ timeout: 30_000 });
  await shot("stream-down");
  server = await startServer();
  await expect(page.getByTestId("stream-banner")).toBeHidden({ timeout: 30_000 });
  const resumes = await Promise.all(requests);
  const sent = resumes.filter(Boolean);
  expect(sent.length, JSON.stringify(resumes)).toBeGreaterThan(0);
  expect(Number(sent.at(-1))).toBeGreaterThan(0);
  // What happened while the page was away still reaches it: the agent re-reports on its own.
  await expect(page.getByRole("row").filter({ hasText: "demo-service" }).locator('[data-status="ONLINE"]')).toBeVisible({
    timeout: 30_000,
  });
});

test("a viewer sees no mutation buttons", async ({ browser }) => {
  await openMenu("Users");
  await page.getByRole("button", { name: "New user" }).click();
  const form = page.getByRole("dialog");
  await form.getByLabel("Username").fill("watcher");
  await form.getByLabel("Password").fill("viewer-password-1");
  await form.getByRole("button", { name: "Create" }).click();
  await expect(page.getByRole("row").filter({ hasText: "watcher" })).toBeVisible();

  const viewer = await browser.newPage();
  try {
    await viewer.goto("/");
    await viewer.getByLabel("Username").fill("watcher");
    await viewer.getByLabel("Password").fill("viewer-password-1");
    await viewer.getByRole("button", { name: "Sign in" }).click();
    await expect(viewer.getByTestId("whoami")).toContainText("(viewer)");
    await viewer.goto("/registration-tokens");
    await expect(viewer.getByRole("heading", { name: "Registration Tokens" })).toBeVisible();
    await expect(viewer.getByRole("button", { name: "New token" })).toHaveCount(0);
    await viewer.goto("/agents");
    await expect(viewer.getByRole("row").filter({ hasText: "demo-service" })).toBeVisible();
    await expect(viewer.getByRole("button", { name: "Disable" })).toHaveCount(0);
    await viewer.goto("/services");
    await viewer.getByRole("link", { name: "demo-service" }).click();
    await viewer.getByRole("tab", { name: "Actions" }).click();
    await expect(viewer.getByText("rotateSecret", { exact: true })).toBeVisible();
    await expect(viewer.locator("button[data-action]")).toHaveCount(0);
    await viewer.goto("/audit-events");
    await expect(viewer.getByTestId("export-csv")).toHaveCount(0);
    await viewer.goto("/topics?topic=shop.default.orders");
    await expect(viewer.getByRole("row").filter({ hasText: "shop.default.orders-dlq" })).toBeVisible();
    await expect(viewer.getByRole("button", { name: "New topic" })).toHaveCount(0);
    await expect(viewer.getByRole("button", { name: "Delete" })).toHaveCount(0);
    await viewer.locator(".ant-drawer-open").getByRole("tab", { name: "Subscriptions" }).click();
    await expect(viewer.getByTestId("subscriptions").getByRole("row").filter({ hasText: "billing" })).toBeVisible();
    await expect(viewer.getByRole("button", { name: "New subscription" })).toHaveCount(0);
  } finally {
    await viewer.close();
  }
});

test("中文: the language switch is remembered", async () => {
  await page.goto("/");
  await page.locator('.ant-select[aria-label="Language"]').click();
  await page.locator(".ant-select-item-option").filter({ hasText: "中文" }).click();
  await expect(page.getByRole("navigation", { name: "Main" }).getByText("代理")).toBeVisible();
  await page.reload();
  await expect(page.getByRole("navigation", { name: "Main" }).getByText("胶囊服务")).toBeVisible();
  await shot("dashboard-zh");
  await page.evaluate(() => localStorage.setItem("opstage.lang", "en"));
});
