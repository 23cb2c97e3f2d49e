// Runs the scenario in headless Chromium (Debian's, driven by
// playwright-core): node browser.mjs <pkg dir> <sotto.h>. Serves the
// package and the scenario from 127.0.0.1 on a free port, loads a page that
// imports them, and reports what the page logs. Playwright gives the
// browser a fresh temporary profile of its own (it refuses --user-data-dir).
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { extname, join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { headerCodes } from "./codes.mjs";

const [pkg, header] = process.argv.slice(2).map((p) => resolve(p));
const here = new URL(".", import.meta.url).pathname;
const codes = headerCodes(header);
const types = { ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
  ".html": "text/html" };
const page = `<!doctype html><link rel="icon" href="data:,"><script type="module">
import init, * as sotto from "/pkg/sotto_wasm.js";
import { run } from "/tests/scenario.mjs";
try {
  await init({ module_or_path: "/pkg/sotto_wasm_bg.wasm" });
  const steps = await run(sotto, ${JSON.stringify(codes)}, (l) => console.log(l));
  console.log("DONE " + steps);
} catch (e) {
  console.log("FAILED " + (e && e.stack || e));
}
</script>`;
const server = createServer((req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  let file;
  if (url.pathname === "/") {
    res.writeHead(200, { "content-type": "text/html" });
    return res.end(page);
  } else if (url.pathname.startsWith("/pkg/")) {
    file = join(pkg, url.pathname.slice(5));
  } else if (url.pathname.startsWith("/tests/")) {
    file = join(here, url.pathname.slice(7));
  }
  try {
    const body = readFileSync(file);
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
    res.end(body);
  } catch {
    res.writeHead(404);
    res.end();
  }
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let code = 1;
try {
  const tab = await browser.newPage();
  const done = new Promise((ok) => {
    tab.on("console", (message) => {
      const text = message.text();
      if (text.startsWith("DONE ")) ok(Number(text.slice(5)));
      else if (text.startsWith("FAILED ")) ok(text);
      else console.log(`chromium: ${text}`);
    });
    tab.on("pageerror", (error) => ok(`FAILED ${error}`));
  });
  await tab.goto(`http://127.0.0.1:${server.address().port}/`);
  const result = await Promise.race([done,
    new Promise((ok) => setTimeout(() => ok("FAILED timeout after 300 s"), 300_000))]);
  if (typeof result === "number") {
    console.log(`chromium: ${result} passed, 0 failed`);
    code = 0;
  } else {
    console.error(`chromium: ${result}`);
  }
} finally {
  await browser.close();
  server.close();
}
process.exit(code);
