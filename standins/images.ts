// Builds the container images the end-to-end tests need on this machine, without any registry:
// a Debian base image made with debootstrap, the agent image on top of it, and the stand-in agent package.
import Docker from "dockerode";
import { spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, rename, rm, stat, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { createReadStream, readdirSync, readFileSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export const repositoryRoot = path.resolve(__dirname, "..");
export const baseImage = "ephemeral-agents-test-base:bookworm";
const cacheDirectory = path.join(repositoryRoot, ".cache");
const baseRootFsTarball = path.join(cacheDirectory, "ephemeral-agents-test-base-bookworm.tar");
const agentImageDirectory = path.join(repositoryRoot, "images", "agent");
/**
 * Tagged by the content of images/agent: two checkouts with different start scripts on one engine (parallel work
 * trees, or a test run beside an edit) never run each other's image.
 */
export const agentImage = `ephemeral-agents-test-agent:${contentTag(agentImageDirectory)}`;

function contentTag(directory: string): string {
  const hash = createHash("sha256");
  for (const file of readdirSync(directory).sort()) {
    if (!statSync(path.join(directory, file)).isFile()) continue;
    hash
      .update(file)
      .update("\0")
      .update(readFileSync(path.join(directory, file)))
      .update("\0");
  }
  return hash.digest("hex").slice(0, 12);
}

const fakeAgentDirectory = path.join(__dirname, "fake-agent");
const basePackages = ["curl", "git", "jq", "ca-certificates", "libicu72", "procps"];
const debianMirror = "http://deb.debian.org/debian";

export const docker = new Docker();

export async function dockerAvailable(): Promise<boolean> {
  try {
    await docker.ping();
    return true;
  } catch {
    return false;
  }
}

let baseImageReady: Promise<void> | undefined;

/** Makes sure the base image exists: reuses it, else imports the cached root file system, else debootstraps one. */
export function ensureBaseImage(): Promise<void> {
  baseImageReady ??= timed(`base image ${baseImage}`, createBaseImageIfMissing);
  baseImageReady.catch(() => (baseImageReady = undefined));
  return baseImageReady;
}

async function createBaseImageIfMissing(): Promise<void> {
  if (await imageExists(baseImage)) return;
  if (!(await fileExists(baseRootFsTarball))) {
    await timed("debootstrap root file system", createBaseRootFsTarball);
  }
  await timed("docker import", importBaseImage);
}

async function createBaseRootFsTarball(): Promise<void> {
  await mkdir(cacheDirectory, { recursive: true });
  const rootFs = await mkdtemp(path.join(os.tmpdir(), "ephemeral-agents-rootfs-"));
  try {
    await run("debootstrap", [
      "--variant=minbase",
      `--include=${basePackages.join(",")}`,
      "bookworm",
      rootFs,
      debianMirror,
    ]);
    // Package caches make up a quarter of the root file system and the image needs none of them.
    await run("sh", [
      "-c",
      'rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*',
      "sh",
      rootFs,
    ]);
    const partial = `${baseRootFsTarball}.partial`;
    await run("tar", ["--numeric-owner", "-C", rootFs, "-cf", partial, "."]);
    await rename(partial, baseRootFsTarball);
  } finally {
    await rm(rootFs, { recursive: true, force: true });
  }
}

async function importBaseImage(): Promise<void> {
  const [repo, tag] = baseImage.split(":");
  const progress = await docker.importImage(createReadStream(baseRootFsTarball), { repo, tag });
  await followBuildOutput(progress);
}

export interface AgentImageOptions {
  tag?: string;
  /** A tar.gz agent package to bake into the image (no download when the container starts). */
  agentPackageFile?: string;
}

/** Builds images/agent on the test base image; returns the tag. */
export async function buildAgentImage(options: AgentImageOptions = {}): Promise<string> {
  const tag = options.tag ?? agentImage;
  await ensureBaseImage();
  await timed(`agent image ${tag}`, async () => {
    const context = await mkdtemp(path.join(os.tmpdir(), "ephemeral-agents-image-"));
    try {
      const files = ["Dockerfile", "start.sh", "install-prerequisites.sh"];
      for (const file of files)
        await copyFile(path.join(agentImageDirectory, file), path.join(context, file));
      if (options.agentPackageFile) {
        await copyFile(options.agentPackageFile, path.join(context, "agent-package.tar.gz"));
        files.push("agent-package.tar.gz");
      }
      const output = await docker.buildImage(
        { context, src: files },
        { t: tag, networkmode: "host", buildargs: { BASE_IMAGE: baseImage } },
      );
      await followBuildOutput(output);
    } finally {
      await rm(context, { recursive: true, force: true });
    }
  });
  return tag;
}

/** The host's Docker client, from Debian's docker.io package as .ci/run installs it. */
const hostDockerClient = "/usr/bin/docker";

/**
 * The test agent image with the Docker CLI, as images/agent's DOCKER_CLI=true gives it. That build argument installs
 * docker.io with apt, which the tests cannot: the debootstrap base image has no apt sources usable offline. So
 * the host's own client (from the same Debian release as the base) is copied into a layer on top of the test agent
 * image instead.
 */
export async function buildDockerCliAgentImage(agentImageTag: string): Promise<string> {
  const tag = `ephemeral-agents-test-agent-docker-cli:${agentImageTag.split(":")[1]}`;
  if (await imageExists(tag)) return tag;
  await timed(`agent image with the Docker CLI ${tag}`, async () => {
    const context = await mkdtemp(path.join(os.tmpdir(), "ephemeral-agents-docker-cli-"));
    try {
      await copyFile(hostDockerClient, path.join(context, "docker"));
      await writeFile(
        path.join(context, "Dockerfile"),
        `FROM ${agentImageTag}\nCOPY docker /usr/bin/docker\n`,
      );
      const output = await docker.buildImage({ context, src: ["Dockerfile", "docker"] }, { t: tag });
      await followBuildOutput(output);
    } finally {
      await rm(context, { recursive: true, force: true });
    }
  });
  return tag;
}

/** Packs standins/fake-agent into a tar.gz shaped like the real agent package. */
export async function packFakeAgent(outFile: string): Promise<string> {
  await timed("fake agent package", () =>
    // Executable whatever the checkout kept of the scripts' modes, as in the real package.
    run("tar", ["--owner=0", "--group=0", "--mode=a+rx", "-C", fakeAgentDirectory, "-czf", outFile, "."]),
  );
  return outFile;
}

export async function imageExists(name: string): Promise<boolean> {
  try {
    await docker.getImage(name).inspect();
    return true;
  } catch {
    return false;
  }
}

interface ProgressEvent {
  error?: string;
  errorDetail?: { message?: string };
  stream?: string;
}

/** Waits for a build or import stream; fails with the engine's error, which arrives inside the stream. */
async function followBuildOutput(stream: NodeJS.ReadableStream): Promise<void> {
  const events = await new Promise<ProgressEvent[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (error: Error | null, output: ProgressEvent[]) =>
      error ? reject(error) : resolve(output),
    ),
  );
  const failure = events.find((event) => event.error);
  if (failure) {
    const log = events
      .map((event) => event.stream ?? "")
      .join("")
      .trim();
    throw new Error(
      `${failure.errorDetail?.message ?? failure.error}\n${log.split("\n").slice(-20).join("\n")}`,
    );
  }
}

async function timed<T>(what: string, step: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const result = await step();
  console.log(`      ${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return result;
}

async function fileExists(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
    let errors = "";
    child.stderr.on("data", (chunk: Buffer) => (errors += chunk.toString()));
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0
        ? resolve()
        : reject(
            new Error(
              `${command} exited with code ${code}: ${errors.trim().split("\n").slice(-10).join("\n")}`,
            ),
          ),
    );
  });
}
