// End-to-end: Debian's Chromium (never a downloaded browser) against a real `opstage serve`
// (fresh SQLite data dir, the Capsule Bus on) serving the built console, and the real Python
// demo agent, which the test starts with a token it creates in the UI. The spec starts the
// server itself (e2e/stack.ts) because one test restarts it.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { defineConfig } from "@playwright/test";

const port = Number(process.env.E2E_PORT ?? 18930 + Math.floor(Math.random() * 60));
const dataDir = process.env.E2E_DATA_DIR ?? mkdtempSync(path.join(tmpdir(), "opstage-e2e-"));
export const ADMIN = { username: "admin", password: "e2e-owner-password-1" };
process.env.E2E_DATA_DIR = dataDir;
process.env.E2E_PORT = String(port);

export default defineConfig({
  testDir: "e2e",
  timeout: 90_000,
  expect: { timeout: 20_000 },
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  outputDir: path.join(dataDir, "test-results"),
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    viewport: { width: 1440, height: 900 },
    acceptDownloads: true,
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
});
