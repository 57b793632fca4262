// Example: run {{BIN}} from TypeScript with {{PACKAGE}}'s typed API.
// Type-check with `tsc --noEmit --strict --module nodenext examples/run.ts`; needs no @types/node.
import { binaryPath, run, spawn, type ExitStatus } from "{{PACKAGE}}";

async function main(): Promise<void> {
  const path: string = binaryPath();
  console.log(`binary: ${path}`);

  // Captured output is typed as string (or Uint8Array with `encoding: "buffer"`).
  const { code, stdout } = await run(["--version"]);
  console.log(`exit code ${code}: ${stdout.trim()}`);

  const bytes = await run(["--version"], { encoding: "buffer" });
  console.log(`${bytes.stdout.length} bytes of output`);

  // With inherited stdio the result has only the exit status.
  const status: ExitStatus = await run(["--version"], { stdio: "inherit" });
  console.log(`inherited: code=${status.code} signal=${status.signal}`);

  const child = spawn(["--version"], { stdio: ["ignore", "pipe", "inherit"] });
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk) => console.log(`streamed: ${String(chunk).trim()}`));
  const ended: ExitStatus = await child.exited;
  console.log(`spawned process ended: code=${ended.code} signal=${ended.signal}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
});
