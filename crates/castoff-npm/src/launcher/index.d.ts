// Type definitions of the launcher package castoff generates: find the platform binary and run
// it from JavaScript or TypeScript. Hand-written; self-contained (no @types/node needed).

/** How a process ended: an exit code, or the signal that killed it (the other is null). */
export interface ExitStatus {
  /** Exit code, or null when the process was killed by a signal. */
  code: number | null;
  /** Name of the signal that killed the process (`"SIGTERM"`), or null. */
  signal: string | null;
}

/** The result of {@link run} with captured output (the default). */
export interface CapturedRun<Output> extends ExitStatus {
  stdout: Output;
  stderr: Output;
}

/** Options shared by {@link run} and {@link spawn}. */
export interface CommonOptions {
  /** Which binary of the package to run; default: the first one ({@link bins}`[0]`). */
  name?: string;
  /** Working directory of the child; default: the current one. */
  cwd?: string;
  /** Environment of the child; default: `process.env`. */
  env?: Record<string, string | undefined>;
  /** Kill the child after this many milliseconds (with `killSignal`). */
  timeout?: number;
  /** Signal sent on timeout; default `"SIGTERM"`. */
  killSignal?: string | number;
  /** Hide the console window on Windows. */
  windowsHide?: boolean;
}

/** Options of {@link run}. */
export interface RunOptions extends CommonOptions {
  /**
   * `"pipe"` (default): capture stdout and stderr into the result, feed `input` to stdin.
   * `"inherit"`: share this process's stdin, stdout and stderr; the result has no output.
   */
  stdio?: "pipe" | "inherit";
  /** Written to the child's stdin, which is then closed (only with `stdio: "pipe"`). */
  input?: string | Uint8Array;
  /** `"utf8"` (default) decodes the output to strings; `"buffer"` keeps the bytes. */
  encoding?: "utf8" | "buffer";
}

/** Options of {@link spawn}: those of Node's `child_process.spawn` that make sense here. */
export interface SpawnOptions extends CommonOptions {
  /** As in `child_process.spawn`; default `"pipe"`. */
  stdio?:
    | "pipe"
    | "inherit"
    | "ignore"
    | ReadonlyArray<"pipe" | "inherit" | "ignore" | number | null | undefined>;
  /** Start the child in its own process group (Unix) / console (Windows). */
  detached?: boolean;
}

/** A readable pipe of the child (a Node `Readable`). */
export interface OutputPipe {
  on(event: "data", listener: (chunk: Uint8Array) => void): this;
  on(event: "end", listener: () => void): this;
  setEncoding(encoding: "utf8"): this;
  pipe<Destination>(destination: Destination): Destination;
}

/** The child's stdin (a Node `Writable`). */
export interface InputPipe {
  write(chunk: string | Uint8Array): boolean;
  end(chunk?: string | Uint8Array): this;
}

/**
 * A running binary. At run time this is Node's `ChildProcess` with one extra property,
 * `exited`; with `@types/node` installed you may treat it as
 * `import("node:child_process").ChildProcess`.
 */
export interface SpawnedBinary {
  readonly pid: number | undefined;
  readonly stdin: InputPipe | null;
  readonly stdout: OutputPipe | null;
  readonly stderr: OutputPipe | null;
  readonly exitCode: number | null;
  readonly signalCode: string | null;
  /** Sends a signal (default `"SIGTERM"`); false when it could not be delivered. */
  kill(signal?: string | number): boolean;
  /** Resolves when the process has ended and its pipes are closed; rejects if it could not start. */
  readonly exited: Promise<ExitStatus>;
  on(event: "exit" | "close", listener: (code: number | null, signal: string | null) => void): this;
  on(event: "error", listener: (error: Error) => void): this;
}

/**
 * Absolute path of the binary `name` (default: the first binary) for this platform: from the
 * override environment variable when set, otherwise from the installed platform package.
 * Throws an `Error` whose message names the platform, the expected package and the fix when the
 * platform package is not installed or the platform is unsupported.
 *
 * @example
 * const { binaryPath } = require("<package>");
 * console.log(binaryPath()); // …/node_modules/<package>-linux-x64-gnu/bin/<bin>
 */
export function binaryPath(name?: string): string;

/**
 * Runs the binary with `args` (passed verbatim, no shell) and waits for it. A non-zero exit
 * code or a signal is reported in the result, not thrown; the promise rejects only when the
 * binary cannot be found or started.
 *
 * @example
 * const { code, stdout } = await run(["--version"]);
 * @example
 * const { code } = await run(["build"], { stdio: "inherit" });
 */
export function run(
  args?: readonly string[],
  options?: RunOptions & { stdio?: "pipe"; encoding?: "utf8" },
): Promise<CapturedRun<string>>;
export function run(
  args: readonly string[],
  options: RunOptions & { stdio?: "pipe"; encoding: "buffer" },
): Promise<CapturedRun<Uint8Array>>;
export function run(
  args: readonly string[],
  options: RunOptions & { stdio: "inherit" },
): Promise<ExitStatus>;

/**
 * Starts the binary and returns at once, for long-running processes, streaming output, or
 * signals. Throws (synchronously) when the binary cannot be found.
 *
 * @example
 * const child = spawn(["serve"], { stdio: "inherit" });
 * setTimeout(() => child.kill("SIGTERM"), 5000);
 * const { code, signal } = await child.exited;
 */
export function spawn(args?: readonly string[], options?: SpawnOptions): SpawnedBinary;

/** The launcher package's name (`"@acme/greeter"`). */
export const packageName: string;
/** The version of the package and of the binaries it runs. */
export const version: string;
/** The names of the binaries the package runs, as its `bin` field lists them. */
export const bins: readonly string[];
