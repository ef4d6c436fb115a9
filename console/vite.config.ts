import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";
import { copySwaggerUi } from "./scripts/copy-swagger.mjs";

// The build goes into the server package, which serves it at / (opstage/api/console.py).
export default defineConfig({
  plugins: [react(), copySwaggerUi()],
  build: {
    outDir: "../packages/opstage/src/opstage/console/dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8080" },
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test-setup.ts"],
    // Ant Design renders slowly in jsdom on a shared two-core machine.
    testTimeout: 30_000,
  },
});
