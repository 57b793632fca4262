// castoff launcher: runs the platform binary as if it had been started directly. stdio is
// inherited, arguments are passed verbatim (no shell), the exit code is passed through, and a
// child killed by a signal makes the launcher die of the same signal, so shells, CI runners and
// process supervisors see what really happened (launchers that exit 0 or 1 here hide crashes).
// Node >= 18, CommonJS, no dependencies.
"use strict";

const childProcess = require("child_process");
const os = require("os");
const config = require("./config.json");
const { LauncherError, processEffects, resolveBinary } = require("./platform.js");

// Signals a supervisor or terminal sends to stop the launcher: passed on to the child, which
// decides how to stop. (A Ctrl-C in a terminal reaches both processes; the child then sees
// SIGINT twice, which programs treat like one Ctrl-C.)
const FORWARDED_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"];

/** Runs binary `bin` with `args`; never returns (the process exits when the child does). */
function main(bin, args) {
  let binary;
  try {
    binary = resolveBinary(config, bin, processEffects()).path;
  } catch (error) {
    if (!(error instanceof LauncherError)) throw error;
    process.stderr.write(`${bin}: ${error.message}\n`);
    process.exit(1);
  }

  // Handlers first: a signal that arrives while the child is being started must not kill the
  // launcher by default action and orphan the child. (Node runs signal handlers from the event
  // loop, so `child` is set by the time one runs.)
  let child = null;
  const forward = (signal) => {
    if (child !== null && child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
  child = childProcess.spawn(binary, args, { stdio: "inherit", windowsHide: false });

  child.on("error", (error) => {
    process.stderr.write(
      `${bin}: cannot run ${binary}: ${error.message}\n` +
        `hint: ${hintFor(error, config)}\n`,
    );
    process.exit(1);
  });
  child.on("exit", (code, signal) => {
    for (const forwarded of FORWARDED_SIGNALS) process.removeListener(forwarded, forward);
    if (signal) dieOfSignal(signal);
    else process.exit(code === null ? 1 : code);
  });
}

/**
 * Ends this process with `signal`, as the child ended. With no listener left, the signal's
 * default action runs (kill(2) to oneself delivers before it returns). A signal Node ignores
 * (SIGPIPE) or that Windows lacks leaves us running: exit with 128 + its number, as shells report it.
 */
function dieOfSignal(signal) {
  if (process.platform !== "win32") {
    try {
      process.kill(process.pid, signal);
    } catch {
      // Unknown to this platform: fall through to the exit code.
    }
  }
  const number = os.constants.signals[signal] || 0;
  process.exit(128 + number);
}

function hintFor(error, config) {
  switch (error.code) {
    case "EACCES":
      return "the binary is not executable: reinstall the package (the file must keep mode 0755), or check that the file system is not mounted noexec.";
    case "ENOENT":
      return `the file or its loader is missing: reinstall the package, or set ${config.binaryPathEnv} to a working binary.`;
    case "ENOEXEC":
      return "the binary is for another platform: reinstall the package on this machine.";
    default:
      return `reinstall the package, or set ${config.binaryPathEnv} to a working binary.`;
  }
}

module.exports = { main };
