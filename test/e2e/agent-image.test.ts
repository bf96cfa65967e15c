// The agent image's start script against the real Docker engine: settings errors, failures to get and check
// the agent package, stopping during the download and configuration, and full one-job runs against the
// Azure DevOps stand-in with the stand-in agent package.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import { PassThrough } from "node:stream";
import path from "node:path";
import { startDevOps, type DevOpsStandin } from "../../standins/devops";
import { ContainerTracker, type ContainerRun } from "./containers";
import { requireDockerEngine } from "./engine";
import { agentImage, buildAgentImage, docker, packFakeAgent } from "../../standins/images";

const token = "agent-image-test-token-0123456789";
/** Upper bound that only guards against a hang; a stop that works takes a few seconds. */
const hangGuardMs = 60_000;

describe("agent image (real Docker engine)", function () {
  this.timeout(5 * 60_000);
  const containers = new ContainerTracker();
  let image = "";
  let packageDirectory = "";
  let agentPackagePath = "";

  before(async function () {
    await requireDockerEngine(this);
    image = await buildAgentImage();
    packageDirectory = await mkdtemp(path.join(os.tmpdir(), "fake-agent-package-"));
    agentPackagePath = await packFakeAgent(path.join(packageDirectory, "vsts-agent.tar.gz"));
  });

  after(() => rm(packageDirectory, { recursive: true, force: true }));

  afterEach(() => containers.removeAll());

  describe("settings", () => {
    it("exits with code 2 and one line when AZP_URL is missing", async () => {
      const run = await containers.start(image, { AZP_TOKEN: token });
      const { exitCode, output } = await run.exit(30_000);
      assert.equal(exitCode, 2);
      assert.match(output, /^AZP_URL is not set: [^\n]+\n$/);
    });

    it("exits with code 2 and names the ways to give a token when none is given", async () => {
      const run = await containers.start(image, { AZP_URL: "http://127.0.0.1:9/myorg" });
      const { exitCode, output } = await run.exit(30_000);
      assert.equal(exitCode, 2);
      assert.match(output, /^no token: set AZP_TOKEN, or AZP_TOKEN_FILE .*\/azp\/\.token\)\n$/);
    });

    it("exits with code 2 when AZP_TOKEN_FILE names a missing file", async () => {
      const run = await containers.start(image, {
        AZP_URL: "http://127.0.0.1:9/myorg",
        AZP_TOKEN_FILE: "/run/secrets/missing",
      });
      const { exitCode, output } = await run.exit(30_000);
      assert.equal(exitCode, 2);
      assert.equal(output, "AZP_TOKEN_FILE is /run/secrets/missing, which is missing or empty\n");
    });

    it("rejects a lifetime that is not a number of minutes", async () => {
      const run = await containers.start(image, {
        AZP_URL: "http://127.0.0.1:9/myorg",
        AZP_TOKEN: token,
        EPHEMERAL_AGENT_MAX_LIFETIME_MINUTES: "ten",
      });
      const { exitCode, output } = await run.exit(30_000);
      assert.equal(exitCode, 2);
      assert.match(output, /EPHEMERAL_AGENT_MAX_LIFETIME_MINUTES must be a number of minutes, got: ten/);
    });
  });

  describe("getting the agent package", () => {
    let server: PackageServer;
    beforeEach(async () => (server = await startPackageServer()));
    afterEach(() => server.close());

    it("says the token was rejected when the organization answers 401, without printing it", async () => {
      server.reply = { status: 401, body: "" };
      const run = await containers.start(image, { AZP_URL: server.url, AZP_TOKEN: token });
      const { exitCode, output } = await run.exit(60_000);
      assert.equal(exitCode, 1);
      assert.match(output, new RegExp(`AZP_TOKEN was rejected by ${server.url} \\(HTTP 401\\): `));
      assert.ok(!output.includes(token), "the token appears in the output");
      assert.deepEqual(server.requests, [
        {
          path: "/myorg/_apis/distributedtask/packages/agent?platform=linux-x64&top=1",
          authorization: `Basic ${Buffer.from(`:${token}`).toString("base64")}`,
        },
      ]);
    });

    it("says there is no agent package when the list is empty", async () => {
      server.reply = { status: 200, body: JSON.stringify({ count: 0, value: [] }) };
      const run = await containers.start(image, { AZP_URL: `${server.url}/`, AZP_TOKEN: token });
      const { exitCode, output } = await run.exit(60_000);
      assert.equal(exitCode, 1);
      assert.match(output, new RegExp(`^no agent package for linux-x64 at ${server.url}$`, "m"));
    });

    it("reads the token from /azp/.token when neither AZP_TOKEN nor AZP_TOKEN_FILE is set", async () => {
      server.reply = { status: 401, body: "" };
      const run = await containers.start(image, { AZP_URL: server.url }, { "/azp/.token": token });
      const { exitCode } = await run.exit(60_000);
      assert.equal(exitCode, 1);
      assert.equal(server.requests[0]?.authorization, `Basic ${Buffer.from(`:${token}`).toString("base64")}`);
    });

    it("refuses a package that does not match the SHA-256 hash the packages API lists", async () => {
      const agentPackage = await readFile(agentPackagePath);
      const listedHash = sha256("another package");
      server.reply = { status: 200, body: packageList(server.downloadUrl, listedHash) };
      server.download = { kind: "bytes", body: agentPackage };
      const run = await containers.start(image, { AZP_URL: server.url, AZP_TOKEN: token });
      const { exitCode, output } = await run.exit(60_000);
      assert.equal(exitCode, 1, output);
      assert.equal(
        output.trim().split("\n").at(-1),
        `the agent package from ${server.downloadUrl} does not match its SHA-256 hash: ` +
          `${server.url} lists ${listedHash}, the download has ${sha256(agentPackage)}`,
      );
      assert.doesNotMatch(output, /configuring agent/);
    });

    it("accepts the hash in upper case with hyphens, as the agent's updater compares it", async () => {
      const agentPackage = await readFile(agentPackagePath);
      const listedHash = sha256(agentPackage).toUpperCase().match(/../g)?.join("-") ?? "";
      server.reply = { status: 200, body: packageList(server.downloadUrl, listedHash) };
      server.download = { kind: "bytes", body: agentPackage };
      const run = await containers.start(image, { AZP_URL: server.url, AZP_TOKEN: token });
      // Past the check, config.sh fails: this server is no Azure DevOps.
      const { exitCode, output } = await run.exit(60_000);
      assert.equal(exitCode, 1, output);
      assert.doesNotMatch(output, /does not match its SHA-256 hash/);
      assert.match(output, /^configuring agent /m);
    });

    it("stops at once on SIGTERM while the package downloads slowly", async () => {
      server.reply = { status: 200, body: packageList(server.downloadUrl, sha256("unused")) };
      server.download = { kind: "trickle" };
      const run = await containers.start(image, { AZP_URL: server.url, AZP_TOKEN: token });
      await eventOrHang(server.downloadStarted, "the download to start", run);

      const stopped = Date.now();
      await run.container.kill({ signal: "SIGTERM" });
      // Were the signal held until the download ends, the container would run for up to 900 s.
      const { exitCode, output } = await run.exit(hangGuardMs);
      logSeconds("SIGTERM during the download to container exit", stopped);
      assert.equal(exitCode, 143, output);
      assert.match(output, /received SIGTERM: stopping the agent/);
      assert.doesNotMatch(output, /configuring agent|unregister/);
      await eventOrHang(server.downloadClosed, "the download connection to close", run);
    });
  });

  describe("one job against the Azure DevOps stand-in", () => {
    const poolName = "Ephemeral";
    let devOps: DevOpsStandin;

    before(async () => {
      devOps = await startDevOps({
        pools: [{ name: poolName }],
        tokens: [{ token, defaultPoolRight: "manage" }],
        agentPackagePath,
        longPollMs: 500,
      });
    });

    after(() => devOps?.close());

    function startAgent(agentName: string, extraEnv: Record<string, string> = {}): Promise<ContainerRun> {
      return containers.start(image, {
        AZP_URL: devOps.url,
        AZP_TOKEN: token,
        AZP_POOL: poolName,
        AZP_AGENT_NAME: agentName,
        EPHEMERAL_AGENT_RUN: agentName,
        ...extraEnv,
      });
    }

    async function waitUntilOnline(agentName: string, run: ContainerRun): Promise<number> {
      const started = Date.now();
      while (devOps.agent(poolName, agentName)?.status !== "online") {
        if (Date.now() - started > 60_000) {
          throw new Error(`agent ${agentName} not online after 60 s; output:\n${await run.output()}`);
        }
        await sleep(100);
      }
      const seconds = (Date.now() - started) / 1000;
      console.log(`      container start to agent online: ${seconds.toFixed(1)} s`);
      return seconds;
    }

    it("downloads the agent, takes one job, unregisters and exits with code 0", async () => {
      const agentName = "image-test-one-job";
      const run = await startAgent(agentName, { FAKE_AGENT_JOB_SECONDS: "1" });
      await waitUntilOnline(agentName, run);

      const agent = devOps.agent(poolName, agentName);
      assert.equal(agent?.systemCapabilities.EPHEMERAL_AGENT_RUN, agentName);
      for (const hidden of ["AZP_TOKEN", "AZP_TOKEN_FILE", "AZP_URL", "AZP_POOL", "AZP_AGENT_NAME"]) {
        assert.ok(!(hidden in (agent?.systemCapabilities ?? {})), `${hidden} is reported as a capability`);
      }
      const environment = await execIn(run, ["cat", "/proc/1/environ"]);
      assert.ok(!environment.includes(token), "the token is readable in /proc/1/environ");

      const job = devOps.queueJob({
        poolName,
        demands: { EPHEMERAL_AGENT_RUN: agentName },
        jobName: "Build",
      });
      const { exitCode, output } = await run.exit(60_000);
      assert.equal(exitCode, 0, output);
      assert.match(output, /Running job: Build/);
      assert.match(output, /Job Build completed with result: Succeeded/);
      assert.match(output, new RegExp(`agent ${agentName} unregistered`));
      assert.equal(devOps.state.findJob(job.requestId)?.result, "succeeded");
      assert.equal(devOps.agent(poolName, agentName), undefined);
      assert.ok(!output.includes(token), "the token appears in the output");

      // config.sh registered a public key of its own, and the listener signed in with that key: the stand-in opens
      // a key-registered agent's session only for the token its endpoint issued, never for the registration token.
      const registration = devOps.requests.find(
        (request) =>
          request.method === "POST" && request.path.endsWith(`/pools/${agent?.poolId ?? ""}/agents`),
      );
      assert.match(
        JSON.stringify((registration?.body as { authorization?: unknown })?.authorization),
        /"publicKey":\{"exponent":"AQAB","modulus":"[A-Za-z0-9+/]{342}==/,
      );
      const signIn = devOps.requests.findIndex(
        (request) => request.method === "POST" && request.path === devOps.agentOAuth.tokenPath,
      );
      const session = devOps.requests.findIndex(
        (request) => request.method === "POST" && request.path.endsWith("/sessions"),
      );
      assert.ok(signIn >= 0 && session > signIn, "the listener signed in before it opened its session");
    });

    it("stops the agent and unregisters it on SIGTERM", async () => {
      const agentName = "image-test-sigterm";
      const run = await startAgent(agentName);
      await waitUntilOnline(agentName, run);

      await run.container.kill({ signal: "SIGTERM" });
      const { exitCode, output } = await run.exit(60_000);
      assert.equal(exitCode, 143, output);
      assert.match(output, /received SIGTERM: stopping the agent/);
      assert.match(output, new RegExp(`agent ${agentName} unregistered`));
      assert.equal(devOps.agent(poolName, agentName), undefined);
    });

    it("gives back a running job as canceled on SIGTERM", async () => {
      const agentName = "image-test-sigterm-job";
      const run = await startAgent(agentName, { FAKE_AGENT_JOB_SECONDS: "60" });
      await waitUntilOnline(agentName, run);
      const job = devOps.queueJob({ poolName, demands: { EPHEMERAL_AGENT_RUN: agentName }, jobName: "Long" });
      while (!(await run.output()).includes("Running job: Long")) await sleep(100);

      await run.container.kill({ signal: "SIGTERM" });
      const { exitCode, output } = await run.exit(60_000);
      assert.equal(exitCode, 143, output);
      assert.equal(devOps.state.findJob(job.requestId)?.result, "canceled");
      assert.equal(devOps.agent(poolName, agentName), undefined);
    });

    it("lets the listener take its time to cancel the job before unregistering", async () => {
      const agentName = "image-test-slow-cancel";
      // Longer than the 20 s the script used to allow, within the listener's own 30 s.
      const run = await startAgent(agentName, {
        FAKE_AGENT_JOB_SECONDS: "600",
        FAKE_AGENT_SHUTDOWN_SECONDS: "25",
      });
      await waitUntilOnline(agentName, run);
      const job = devOps.queueJob({ poolName, demands: { EPHEMERAL_AGENT_RUN: agentName }, jobName: "Long" });
      await outputOrHang(run, /^Running job: Long$/m);

      await run.container.kill({ signal: "SIGTERM" });
      const { exitCode, output } = await run.exit(2 * hangGuardMs);
      assert.equal(exitCode, 143, output);
      assert.equal(devOps.state.findJob(job.requestId)?.result, "canceled");
      assert.match(output, new RegExp(`Agent shutting down[\\s\\S]*agent ${agentName} unregistered`));
      assert.equal(devOps.agent(poolName, agentName), undefined);
    });

    it("gives up unregistering after three attempts", async () => {
      const agentName = "image-test-unregister-fails";
      const run = await startAgent(agentName);
      const agent = await waitUntilOnline(agentName, run).then(() => devOps.agent(poolName, agentName));
      const agentPath = `/myorg/_apis/distributedtask/pools/${agent?.poolId}/agents/${agent?.id}`;
      const deletes = () =>
        devOps.requests.filter((r) => r.method === "DELETE" && r.path === agentPath).length;
      const stopFailing = devOps.intercept((request) =>
        request.method === "DELETE" && request.path === agentPath ? { status: 500 } : undefined,
      );
      try {
        await run.container.kill({ signal: "SIGTERM" });
        const { exitCode, output } = await run.exit(60_000);
        assert.equal(exitCode, 143, output);
        assert.match(output, new RegExp(`could not unregister agent ${agentName} after 3 attempts`));
        assert.equal(deletes(), 3);
      } finally {
        stopFailing();
      }
    });

    it("stops the agent and unregisters it when its lifetime is reached", async () => {
      const agentName = "image-test-lifetime";
      // The lifetime counts from the container's start, so on a busy machine the agent may be online
      // for only a moment: its sign-in is read from the log, which keeps it, not from a polled status.
      const run = await startAgent(agentName, { EPHEMERAL_AGENT_MAX_LIFETIME_MINUTES: "0.25" });
      await outputOrHang(run, /^Agent\.Listener: signed in with the agent's own credential$/m);

      const { exitCode, output } = await run.exit(60_000);
      assert.equal(exitCode, 124, output);
      assert.match(
        output,
        /signed in with the agent's own credential[\s\S]*lifetime of 0\.25 minutes reached: stopping the agent/,
      );
      assert.match(output, new RegExp(`agent ${agentName} unregistered`));
      assert.equal(devOps.agent(poolName, agentName), undefined);
    });

    it("stops at once on SIGTERM while config.sh runs and leaves no registration behind", async () => {
      const agentName = "image-test-sigterm-config";
      const run = await startAgent(agentName, { FAKE_AGENT_CONFIG_SECONDS: "600" });
      await outputOrHang(run, /^config\.sh: configuring slowly/m);

      const stopped = Date.now();
      await run.container.kill({ signal: "SIGTERM" });
      // Were the signal held until config.sh ends, the container would run for 600 s.
      const { exitCode, output } = await run.exit(hangGuardMs);
      logSeconds("SIGTERM during config.sh to container exit", stopped);
      assert.equal(exitCode, 143, output);
      assert.match(output, /received SIGTERM: stopping the agent/);
      assert.equal(devOps.agent(poolName, agentName), undefined);
    });

    it("keeps the token off the command line of every process in the container during configuration", async () => {
      const agentName = "image-test-cmdline";
      const run = await startAgent(agentName, { FAKE_AGENT_CONFIG_SECONDS: "600" });
      await outputOrHang(run, /^config\.sh: configuring slowly/m);

      const commandLines = await execIn(run, [
        "sh",
        "-c",
        'for f in /proc/[0-9]*/cmdline; do tr "\\000" " " <"$f"; echo; done',
      ]);
      assert.match(commandLines, /config\.sh --unattended --agent image-test-cmdline/);
      assert.ok(!commandLines.includes(token), `the token is on a command line:\n${commandLines}`);
    });

    it("reports environment variables as capabilities by the real agent's rules", async () => {
      const agentName = "image-test-capabilities";
      const run = await startAgent(agentName, {
        TOOL_PATH: "/opt/tool",
        VALUE_OF_1023: "x".repeat(1023),
        VALUE_OF_1024: "x".repeat(1024),
        SYSTEM_ACCESSTOKEN: "not-a-capability",
        PSMODULEPATH: "/opt/powershell",
        IGNORED_BY_USER: "1",
        VSO_AGENT_IGNORE: " IGNORED_BY_USER , ",
      });
      await waitUntilOnline(agentName, run);
      const capabilities = devOps.agent(poolName, agentName)?.systemCapabilities ?? {};
      assert.equal(capabilities.TOOL_PATH, "/opt/tool");
      assert.equal(capabilities.VALUE_OF_1023?.length, 1023);
      for (const unreported of [
        "VALUE_OF_1024",
        "SYSTEM_ACCESSTOKEN",
        "PSMODULEPATH",
        "IGNORED_BY_USER",
        "VSO_AGENT_IGNORE",
        "VSTS_AGENT_INPUT_TOKEN",
      ]) {
        assert.ok(!(unreported in capabilities), `${unreported} is reported as a capability`);
      }
      assert.ok(!JSON.stringify(capabilities).includes(token), "the token is reported as a capability");
    });

    it("comes online again after a self-update and takes the job", async () => {
      const agentName = "image-test-self-update";
      const statuses: string[] = [];
      const recordStatus = (agent: { name: string; status: string }) => {
        if (agent.name === agentName) statuses.push(agent.status);
      };
      devOps.events.on("agentStatusChanged", recordStatus);
      try {
        const run = await startAgent(agentName, { FAKE_AGENT_SELF_UPDATE: "1", FAKE_AGENT_JOB_SECONDS: "1" });
        await outputOrHang(run, /^Agent exit code 4$/m);
        await waitUntilOnline(agentName, run);
        const job = devOps.queueJob({
          poolName,
          demands: { EPHEMERAL_AGENT_RUN: agentName },
          jobName: "Build",
        });

        const { exitCode, output } = await run.exit(hangGuardMs);
        assert.equal(exitCode, 0, output);
        assert.equal(output.match(/Agent update requested/g)?.length, 1, output);
        assert.match(output, /Job Build completed with result: Succeeded/);
        assert.equal(devOps.state.findJob(job.requestId)?.result, "succeeded");
        assert.deepEqual(statuses.slice(0, 3), ["online", "offline", "online"]);
        assert.equal(devOps.agent(poolName, agentName), undefined);
      } finally {
        devOps.events.off("agentStatusChanged", recordStatus);
      }
    });

    it("uses an agent baked into the image without asking for a package", async () => {
      const bakedImage = await buildAgentImage({
        tag: `${agentImage}-baked`,
        agentPackageFile: agentPackagePath,
      });
      const agentName = "image-test-baked";
      const packageLookups = () =>
        devOps.requests.filter((request) => request.path.includes("/packages/")).length;
      const lookupsBefore = packageLookups();
      const run = await containers.start(bakedImage, {
        AZP_URL: devOps.url,
        AZP_TOKEN: token,
        AZP_POOL: poolName,
        AZP_AGENT_NAME: agentName,
      });
      await waitUntilOnline(agentName, run);
      await run.container.kill({ signal: "SIGTERM" });
      const { output } = await run.exit(60_000);
      assert.match(output, /^using the agent baked into the image$/m);
      assert.equal(packageLookups(), lookupsBefore);
      assert.equal(devOps.agent(poolName, agentName), undefined);
    });
  });
});

interface PackageServer {
  /** Collection URL without a trailing slash, e.g. http://127.0.0.1:41234/myorg */
  url: string;
  /** Where the package list may send the download. */
  downloadUrl: string;
  /** The answer to every request but the download. */
  reply: { status: number; body: string };
  /** The download: the package's bytes, or a trickle of one byte a second that never ends. */
  download: { kind: "bytes"; body: Buffer } | { kind: "trickle" };
  requests: Array<{ path: string; authorization: string | undefined }>;
  downloadStarted: Promise<void>;
  /** Settles when the client closes the download connection. */
  downloadClosed: Promise<void>;
  close(): Promise<void>;
}

/** A throwaway server: one canned reply for the package list (or anything else) and a download. */
async function startPackageServer(): Promise<PackageServer> {
  let downloadStarted = () => {};
  let downloadClosed = () => {};
  const trickles = new Set<NodeJS.Timeout>();
  const state = {
    reply: { status: 500, body: "" },
    download: { kind: "trickle" } as PackageServer["download"],
    requests: [] as PackageServer["requests"],
    downloadStarted: new Promise<void>((resolve) => (downloadStarted = resolve)),
    downloadClosed: new Promise<void>((resolve) => (downloadClosed = resolve)),
  };
  const server = http.createServer((request, response) => {
    state.requests.push({ path: request.url ?? "", authorization: request.headers.authorization });
    if (request.url !== downloadPath) {
      response.writeHead(state.reply.status, { "content-type": "application/json" }).end(state.reply.body);
      return;
    }
    downloadStarted();
    response.on("close", downloadClosed);
    if (state.download.kind === "bytes") {
      response.writeHead(200, { "content-type": "application/octet-stream" }).end(state.download.body);
      return;
    }
    response.writeHead(200, { "content-type": "application/octet-stream", "content-length": "100000000" });
    const trickle = setInterval(() => response.write(Buffer.alloc(1)), 1000);
    trickles.add(trickle);
    response.on("close", () => clearInterval(trickle));
  });
  const downloadPath = "/_packages/vsts-agent-linux-x64.tar.gz";
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/myorg`,
    downloadUrl: `http://127.0.0.1:${port}${downloadPath}`,
    close: () => {
      trickles.forEach(clearInterval);
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

/** The packages API's answer with one linux-x64 agent package (PackageMetadata in taskAgent-7.1.json). */
function packageList(downloadUrl: string, hashValue: string): string {
  return JSON.stringify({
    count: 1,
    value: [{ type: "agent", platform: "linux-x64", downloadUrl, hashValue, filename: "vsts-agent.tar.gz" }],
  });
}

function sha256(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Waits for an event, failing with the container's output if it has not happened within the hang guard. */
async function eventOrHang(event: Promise<void>, what: string, run: ContainerRun): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<"hang">((resolve) => (timer = setTimeout(() => resolve("hang"), hangGuardMs)));
  try {
    if ((await Promise.race([event, hang])) === "hang") {
      throw new Error(`waited ${hangGuardMs} ms for ${what}; output:\n${await run.output()}`);
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until the container has printed a line matching pattern. */
async function outputOrHang(run: ContainerRun, pattern: RegExp): Promise<void> {
  const started = Date.now();
  while (!pattern.test(await run.output())) {
    if (Date.now() - started > hangGuardMs) {
      throw new Error(
        `no output matching ${pattern} after ${hangGuardMs} ms; output:\n${await run.output()}`,
      );
    }
    await sleep(100);
  }
}

function logSeconds(what: string, since: number): void {
  console.log(`      ${what}: ${((Date.now() - since) / 1000).toFixed(1)} s`);
}

async function execIn(run: ContainerRun, command: string[]): Promise<string> {
  const exec = await run.container.exec({ Cmd: command, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  const output = new PassThrough();
  const chunks: Buffer[] = [];
  output.on("data", (chunk: Buffer) => chunks.push(chunk));
  docker.modem.demuxStream(stream, output, output);
  await new Promise((resolve) => stream.on("end", resolve));
  return Buffer.concat(chunks).toString("utf8");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
