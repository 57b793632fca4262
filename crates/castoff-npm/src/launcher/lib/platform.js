// castoff launcher: which platform this is, which platform package serves it, and where its
// binary is. Pure functions over injected effects (environment, file system, module resolution)
// so `node --test` can drive every os/cpu/libc combination from one machine.
// Node >= 18, CommonJS, no dependencies.
"use strict";

const fs = require("fs");
const path = require("path");

/** Thrown when no binary can be found; `message` is meant for the user, `hint` says what to do. */
class LauncherError extends Error {
  constructor(message, hint) {
    super(`${message}\nhint: ${hint}`);
    this.name = "LauncherError";
    this.code = "CASTOFF_BINARY_NOT_FOUND";
    this.hint = hint;
  }
}

/**
 * The C library of the running Linux system: "glibc", "musl", or null when unknown (or not
 * Linux). `ldd` is never run (its output goes to stdout on glibc and stderr on musl, and Alpine
 * and distroless images may not have it). In order, the first answer wins:
 *
 * 1. Node's diagnostic report: `header.glibcVersionRuntime` names the glibc Node runs against;
 *    a `libc.musl-`/`ld-musl-` file among `sharedObjects` is musl's loader, loaded.
 * 2. The program interpreter in the ELF header of the running executable (`process.execPath`):
 *    the loader it was linked for, so the libc it runs on, even where both loaders are on disk
 *    (a glibc distribution with the `musl` package, Alpine with gcompat). For runtimes whose
 *    report names neither (Bun's lists no shared objects, so on musl it names neither).
 * 3. The loaders on disk: musl's `/lib/ld-musl-*`, else glibc's `ld-linux*` or `ld64.so*`
 *    (ppc64le, s390x) in `/lib` or `/lib64`. For a statically linked runtime.
 */
function detectLibc(effects) {
  const { platform, getReport, listDirectory } = effects;
  if (platform !== "linux") return null;
  let report = null;
  try {
    report = getReport();
  } catch {
    report = null;
  }
  if (report && typeof report === "object") {
    if (report.header && report.header.glibcVersionRuntime) return "glibc";
    const sharedObjects = Array.isArray(report.sharedObjects) ? report.sharedObjects : [];
    if (sharedObjects.some((file) => MUSL_FILE.test(String(file)))) return "musl";
  }
  let interpreter = null;
  try {
    interpreter = elfInterpreter(effects.readExecutable);
  } catch {
    interpreter = null;
  }
  const fromLoader = interpreter === null ? null : libcOfLoader(path.posix.basename(interpreter));
  if (fromLoader !== null) return fromLoader;
  const entries = (directory) => {
    try {
      return listDirectory(directory);
    } catch {
      return [];
    }
  };
  if (entries("/lib").some((name) => libcOfLoader(name) === "musl")) return "musl";
  const glibcLoader = (name) => libcOfLoader(name) === "glibc";
  if (entries("/lib").some(glibcLoader) || entries("/lib64").some(glibcLoader)) return "glibc";
  return null;
}

const MUSL_FILE = /(?:libc\.musl-|ld-musl-)/;

/** The libc whose dynamic loader has the file name `name`, or null for any other file. */
function libcOfLoader(name) {
  if (name.startsWith("ld-musl-")) return "musl";
  // ld-linux-x86-64.so.2, ld-linux-aarch64.so.1, ld-linux-armhf.so.3, ld-linux.so.2 (i386),
  // ld-linux-riscv64-lp64d.so.1, ld64.so.2 (ppc64le), ld64.so.1 (s390x).
  if (/^ld-linux[^/]*\.so\.\d+$/.test(name) || /^ld64\.so\.\d+$/.test(name)) return "glibc";
  return null;
}

/** How much of the executable is read for its program headers (they follow the ELF header). */
const ELF_HEADER_BYTES = 4096;
/** The longest program interpreter path read (PATH_MAX). */
const ELF_INTERPRETER_BYTES = 4096;

/**
 * The program interpreter (PT_INTERP) of an ELF file, or null: a statically linked file has
 * none; anything but ELF, or headers beyond the first ELF_HEADER_BYTES, give null.
 * `read(offset, length)` returns that part of the file (shorter at its end): the header is
 * read first, then the path where the header says it is (patchelf, which auditwheel runs,
 * moves it to the end of a large file).
 */
