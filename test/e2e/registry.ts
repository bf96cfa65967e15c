// A private registry for the end-to-end tests: Debian's docker-registry package (the distribution registry) on a
// free loopback port, with basic authentication from an htpasswd file (bcrypt, the only hash it accepts), over
// plain http, which the Docker engine allows for 127.0.0.0/8 without TLS.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";

export interface TestRegistry {
  /** host:port, as image names and `docker login` take it. */
  address: string;
  username: string;
  password: string;
  stop(): Promise<void>;
}

/** Whether this machine has the registry and htpasswd (apt-get install docker-registry apache2-utils). */
export function registryAvailable(): boolean {
  return ["docker-registry", "htpasswd"].every(
    (command) => spawnSync("sh", ["-c", `command -v ${command}`]).status === 0,
  );
}

export async function startRegistry(username: string): Promise<TestRegistry> {
  const directory = await mkdtemp(path.join(os.tmpdir(), "ephemeral-agents-registry-"));
  const password = `pw-${randomBytes(12).toString("hex")}`;
  const htpasswd = spawnSync("htpasswd", ["-Bbn", username, password], { encoding: "utf8" });
  if (htpasswd.status !== 0) throw new Error(`htpasswd failed: ${htpasswd.stderr}`);
  await writeFile(path.join(directory, "htpasswd"), htpasswd.stdout);
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  await writeFile(
    path.join(directory, "config.yml"),
    [
      "version: 0.1",
      "log:",
      "  level: warn",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${path.join(directory, "data")}`,
      "http:",
      `  addr: ${address}`,
      "auth:",
      "  htpasswd:",
      "    realm: ephemeral-agents-test",
      `    path: ${path.join(directory, "htpasswd")}`,
      "",
    ].join("\n"),
  );
  const child = spawn("docker-registry", ["serve", path.join(directory, "config.yml")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let errors = "";
  child.stderr?.on("data", (chunk: Buffer) => (errors = (errors + chunk.toString()).slice(-4000)));
  const stop = async () => {
    await stopProcess(child);
    await rm(directory, { recursive: true, force: true });
  };
  try {
    await untilAnswering(address, child, () => errors);
  } catch (error) {
    await stop();
    throw error;
  }
  return { address, username, password, stop };
}

/** The registry answers /v2/ with 401 to a request without credentials once it listens. */
async function untilAnswering(address: string, child: ChildProcess, errors: () => string): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${errors()}`);
    try {
      const response = await fetch(`http://${address}/v2/`);
      if (response.status === 401) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`docker-registry on ${address} did not answer: ${errors()}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}
