// Runs agent containers for the end-to-end tests and reads what they print.
import type Docker from "dockerode";
import { docker } from "../../standins/images";
import { demultiplexLogs } from "../../tasks/common/providers/docker/dockerWire";

export interface ContainerRun {
  container: Docker.Container;
  /** Everything the container printed so far, stdout and stderr interleaved. */
  output(): Promise<string>;
  /** Waits for the container to exit; fails after timeoutMs with the output so far. */
  exit(timeoutMs: number): Promise<{ exitCode: number; output: string }>;
}

/** Keeps track of the containers a test started so an after hook can remove them all. */
export class ContainerTracker {
  private readonly started: Docker.Container[] = [];

  async start(
    image: string,
    env: Record<string, string>,
    files?: Record<string, string>,
  ): Promise<ContainerRun> {
    const container = await docker.createContainer({
      Image: image,
      Env: Object.entries(env).map(([name, value]) => `${name}=${value}`),
      HostConfig: { NetworkMode: "host" },
    });
    this.started.push(container);
    if (files) await container.putArchive(tarOf(files), { path: "/" });
    await container.start();
    return {
      container,
      output: () => outputOf(container),
      exit: (timeoutMs) => exitOf(container, timeoutMs),
    };
  }

  async removeAll(): Promise<void> {
    const containers = this.started.splice(0);
    await Promise.all(
      containers.map((container) => container.remove({ force: true }).catch(() => undefined)),
    );
  }
}

async function outputOf(container: Docker.Container): Promise<string> {
  const logs = await container.logs({ stdout: true, stderr: true, follow: false });
  return demultiplex(logs);
}

async function exitOf(container: Docker.Container, timeoutMs: number) {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void outputOf(container).then(
        (output) => reject(new Error(`container still running after ${timeoutMs} ms; output:\n${output}`)),
        reject,
      );
    }, timeoutMs);
  });
  try {
    const result = (await Promise.race([container.wait(), timedOut])) as { StatusCode: number };
    return { exitCode: result.StatusCode, output: await outputOf(container) };
  } finally {
    clearTimeout(timer);
  }
}

/** Docker multiplexes stdout and stderr of a container without a TTY into 8-byte-header frames. */
function demultiplex(logs: Buffer): string {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset + 8 <= logs.length;) {
    const size = logs.readUInt32BE(offset + 4);
    chunks.push(logs.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** A tar archive of text files (path -> content), owned by the image's agent user (uid 1000). */
export function tarOf(files: Record<string, string>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, content] of Object.entries(files)) {
    const data = Buffer.from(content, "utf8");
    const header = Buffer.alloc(512);
    header.write(name.replace(/^\//, ""), 0, 100, "utf8");
    header.write("0000600\0", 100, "ascii");
    header.write("0001750\0", 108, "ascii");
    header.write("0001750\0", 116, "ascii");
    header.write(`${data.length.toString(8).padStart(11, "0")}\0`, 124, "ascii");
    header.write(
      `${Math.floor(Date.now() / 1000)
        .toString(8)
        .padStart(11, "0")}\0`,
      136,
      "ascii",
    );
    header.write("        ", 148, "ascii");
    header.write("0", 156, "ascii");
    header.write("ustar\0" + "00", 257, "ascii");
    const checksum = header.reduce((sum, byte) => sum + byte, 0);
    header.write(`${checksum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Runs a command in a running container, as `user` or the image's user; its exit code and output. */
export async function execIn(
  container: string,
  command: string[],
  user?: string,
): Promise<{ exitCode: number; output: string }> {
  const execution = await docker.getContainer(container).exec({
    Cmd: command,
    User: user,
    AttachStdout: true,
    AttachStderr: true,
  });
  const chunks: Buffer[] = [];
  for await (const chunk of await execution.start({})) chunks.push(Buffer.from(chunk as Uint8Array));
  const { ExitCode } = await execution.inspect();
  return { exitCode: ExitCode ?? -1, output: demultiplexLogs(Buffer.concat(chunks)) };
}

/**
 * Runs a bash script in the container as the agent's user, which is what a job on the agent can do: it reads the
 * environment of every process of that user (root in a container without CAP_SYS_PTRACE could not) and every
 * file under /azp, which the user owns.
 */
export async function execAsAgentUser(container: string, script: string): Promise<string> {
  return (await execIn(container, ["bash", "-c", script], "agent")).output;
}

/**
 * The environments of every process in the container but the scan's own shell, which docker exec starts with the
 * container's configured environment (under ACI, the secure values): the agent's processes descend from the start
 * script.
 */
export function processEnvironments(container: string): Promise<string> {
  return execAsAgentUser(
    container,
    'for process in /proc/[0-9]*; do [[ ${process#/proc/} == "$$" ]] || tr "\\0" "\\n" <"$process/environ" 2>/dev/null; done',
  );
}
