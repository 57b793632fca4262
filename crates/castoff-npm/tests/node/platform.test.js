// Unit tests of the launcher's platform logic (src/launcher/lib/platform.js), run with Node's
// own test runner by the Rust test `launcher_logic_under_node_test` (tests/node.rs), which
// writes the launcher configs castoff generates for every supported target into the file named
// by CASTOFF_NPM_TEST_CONFIGS: { all: <config of every target>, muslOnly: <config with only
// musl builds on Linux> }.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const fs = require("node:fs");

const platform = require("../../src/launcher/lib/platform.js");

const configsFile = process.env.CASTOFF_NPM_TEST_CONFIGS;
if (!configsFile) throw new Error("CASTOFF_NPM_TEST_CONFIGS is not set: run these tests through `cargo test -p castoff-npm --test node`");
const configs = JSON.parse(fs.readFileSync(configsFile, "utf8"));

/** Effects of a machine where exactly `installed` platform packages are in node_modules. */
function fakeEffects({ host, installed = [], env = {}, files = [], directories = [] }) {
  const root = "/project/node_modules";
  const fileSet = new Set(files);
  for (const name of installed) {
    for (const bin of ["greeter", "greeter.exe"]) fileSet.add(path.join(root, name, "bin", bin));
  }
  return {
    env,
    host,
    resolvePackageJson: (name) => {
      if (!installed.includes(name)) {
        const error = new Error(`Cannot find module '${name}/package.json'`);
        error.code = "MODULE_NOT_FOUND";
        throw error;
      }
      return path.join(root, name, "package.json");
    },
    isFile: (file) => fileSet.has(file),
    isDirectory: (file) => directories.includes(file),
  };
}

/** The libc a machine of this platform entry has: the entry's own, glibc on Linux otherwise. */
function hostOf(entry, libc) {
  return { os: entry.os, cpu: entry.cpu, libc: entry.os === "linux" ? libc : null };
}

test("every supported target selects its own platform package", () => {
  assert.ok(configs.all.platforms.length >= 12, "the config lists every target");
  for (const entry of configs.all.platforms) {
    const libc = entry.libc || (entry.os === "linux" ? "glibc" : null);
    const chosen = platform.selectPlatform(configs.all.platforms, hostOf(entry, libc));
    assert.equal(chosen && chosen.package, entry.package, `${entry.target}`);
  }
});

test("each supported target resolves the binary inside its package", () => {
  for (const entry of configs.all.platforms) {
    const libc = entry.libc || (entry.os === "linux" ? "glibc" : null);
    const resolved = platform.resolveBinary(
      configs.all,
      "greeter",
      fakeEffects({ host: hostOf(entry, libc), installed: [entry.package] }),
    );
    const exe = entry.os === "win32" ? ".exe" : "";
    assert.deepEqual(resolved, {
      path: path.join("/project/node_modules", entry.package, "bin", `greeter${exe}`),
      source: "package",
      package: entry.package,
    });
  }
});

test("glibc and musl builds of one cpu: the host's libc decides, once", () => {
  const platforms = configs.all.platforms;
  const pick = (libc) => platform.selectPlatform(platforms, { os: "linux", cpu: "x64", libc });
  assert.equal(pick("glibc").package, "@acme/greeter-linux-x64-gnu");
  assert.equal(pick("musl").package, "@acme/greeter-linux-x64-musl");
  // Unknown libc: no libc-restricted package is safe to pick (npm would not have installed one).
  assert.equal(pick(null), null);
  // A cpu with only a glibc build (muslOnly's config has none for x64 musl): a musl host has none.
  const glibcOnly = platforms.filter((entry) => entry.libc !== "musl");
  assert.equal(platform.selectPlatform(glibcOnly, { os: "linux", cpu: "x64", libc: "musl" }), null);
});

