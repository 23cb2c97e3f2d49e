// The C ABI's error codes by name (SOTTO_ERROR_NAME = value), read from the
// committed header: the single source of the codes.
import { readFileSync } from "node:fs";

export function headerCodes(path) {
  const codes = {};
  for (const m of readFileSync(path, "utf8").matchAll(/SOTTO_ERROR_([A-Z_]+) = (\d+)/g)) {
    codes[m[1]] = Number(m[2]);
  }
  return codes;
}
