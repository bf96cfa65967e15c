import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as azdev from "azure-devops-node-api";
import type { TaskAgent } from "azure-devops-node-api/interfaces/TaskAgentInterfaces";
import {
  agentCredentialFiles,
  generateAgentKey,
  type AgentCredentialFiles,
  type AgentKey,
} from "../tasks/common/core/agentCredential";
import { startDevOps, type DevOpsStandin } from "./index";

/**
 * The fake agent's listener on this machine (bash, curl, jq, openssl, as in the agent image), started with the
 * three files the start task writes: it must sign in with the agent's own key before it goes online, and refuse
 * a key file the real agent would refuse.
 */
const manageToken = "manage-token";
const poolName = "Ephemeral";
const poolId = 3;
const listenerGuardMs = 60_000;

interface ListenerRun {
  exitCode: number | null;
  output: string;
}

describe("fake agent: the agent's own credential", () => {
  let devops: DevOpsStandin;
  let key: AgentKey;
  let agentFolder: string;

  before(async () => {
    key = await generateAgentKey();
  });

  beforeEach(async () => {
    devops = await startDevOps({
      pools: [{ name: poolName, id: poolId }],
      tokens: [{ token: manageToken, poolRights: { [poolName]: "manage" } }],
      longPollMs: 100,
    });
    agentFolder = await mkdtemp(path.join(os.tmpdir(), "fake-agent-credential-"));
    await cp(path.join(__dirname, "fake-agent"), agentFolder, { recursive: true });
    await mkdir(path.join(agentFolder, "tmp"));
  });

  afterEach(async () => {
    await devops.close();
    await rm(agentFolder, { recursive: true, force: true });
  });

  async function register(name: string): Promise<TaskAgent> {
    const api = await new azdev.WebApi(devops.url, azdev.getBearerHandler(manageToken)).getTaskAgentApi();
    return api.addAgent(
      { name, maxParallelism: 1, authorization: { publicKey: key.publicKey } } as unknown as TaskAgent,
      poolId,
    );
  }

  function filesFor(agent: TaskAgent): AgentCredentialFiles {
    return agentCredentialFiles(
      {
        agentId: agent.id ?? 0,
        agentName: agent.name ?? "",
        poolId,
        poolName,
        serverUrl: devops.url.replace(/\/$/, ""),
        workFolder: "_work",
      },
      {
        clientId: agent.authorization?.clientId ?? "",
        authorizationUrl: agent.authorization?.authorizationUrl ?? "",
      },
      key,
    );
  }

  async function writeFiles(files: AgentCredentialFiles): Promise<void> {
    for (const [name, content] of Object.entries(files)) {
      await writeFile(path.join(agentFolder, name), content, { mode: 0o600 });
    }
  }

  function runListener(): Promise<ListenerRun> {
    return new Promise((resolve, reject) => {
      const listener = spawn(path.join(agentFolder, "bin", "Agent.Listener"), ["run", "--once"], {
        env: {
          PATH: process.env.PATH,
          HOME: agentFolder,
          TMPDIR: path.join(agentFolder, "tmp"),
          FAKE_AGENT_JOB_SECONDS: "0",
        },
      });
      let output = "";
      listener.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
      listener.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
      const guard = setTimeout(() => {
        listener.kill("SIGKILL");
        reject(new Error(`the listener did not exit; it printed:\n${output}`));
      }, listenerGuardMs);
      listener.on("error", reject);
      listener.on("exit", (exitCode) => {
        clearTimeout(guard);
        resolve({ exitCode, output });
      });
    });
  }

  function tokenRequests(): number {
    return devops.requests.filter((request) => request.path === devops.agentOAuth.tokenPath).length;
  }

  it("exchanges a signed assertion for a token, opens its session with it, takes one job and exits 0", async () => {
    const agent = await register("agent-1");
    await writeFiles(filesFor(agent));
    const job = devops.queueJob({ poolName });

    const run = await runListener();

    assert.equal(run.exitCode, 0, run.output);
    assert.match(run.output, /signed in with the agent's own credential/);
    assert.equal(job.result, "succeeded");
    assert.equal(devops.agentOAuth.issuedTokens.length, 1);
    const session = devops.requests.find(
      (request) => request.method === "POST" && request.path.endsWith(`/pools/${poolId}/sessions`),
    );
    assert.deepEqual(session?.caller, {
      identity: { id: agent.authorization?.clientId, displayName: "Agent agent-1" },
    });
    assert.equal(session?.status, 200);
    assert.deepEqual(
      await readdir(path.join(agentFolder, "tmp")),
      [],
      "the key's temporary DER file is gone",
    );
  });

  it("refuses a key file whose key names are in another case (Modulus for modulus), before any request", async () => {
    const agent = await register("agent-1");
    const files = filesFor(agent);
    const parameters = JSON.parse(files[".credentials_rsaparams"]) as Record<string, unknown>;
    const { modulus, ...rest } = parameters;
    await writeFiles({ ...files, ".credentials_rsaparams": JSON.stringify({ ...rest, Modulus: modulus }) });

    const run = await runListener();

    assert.equal(run.exitCode, 2, run.output);
    assert.match(run.output, /Member 'modulus' was not found/);
    assert.equal(tokenRequests(), 0);
    assert.equal(devops.agent(poolName, "agent-1")?.status, "offline");
  });

  it("refuses a key file with a minimal-length (short) field, as .NET's ImportParameters does", async () => {
    const agent = await register("agent-1");
    const files = filesFor(agent);
    const parameters = JSON.parse(files[".credentials_rsaparams"]) as Record<string, string>;
    const shortened = Buffer.from(parameters.inverseQ, "base64").subarray(1).toString("base64");
    await writeFiles({
      ...files,
      ".credentials_rsaparams": JSON.stringify({ ...parameters, inverseQ: shortened }),
    });

    const run = await runListener();

    assert.equal(run.exitCode, 2, run.output);
    assert.match(run.output, /The specified RSA parameters are not valid/);
    assert.equal(tokenRequests(), 0);
  });

  it("cannot sign in once the registration is deleted", async () => {
    const agent = await register("agent-1");
    await writeFiles(filesFor(agent));
    devops.simulateAgent.unregister(poolName, "agent-1");

    const run = await runListener();

    assert.equal(run.exitCode, 1, run.output);
    assert.match(run.output, /token exchange .* failed with HTTP 401/);
    assert.equal(devops.agentOAuth.issuedTokens.length, 0);
  });
});