test("a musl build that is the only Linux build of its cpu serves every libc", () => {
  const platforms = configs.muslOnly.platforms;
  for (const libc of ["glibc", "musl", null]) {
    const chosen = platform.selectPlatform(platforms, { os: "linux", cpu: "arm64", libc });
    assert.equal(chosen.package, "@acme/greeter-linux-arm64-musl", `libc ${libc}`);
    assert.equal(chosen.libc, null, "its package has no libc field, so npm installs it everywhere");
  }
});

test("unsupported platforms get a message listing the supported ones", () => {
  for (const host of [
    { os: "linux", cpu: "loong64", libc: "glibc" },
    { os: "freebsd", cpu: "x64", libc: null },
    { os: "aix", cpu: "ppc64", libc: null },
  ]) {
    assert.throws(
      () => platform.resolveBinary(configs.muslOnly, "greeter", fakeEffects({ host })),
      (error) => {
        assert.ok(error instanceof platform.LauncherError);
        assert.match(error.message, new RegExp(`has no greeter binary for this platform, ${host.os} ${host.cpu}`));
        assert.match(error.message, /Supported platforms: .*linux-arm64-musl.*darwin-arm64/);
        assert.match(error.message, /\nhint: build greeter from source .* set GREETER_BINARY_PATH/);
        return true;
      },
    );
  }
});

test("a missing platform package names the platform, the package, the cause and the fix", () => {
  const host = { os: "linux", cpu: "x64", libc: "glibc" };
  assert.throws(
    () => platform.resolveBinary(configs.all, "greeter", fakeEffects({ host })),
    (error) => {
      assert.equal(error.code, "CASTOFF_BINARY_NOT_FOUND");
      assert.match(error.message, /the greeter binary for this platform is not installed/);
      assert.match(error.message, /platform: linux x64 \(glibc\)/);
      assert.match(error.message, /expected: @acme\/greeter-linux-x64-gnu@0\.3\.1 \(an optional dependency of @acme\/greeter\)/);
      assert.match(error.message, /--omit=optional/);
      assert.match(error.message, /lockfile/);
      assert.match(error.message, /\nhint: reinstall with optional dependencies/);
      return true;
    },
  );
});

test("another platform's package in node_modules is reported as such", () => {
  const host = { os: "linux", cpu: "x64", libc: "glibc" };
  const effects = fakeEffects({ host, installed: ["@acme/greeter-darwin-arm64"] });
  assert.throws(
    () => platform.resolveBinary(configs.all, "greeter", effects),
    /node_modules holds @acme\/greeter-darwin-arm64 instead: it was installed on another platform/,
  );
});

test("a platform package without the binary is reported", () => {
  const host = { os: "darwin", cpu: "arm64", libc: null };
  const effects = fakeEffects({ host, installed: ["@acme/greeter-darwin-arm64"] });
  assert.throws(
    () => platform.resolveBinary(configs.all, "other-bin", effects),
    /@acme\/greeter-darwin-arm64 is installed at .* but it has no bin\/other-bin/,
  );
});

test("the override variable wins: a file, or a directory holding the binary", () => {
  const host = { os: "linux", cpu: "loong64", libc: "glibc" };
  const file = platform.resolveBinary(
    configs.all,
    "greeter",
    fakeEffects({ host, env: { GREETER_BINARY_PATH: "/opt/greeter" }, files: ["/opt/greeter"] }),
  );
  assert.deepEqual(file, { path: "/opt/greeter", source: "env" });
  const directory = platform.resolveBinary(
    configs.all,
    "greeter",
    fakeEffects({
      host: { os: "win32", cpu: "x64", libc: null },
      env: { GREETER_BINARY_PATH: "/opt/bin" },
      directories: ["/opt/bin"],
      files: [path.join("/opt/bin", "greeter.exe")],
    }),
  );
  assert.equal(directory.path, path.join("/opt/bin", "greeter.exe"));
  assert.throws(
    () => platform.resolveBinary(configs.all, "greeter", fakeEffects({ host, env: { GREETER_BINARY_PATH: "/nope" } })),
    /GREETER_BINARY_PATH is set to "\/nope", but \/nope is not a file\.\nhint: point GREETER_BINARY_PATH at/,
  );
  // An empty variable counts as unset.
  assert.throws(
    () => platform.resolveBinary(configs.all, "greeter", fakeEffects({ host, env: { GREETER_BINARY_PATH: "" } })),
    /has no greeter binary for this platform/,
  );
});