function elfInterpreter(read) {
  const bytes = read(0, ELF_HEADER_BYTES);
  if (!Buffer.isBuffer(bytes) || bytes.length < 52) return null;
  if (bytes.readUInt32BE(0) !== 0x7f454c46) return null;
  const is64 = bytes[4] === 2;
  const little = bytes[5] === 1;
  if ((bytes[4] !== 1 && !is64) || (bytes[5] !== 1 && bytes[5] !== 2)) return null;
  if (is64 && bytes.length < 64) return null;
  const u16 = (at) => (little ? bytes.readUInt16LE(at) : bytes.readUInt16BE(at));
  const u32 = (at) => (little ? bytes.readUInt32LE(at) : bytes.readUInt32BE(at));
  const word = (at) => {
    if (!is64) return u32(at);
    const value = little ? bytes.readBigUInt64LE(at) : bytes.readBigUInt64BE(at);
    return value > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(value);
  };
  const programHeaders = word(is64 ? 0x20 : 0x1c);
  const entrySize = u16(is64 ? 0x36 : 0x2a);
  const count = u16(is64 ? 0x38 : 0x2c);
  if (entrySize < (is64 ? 56 : 32)) return null;
  const PT_INTERP = 3;
  for (let index = 0; index < count; index++) {
    const at = programHeaders + index * entrySize;
    if (!(at + entrySize <= bytes.length)) return null;
    if (u32(at) !== PT_INTERP) continue;
    const offset = word(at + (is64 ? 8 : 4));
    const size = word(at + (is64 ? 0x20 : 0x10));
    if (!(size >= 2 && size <= ELF_INTERPRETER_BYTES && Number.isSafeInteger(offset))) return null;
    const text = read(offset, size);
    if (!Buffer.isBuffer(text) || text.length !== size) return null;
    const name = text.toString("latin1").replace(/\0+$/, "");
    return name.startsWith("/") && !name.includes("\0") ? name : null;
  }
  return null;
}

/** `length` bytes of the running executable from `offset` (fewer at its end). */
function readExecutable(offset, length) {
  const file = fs.openSync(process.execPath, "r");
  try {
    const buffer = Buffer.alloc(length);
    const read = fs.readSync(file, buffer, 0, length, offset);
    return buffer.subarray(0, read);
  } finally {
    fs.closeSync(file);
  }
}

/** The diagnostic report without the slow parts (network interfaces, on Node versions that know how). */
function nodeReport() {
  if (!process.report || typeof process.report.getReport !== "function") return null;
  if ("excludeNetwork" in process.report) process.report.excludeNetwork = true;
  return process.report.getReport();
}

let cachedHost = null;

/** The running platform as npm names it: { os, cpu, libc }. libc is detected once per process. */
function currentHost() {
  if (cachedHost === null) {
    cachedHost = {
      os: process.platform,
      cpu: process.arch,
      libc: detectLibc({
        platform: process.platform,
        getReport: nodeReport,
        readExecutable,
        listDirectory: (directory) => fs.readdirSync(directory),
      }),
    };
  }
  return cachedHost;
}

/** "linux x64 (glibc)", "darwin arm64": how messages name a platform. */
function describeHost(host) {
  const libc = host.os === "linux" ? ` (${host.libc || "unknown libc"})` : "";
  return `${host.os} ${host.cpu}${libc}`;
}

/**
 * The platform package npm installs on `host`, or null. Mirrors npm's own choice, so the package
 * chosen here is the one npm put into node_modules: os and cpu must match; a package with a
 * `libc` field needs the same libc; a package without one (a static musl build that is the only
 * Linux build for its cpu) serves every libc. One answer per host, never "try musl, then glibc".
 */
function selectPlatform(platforms, host) {
  const candidates = platforms.filter((p) => p.os === host.os && p.cpu === host.cpu);
  if (host.os !== "linux") return candidates[0] || null;
  return (
    candidates.find((p) => p.libc !== null && p.libc === host.libc) ||
    candidates.find((p) => p.libc === null) ||
    null
  );
}

/** Path of a binary inside its platform package: `bin/<name>` (`bin/<name>.exe` on Windows). */
function binarySubpath(platform, bin) {
  return `bin/${bin}${platform.os === "win32" ? ".exe" : ""}`;
}

