// The real server for the e2e run: `opstage serve` from the repo's venv on E2E_PORT, its data in
// E2E_DATA_DIR (both set by playwright.config.ts), log in <data dir>/server.log.
import { spawn, type ChildProcess } from "node:child_process";
import { openSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ADMIN } from "../playwright.config";

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const port = Number(process.env.E2E_PORT);
export const dataDir = process.env.E2E_DATA_DIR ?? "";
export const baseUrl = `http://127.0.0.1:${port}`;

export async function startServer(): Promise<ChildProcess> {
  const log = openSync(path.join(dataDir, "server.log"), "a");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OPSTAGE_DATA_DIR: dataDir,
    OPSTAGE_DEV_MODE: "true",
    OPSTAGE_ADMIN_USERNAME: ADMIN.username,
    OPSTAGE_ADMIN_PASSWORD: ADMIN.password,
    OPSTAGE_CAPSULE_BUS_ENABLED: "true",
    OPSTAGE_LOG_FORMAT: "text",
  };
  delete env.DATABASE_URL;
  const server = spawn(path.join(repo, ".venv/bin/opstage"), ["serve", "--host", "127.0.0.1", "--port", String(port)], {
    env,
    stdio: ["ignore", log, log],
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`opstage exited with ${server.exitCode}; see ${dataDir}/server.log`);
    try {
      if ((await fetch(`${baseUrl}/api/system/health`)).ok) return server;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`opstage did not answer; see ${dataDir}/server.log`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function stop(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}
