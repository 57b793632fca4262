// castoff launcher API: find the platform binary and run it from JavaScript. See index.d.ts for
// the documented signatures. Node >= 18, CommonJS, no dependencies.
"use strict";

const childProcess = require("child_process");
const config = require("./lib/config.json");
const { processEffects, resolveBinary } = require("./lib/platform.js");

/** The binary named `name` (default: the package's first binary), checked against the list. */
function binaryName(name) {
  if (name === undefined) return config.bins[0];
  if (!config.bins.includes(name)) {
    throw new TypeError(
      `${config.package} has no binary named ${JSON.stringify(name)}; it has: ${config.bins.join(", ")}`,
    );
  }
  return name;
}

/** Absolute path of the binary for this platform; throws a LauncherError explaining a missing one. */
function binaryPath(name) {
  return resolveBinary(config, binaryName(name), processEffects()).path;
}

/** Node's `child_process.spawn` of the binary, plus `exited`: a promise of { code, signal }. */
function spawn(args = [], options = {}) {
  const { name, ...spawnOptions } = options;
  const child = childProcess.spawn(binaryPath(name), Array.from(args), {
    ...spawnOptions,
    shell: false,
  });
  child.exited = new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code, signal }));
  });
  // Callers that listen for "error" themselves need not also await `exited`.
  child.exited.catch(() => {});
  return child;
}

/**
 * Runs the binary to completion. Resolves with { code, signal } (plus stdout and stderr when
 * captured, the default); a non-zero exit is a result, not an error. Rejects when the binary
 * cannot be found or started.
 */
function run(args = [], options = {}) {
  const { name, input, stdio = "pipe", encoding = "utf8", ...spawnOptions } = options;
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = childProcess.spawn(binaryPath(name), Array.from(args), {
        ...spawnOptions,
        stdio: stdio === "inherit" ? "inherit" : "pipe",
        shell: false,
      });
    } catch (error) {
      reject(error);
      return;
    }
    const captured = stdio !== "inherit";
    const stdout = [];
    const stderr = [];
    if (captured) {
      child.stdout.on("data", (chunk) => stdout.push(chunk));
      child.stderr.on("data", (chunk) => stderr.push(chunk));
      // A binary that exits without reading its input must not fail the run with EPIPE.
      child.stdin.on("error", () => {});
      child.stdin.end(input === undefined ? undefined : input);
    }
    child.once("error", reject);
    child.once("close", (code, signal) => {
      const result = { code, signal };
      if (captured) {
        const decode = (chunks) =>
          encoding === "buffer" ? Buffer.concat(chunks) : Buffer.concat(chunks).toString(encoding);
        result.stdout = decode(stdout);
        result.stderr = decode(stderr);
      }
      resolve(result);
    });
  });
}

// Assignments to `exports.<name>` (not one object literal) so Node's ESM loader detects every
// named export: `import { run } from "<package>"` works from ES modules too.
exports.binaryPath = binaryPath;
exports.run = run;
exports.spawn = spawn;
exports.packageName = config.package;
exports.version = config.version;
exports.bins = Object.freeze([...config.bins]);
