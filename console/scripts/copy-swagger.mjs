// Swagger UI's assets, copied from the swagger-ui-dist package into the build's swagger-ui/:
// the server's /docs page loads them from there, so the docs work offline (no CDN).
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const FILES = ["swagger-ui-bundle.js", "swagger-ui.css"];

export function copySwaggerUi() {
  let outDir = "";
  return {
    name: "opstage-copy-swagger-ui",
    apply: "build",
    configResolved(config) {
      outDir = path.resolve(config.root, config.build.outDir);
    },
    closeBundle() {
      const require = createRequire(import.meta.url);
      const source = path.dirname(require.resolve("swagger-ui-dist/package.json"));
      const target = path.join(outDir, "swagger-ui");
      mkdirSync(target, { recursive: true });
      for (const file of FILES) copyFileSync(path.join(source, file), path.join(target, file));
    },
  };
}