/**
 * An ELF file as `read(offset, length)` sees it: a header of `bits` and byte order, one
 * PT_LOAD and (unless null) one PT_INTERP whose path lies at `interpreterAt` (far beyond the
 * header, as patchelf leaves it, when large). Sparse: bytes nobody wrote read as zeros.
 */
function elfFile({ bits = 64, little = true, interpreter = null, interpreterAt = 0x200 }) {
  const is64 = bits === 64;
  const header = Buffer.alloc(0x200);
  header.writeUInt32BE(0x7f454c46, 0);
  header[4] = is64 ? 2 : 1;
  header[5] = little ? 1 : 2;
  header[6] = 1;
  const w16 = (value, at) => (little ? header.writeUInt16LE(value, at) : header.writeUInt16BE(value, at));
  const w32 = (value, at) => (little ? header.writeUInt32LE(value, at) : header.writeUInt32BE(value, at));
  const word = (value, at) =>
    is64 ? (little ? header.writeBigUInt64LE(BigInt(value), at) : header.writeBigUInt64BE(BigInt(value), at)) : w32(value, at);
  const phoff = is64 ? 64 : 52;
  const entrySize = is64 ? 56 : 32;
  const headers = interpreter === null ? [1] : [1, 3];
  word(phoff, is64 ? 0x20 : 0x1c);
  w16(entrySize, is64 ? 0x36 : 0x2a);
  w16(headers.length, is64 ? 0x38 : 0x2c);
  const path = interpreter === null ? null : Buffer.from(`${interpreter}\0`, "latin1");
  headers.forEach((type, index) => {
    const at = phoff + index * entrySize;
    w32(type, at);
    if (type === 3) {
      word(interpreterAt, at + (is64 ? 8 : 4));
      word(path.length, at + (is64 ? 0x20 : 0x10));
    }
  });
  const size = Math.max(header.length, path === null ? 0 : interpreterAt + path.length);
  return (offset, length) => {
    const out = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
    for (let index = 0; index < out.length; index++) {
      const at = offset + index;
      if (path !== null && at >= interpreterAt && at < interpreterAt + path.length) out[index] = path[at - interpreterAt];
      else if (at < header.length) out[index] = header[at];
    }
    return out;
  };
}

test("the program interpreter is read from ELF headers of every kind", () => {
  for (const bits of [32, 64]) {
    for (const little of [true, false]) {
      for (const interpreterAt of [0x100, 0x7ad2058]) {
        const read = elfFile({ bits, little, interpreter: "/lib/ld-musl-x86_64.so.1", interpreterAt });
        assert.equal(platform.elfInterpreter(read), "/lib/ld-musl-x86_64.so.1", `${bits} ${little} ${interpreterAt}`);
      }
      assert.equal(platform.elfInterpreter(elfFile({ bits, little })), null, "static: no interpreter");
    }
  }
  // Not ELF, truncated, or an empty file: no answer, no exception.
  assert.equal(platform.elfInterpreter(() => Buffer.from("#!/bin/sh\necho hello\n")), null);
  assert.equal(platform.elfInterpreter((offset, length) => elfFile({ interpreter: "/lib64/ld-linux-x86-64.so.2" })(offset, Math.min(length, 40))), null);
  assert.equal(platform.elfInterpreter(() => Buffer.alloc(0)), null);
});

