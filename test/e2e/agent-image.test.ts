// The agent image's start script against the real Docker engine: settings errors, failures to get
// the agent, and full one-job runs against the Azure DevOps stand-in with the stand-in agent package.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startDevOps, type DevOpsStandin } from "../../standins/devops";
import { ContainerTracker, type ContainerRun } from "./containers";
import { requireDockerEngine } from "./engine";
import { buildAgentImage, packFakeAgent } from "../../standins/images";

const token = "agent-image-test-token-0123456789";

describe("agent image (real Docker engine)", function () {
  this.timeout(5 * 60_000);
  const containers = new ContainerTracker();
  let image = "";

  before(async function () {
    await requireDockerEngine(this);
    image = await buildAgentImage();
  });

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
  });

  describe("one job against the Azure DevOps stand-in", () => {
    const poolName = "Ephemeral";
    let devOps: DevOpsStandin;
    let packageDirectory = "";

    before(async () => {
      packageDirectory = await mkdtemp(path.join(os.tmpdir(), "fake-agent-package-"));
      const agentPackagePath = await packFakeAgent(path.join(packageDirectory, "vsts-agent.tar.gz"));
      devOps = await startDevOps({
        pools: [{ name: poolName }],
        tokens: [{ token, defaultPoolRight: "manage" }],
        agentPackagePath,
        longPollMs: 500,
      });
    });

    after(async () => {
      await devOps?.close();
      await rm(packageDirectory, { recursive: true, force: true });
    });

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
      const run = await startAgent(agentName, { EPHEMERAL_AGENT_MAX_LIFETIME_MINUTES: "0.1" });
      await waitUntilOnline(agentName, run);

      const { exitCode, output } = await run.exit(60_000);
      assert.equal(exitCode, 124, output);
      assert.match(output, /lifetime of 0\.1 minutes reached: stopping the agent/);
      assert.match(output, new RegExp(`agent ${agentName} unregistered`));
      assert.equal(devOps.agent(poolName, agentName), undefined);
    });

    it("uses an agent baked into the image without asking for a package", async () => {
      const bakedImage = await buildAgentImage({
        tag: "ephemeral-agents-test-agent:baked",
        agentPackageFile: path.join(packageDirectory, "vsts-agent.tar.gz"),
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
  reply: { status: number; body: string };
  requests: Array<{ path: string; authorization: string | undefined }>;
  close(): Promise<void>;
}

/** A throwaway server that answers every request with one canned reply. */
async function startPackageServer(): Promise<PackageServer> {
  const state: Pick<PackageServer, "reply" | "requests"> = { reply: { status: 500, body: "" }, requests: [] };
  const server = http.createServer((request, response) => {
    state.requests.push({ path: request.url ?? "", authorization: request.headers.authorization });
    response.writeHead(state.reply.status, { "content-type": "application/json" }).end(state.reply.body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/myorg`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

async function execIn(run: ContainerRun, command: string[]): Promise<string> {
  const exec = await run.container.exec({ Cmd: command, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
