// A tiny image for tests that need a container but not an agent: a static busybox, imported without a registry.
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import Docker from "dockerode";
import { pack } from "tar-stream";

const BUSYBOX = "/bin/busybox";

export interface BusyboxImage {
  /** repository:tag */
  image: string;
  /** Shell script run as the entrypoint, as uid 1000. */
  script: string;
  /** busybox applets to link into /bin. */
  commands: readonly string[];
  /** Create /azp owned by uid 1000, where the Docker provider writes the token. */
  tokenDirectory: boolean;
}

/** Imports the image from busybox-static's /bin/busybox unless the engine has it already. */
export async function ensureBusyboxImage(docker: Docker, spec: BusyboxImage): Promise<void> {
  try {
    await docker.getImage(spec.image).inspect();
    return;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 404) throw error;
  }
  const rootfs = pack();
  rootfs.entry({ name: "bin", type: "directory", mode: 0o755 });
  rootfs.entry({ name: "tmp", type: "directory", mode: 0o1777 });
  if (spec.tokenDirectory)
    rootfs.entry({ name: "azp", type: "directory", mode: 0o755, uid: 1000, gid: 1000 });
  rootfs.entry({ name: "bin/busybox", mode: 0o755 }, await readFile(BUSYBOX));
  for (const command of spec.commands) {
    rootfs.entry({ name: `bin/${command}`, type: "symlink", linkname: "busybox" });
  }
  rootfs.finalize();
  const [repo, tag] = spec.image.split(/:(?=[^:/]+$)/);
  const progress = await docker.importImage(rootfs as unknown as NodeJS.ReadableStream, {
    repo,
    tag,
    changes: [`ENTRYPOINT ${JSON.stringify(["/bin/sh", "-c", spec.script])}`, "USER 1000", "ENV PATH=/bin"],
  });
  for await (const line of createInterface({ input: progress })) {
    const event = JSON.parse(line) as { error?: string };
    if (event.error) throw new Error(`docker import failed: ${event.error}`);
  }
}