test("libc detection: the diagnostic report, the executable's loader, the loaders on disk, never ldd", () => {
  const detect = (report, listing = {}, executable = null) =>
    platform.detectLibc({
      platform: "linux",
      getReport: () => {
        if (report instanceof Error) throw report;
        return report;
      },
      readExecutable:
        executable === null
          ? () => {
              throw Object.assign(new Error("ENOENT"), { code: "ENOENT" });
            }
          : executable,
      listDirectory: (directory) => {
        if (!(directory in listing)) throw Object.assign(new Error("ENOENT"), { code: "ENOENT" });
        return listing[directory];
      },
    });
  const glibcAndMuslLoaders = { "/lib": ["ld-musl-x86_64.so.1"], "/lib64": ["ld-linux-x86-64.so.2"] };
  // 1. The report: node links the glibc it names, or has musl's loader among its shared objects.
  assert.equal(detect({ header: { glibcVersionRuntime: "2.36" }, sharedObjects: [] }, glibcAndMuslLoaders), "glibc");
  assert.equal(detect({ header: {}, sharedObjects: ["/lib/ld-musl-x86_64.so.1"] }), "musl");
  assert.equal(detect({ header: {}, sharedObjects: ["/usr/lib/libc.musl-aarch64.so.1"] }), "musl");
  // 2. A report that says neither (Bun's on musl), or none: the running executable's loader,
  // which settles a machine with both loaders on disk (Debian with the musl package, Alpine
  // with gcompat).
  const executable = (interpreter) => elfFile({ interpreter, interpreterAt: 0x5000 });
  assert.equal(detect({ header: {}, sharedObjects: [] }, glibcAndMuslLoaders, executable("/lib64/ld-linux-x86-64.so.2")), "glibc");
  assert.equal(detect(null, glibcAndMuslLoaders, executable("/lib/ld-musl-x86_64.so.1")), "musl");
  for (const loader of ["/lib/ld-linux.so.2", "/lib/ld-linux-armhf.so.3", "/lib64/ld64.so.2", "/lib/ld64.so.1", "/lib/ld-linux-riscv64-lp64d.so.1", "/lib/ld-linux-aarch64.so.1"]) {
    assert.equal(detect(null, {}, executable(loader)), "glibc", loader);
  }
  // 3. A static executable (no loader) or an unreadable one: the loaders on disk.
  assert.equal(detect(new Error("report unavailable"), { "/lib": ["ld-musl-aarch64.so.1", "libz.so"] }, elfFile({})), "musl");
  assert.equal(detect(null, { "/lib": [], "/lib64": ["ld-linux-x86-64.so.2"] }), "glibc");
  assert.equal(detect({ header: {} }, { "/lib": ["ld-linux-aarch64.so.1"] }), "glibc");
  assert.equal(detect(null, { "/lib64": ["ld64.so.2"] }), "glibc", "ppc64le's loader");
  assert.equal(detect(null, { "/lib": ["ld64.so.1"] }), "glibc", "s390x's loader");
  assert.equal(detect(null, { "/lib": ["ld-linux-not-a-loader.txt", "ld64.so.2.bak"] }), null);
  // An unknown loader in the executable is no answer either.
  assert.equal(detect(null, {}, executable("/system/bin/linker64")), null);
  assert.equal(detect(null, {}), null);
  assert.equal(
    platform.detectLibc({ platform: "darwin", getReport: () => assert.fail("not on darwin"), listDirectory: () => [] }),
    null,
  );
});

test("the running machine is detected once, consistently", () => {
  const first = platform.currentHost();
  assert.equal(platform.currentHost(), first);
  assert.equal(first.os, process.platform);
  assert.equal(first.cpu, process.arch);
  if (process.platform === "linux") assert.ok(["glibc", "musl"].includes(first.libc), `libc ${first.libc}`);
});

test("platforms are described as npm names them", () => {
  assert.equal(platform.describeHost({ os: "linux", cpu: "arm64", libc: "musl" }), "linux arm64 (musl)");
  assert.equal(platform.describeHost({ os: "linux", cpu: "x64", libc: null }), "linux x64 (unknown libc)");
  assert.equal(platform.describeHost({ os: "win32", cpu: "x64", libc: null }), "win32 x64");
  assert.equal(platform.binarySubpath({ os: "win32" }, "tool"), "bin/tool.exe");
  assert.equal(platform.binarySubpath({ os: "linux" }, "tool"), "bin/tool");
});
