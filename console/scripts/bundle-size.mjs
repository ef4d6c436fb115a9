// First-load size of the built console, gzip: index.html plus the scripts, styles and
// modulepreloads it names (pages are lazy chunks and load later). Usage: npm run size
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../packages/opstage/src/opstage/console/dist");
const html = readFileSync(path.join(dist, "index.html"));
const assets = [...html.toString().matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
let total = gzipSync(html).length;
for (const asset of assets) {
  const size = gzipSync(readFileSync(path.join(dist, asset))).length;
  total += size;
  console.log(`${(size / 1024).toFixed(1).padStart(8)} KB  ${asset}`);
}
console.log(`${(total / 1024).toFixed(1).padStart(8)} KB  first load, gzip (index.html + ${assets.length} assets)`);
const LIMIT_KB = 500;
if (total / 1024 > LIMIT_KB) {
  console.error(`over the ${LIMIT_KB} KB first-load budget`);
  process.exit(1);
}
