// The walk-through, in one browser session: sign in, create a registration token,
// watch the demo agent appear live, run actions (the confirmation-gated one included), read
// the results, export the audit CSV, route a bus event to a command — and a screenshot of
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
