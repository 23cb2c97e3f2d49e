// Runs the scenario under Node.js: node node.mjs <pkg dir> <sotto.h>.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { headerCodes } from "./codes.mjs";
import { run } from "./scenario.mjs";

const [pkg, header] = process.argv.slice(2).map((p) => resolve(p));
const sotto = await import(pathToFileURL(join(pkg, "sotto_wasm.js")).href);
sotto.initSync({ module: readFileSync(join(pkg, "sotto_wasm_bg.wasm")) });
const steps = await run(sotto, headerCodes(header), (line) => console.log(`node: ${line}`));
console.log(`node: ${steps} passed, 0 failed`);