/**
 * Where the binary `bin` is: { path, source: "env" | "package", package? }.
 * `effects`: { env, host, resolvePackageJson(name) -> path (throws when missing), isFile(path),
 * isDirectory(path) }.
 */
function resolveBinary(config, bin, effects) {
  const { env, host } = effects;
  const override = env[config.binaryPathEnv];
  if (override) {
    const candidate = effects.isDirectory(override)
      ? path.join(override, `${bin}${host.os === "win32" ? ".exe" : ""}`)
      : override;
    if (!effects.isFile(candidate)) {
      throw new LauncherError(
        `${config.binaryPathEnv} is set to ${JSON.stringify(override)}, but ${candidate} is not a file.`,
        `point ${config.binaryPathEnv} at the ${bin} binary (or a directory holding it), or unset it to use the binary from ${config.package}'s platform package.`,
      );
    }
    return { path: candidate, source: "env" };
  }

  const platform = selectPlatform(config.platforms, host);
  if (platform === null) {
    const supported = config.platforms.map((p) => `${p.package.slice(config.package.length + 1)}`);
    throw new LauncherError(
      `${config.package}@${config.version} has no ${bin} binary for this platform, ${describeHost(host)}.\n` +
        `Supported platforms: ${supported.join(", ")}.`,
      `build ${bin} from source for this platform and set ${config.binaryPathEnv} to its path` +
        (host.os === "linux" && host.libc === null
          ? ` (the C library of this system could not be detected; a musl or glibc build may work)`
          : "") +
        ".",
    );
  }

  let packageJson;
  try {
    packageJson = effects.resolvePackageJson(platform.package);
  } catch {
    throw missingPackageError(config, bin, platform, effects);
  }
  const binary = path.join(path.dirname(packageJson), binarySubpath(platform, bin));
  if (!effects.isFile(binary)) {
    throw new LauncherError(
      `${platform.package} is installed at ${path.dirname(packageJson)}, but it has no ${binarySubpath(platform, bin)}.`,
      `reinstall ${config.package} (the installed ${platform.package} is incomplete or of another version), or set ${config.binaryPathEnv} to a ${bin} binary.`,
    );
  }
  return { path: binary, source: "package", package: platform.package };
}

/** The message when the platform package is not installed: what, why (most likely first), fix. */
function missingPackageError(config, bin, platform, effects) {
  const others = config.platforms.filter((p) => {
    if (p.package === platform.package) return false;
    try {
      effects.resolvePackageJson(p.package);
      return true;
    } catch {
      return false;
    }
  });
  const expected = `${platform.package}@${config.version}`;
  const causes = [];
  if (others.length > 0) {
    causes.push(
      `node_modules holds ${others.map((p) => p.package).join(", ")} instead: it was installed on another ` +
        `platform (copied from another machine or into a container), or from a lockfile made on one (npm/cli#4828).`,
    );
  } else {
    causes.push(
      `optional dependencies were not installed (\`--omit=optional\`, \`--no-optional\`, \`omit=optional\` in .npmrc), ` +
        `or the lockfile was made on another platform and lacks ${platform.package} (npm/cli#4828).`,
    );
  }
  return new LauncherError(
    `the ${bin} binary for this platform is not installed.\n` +
      `  platform: ${describeHost(effects.host)}\n` +
      `  expected: ${expected} (an optional dependency of ${config.package})\n` +
      `  likely cause: ${causes.join(" ")}`,
    `reinstall with optional dependencies on this machine: \`npm install --include=optional\` ` +
      `(if the lockfile came from another platform: \`rm -rf node_modules package-lock.json && npm install\`; ` +
      `with another package manager, make sure optional dependencies are enabled). ` +
      `Or set ${config.binaryPathEnv} to a ${bin} binary.`,
  );
}

/** The effects of the real process, for `resolveBinary`. */
function processEffects() {
  return {
    env: process.env,
    host: currentHost(),
    resolvePackageJson: (name) => require.resolve(`${name}/package.json`),
    isFile: (file) => {
      try {
        return fs.statSync(file).isFile();
      } catch {
        return false;
      }
    },
    isDirectory: (file) => {
      try {
        return fs.statSync(file).isDirectory();
      } catch {
        return false;
      }
    },
  };
}

module.exports = {
  LauncherError,
  binarySubpath,
  currentHost,
  describeHost,
  detectLibc,
  elfInterpreter,
  processEffects,
  resolveBinary,
  selectPlatform,
};
