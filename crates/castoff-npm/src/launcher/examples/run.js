// Example: run {{BIN}} from JavaScript with {{PACKAGE}}'s API (CommonJS, Node >= 18).
//   node examples/run.js
"use strict";

const { binaryPath, run, spawn } = require("{{PACKAGE}}");

async function main() {
  // Where the binary for this platform is installed.
  console.log(`binary: ${binaryPath()}`);

  // Run to completion and capture the output; a non-zero exit is a result, not an exception.
  const { code, stdout, stderr } = await run(["--version"]);
  console.log(`exit code ${code}: ${stdout.trim()}${stderr ? ` (stderr: ${stderr.trim()})` : ""}`);

  // Share this terminal instead of capturing.
  await run(["--version"], { stdio: "inherit" });

  // Start it, keep a handle, stop it later.
  const child = spawn(["--version"], { stdio: "inherit" });
  const { code: spawnedCode, signal } = await child.exited;
  console.log(`spawned process ended: code=${spawnedCode} signal=${signal}`);
}

main().catch((error) => {
  console.error(error.message);
  process.exitCode = 1;
});
