import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as azdev from "azure-devops-node-api";
import {
  TaskAgentPoolActionFilter,
  TaskAgentStatus,
  TaskResult,
} from "azure-devops-node-api/interfaces/TaskAgentInterfaces";
import { JobRejectedError, startDevOps, type DevOpsStandin } from "./index";

const manageToken = "manage-token";
const readerToken = "reader-token";
const poolName = "Ephemeral";

describe("Azure DevOps stand-in", () => {
  let devops: DevOpsStandin;
  let packageDirectory: string;
  let packagePath: string;

  before(async () => {
    packageDirectory = await mkdtemp(path.join(os.tmpdir(), "standin-package-"));
    packagePath = path.join(packageDirectory, "agent.tar.gz");
    await writeFile(packagePath, "not really a tarball");
  });

  after(async () => {
    await rm(packageDirectory, { recursive: true, force: true });
  });

  beforeEach(async () => {
    devops = await startDevOps({
      pools: [{ name: poolName, id: 7 }, { name: "Secret" }],
      tokens: [
        {
          token: manageToken,
          identity: { displayName: "Build Service" },
          poolRights: { [poolName]: "manage", Secret: "none" },
        },
        { token: readerToken, identity: { displayName: "Reader" } },
      ],
      agentPackagePath: packagePath,
      longPollMs: 100,
    });
  });

  afterEach(async () => {
    await devops.close();
  });

  function bearer(token = manageToken): azdev.WebApi {
    return new azdev.WebApi(devops.url, azdev.getBearerHandler(token));
  }

  async function rest(
    method: string,
    route: string,
    body?: unknown,
    token = manageToken,
  ): Promise<{ status: number; body: unknown }> {
    const response = await fetch(`${devops.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined };
  }

  it("tells connect() who the caller is", async () => {
    const connection = await bearer().connect();
    assert.equal(connection.authenticatedUser?.providerDisplayName, "Build Service");
  });

  it("finds pools by name, hides pools without rights and answers [] for unknown names", async () => {
    const taskAgent = await bearer().getTaskAgentApi();
    const pools = await taskAgent.getAgentPools(poolName);
    assert.deepEqual(
      pools.map((pool) => [pool.id, pool.name]),
      [[7, poolName]],
    );
    assert.deepEqual(await taskAgent.getAgentPools("Secret"), []);
    assert.deepEqual(await taskAgent.getAgentPools("Nope"), []);
    assert.equal((await taskAgent.getAgentPool(7))?.name, poolName);
    assert.deepEqual(
      devops.requests.slice(0, 3).map((request) => `${request.method} ${request.path}`),
      [
        "OPTIONS /myorg/_apis/Location",
        "GET /myorg/_apis/ResourceAreas",
        "OPTIONS /myorg/_apis/distributedtask",
      ],
    );
  });

  it("registers, filters, replaces, updates and deletes agents through TaskAgentApi", async () => {
    const taskAgent = await bearer().getTaskAgentApi();
    const added = await taskAgent.addAgent(
      { name: "agent-a", version: "4.260.0", systemCapabilities: { EPHEMERAL_AGENT_RUN: "42", docker: "1" } },
      7,
    );
    await taskAgent.addAgent({ name: "agent-b", systemCapabilities: { EPHEMERAL_AGENT_RUN: "43" } }, 7);
    assert.equal(added.status, TaskAgentStatus.Offline);
    await assert.rejects(taskAgent.addAgent({ name: "agent-a" }, 7), { statusCode: 409 });

    const byName = await taskAgent.getAgents(7, "agent-a");
    assert.deepEqual(
      byName.map((agent) => agent.name),
      ["agent-a"],
    );
    assert.equal(byName[0].systemCapabilities, undefined);
    const byDemand = await taskAgent.getAgents(7, undefined, true, undefined, undefined, undefined, [
      "EPHEMERAL_AGENT_RUN -equals 43",
    ]);
    assert.deepEqual(
      byDemand.map((agent) => agent.name),
      ["agent-b"],
    );
    assert.deepEqual(
      (await taskAgent.getAgents(7, undefined, true, undefined, undefined, undefined, ["docker"])).map(
        (agent) => agent.name,
      ),
      ["agent-a"],
    );

    const replaced = await taskAgent.replaceAgent(
      { name: "agent-a", systemCapabilities: { fresh: "yes" } },
      7,
      added.id as number,
    );
    assert.equal(replaced.id, added.id);
    assert.deepEqual(replaced.systemCapabilities, { fresh: "yes" });
    const disabled = await taskAgent.updateAgent({ enabled: false }, 7, added.id as number);
    assert.equal(disabled.enabled, false);

    await taskAgent.deleteAgent(7, added.id as number);
    assert.equal(await taskAgent.getAgent(7, added.id as number), null);
    // node-api turns a 404 into a null result rather than an error.
    await taskAgent.deleteAgent(7, added.id as number);
    assert.equal(devops.requests.at(-1)?.status, 404);
  });

  it("answers 401 to unknown tokens that suppress the sign-in redirect, and 403 to changes without Manage", async () => {
    const suppressed = new azdev.WebApi(devops.url, azdev.getBearerHandler("unknown"), {
      headers: { "X-TFS-FedAuthRedirect": "Suppress" },
    });
    await assert.rejects(suppressed.connect(), { statusCode: 401 });
    const withPat = new azdev.WebApi(devops.url, azdev.getPersonalAccessTokenHandler(readerToken));
    const taskAgent = await withPat.getTaskAgentApi();
    assert.equal((await taskAgent.getAgentPools(poolName)).length, 1);
    await assert.rejects(
      taskAgent.addAgent({ name: "agent-x" }, 7),
      (error: Error & { statusCode?: number }) => {
        assert.equal(error.statusCode, 403);
        assert.match(error.message, /needs Manage permissions for pool Ephemeral/);
        return true;
      },
    );
  });

  it("answers a GET with a bad token with 203 and the sign-in page unless the redirect is suppressed", async () => {
    const signIn = await fetch(`${devops.url}_apis/distributedtask/pools`, {
      headers: { authorization: "Bearer unknown" },
    });
    assert.equal(signIn.status, 203);
    assert.match(signIn.headers.get("content-type") ?? "", /text\/html/);
    assert.match(await signIn.text(), /Sign In/);
    const suppressed = await fetch(`${devops.url}_apis/distributedtask/pools`, {
      headers: { authorization: "Bearer unknown", "x-tfs-fedauthredirect": "Suppress" },
    });
    assert.equal(suppressed.status, 401);
    assert.equal(
      (await rest("DELETE", "_apis/distributedtask/pools/7/agents/1", undefined, "unknown")).status,
      401,
    );
  });

  it("refuses a token once it expired, for requests and for a simulated agent's own unregister", async () => {
    devops.simulateAgent.register({ poolName, name: "expiring", token: manageToken });
    devops.expireToken(manageToken);
    const afterExpiry = await fetch(`${devops.url}_apis/distributedtask/pools`, {
      headers: { authorization: `Bearer ${manageToken}` },
    });
    assert.equal(afterExpiry.status, 203);
    assert.throws(() => devops.simulateAgent.unregister(poolName, "expiring", manageToken), /not authorized/);
    assert.ok(devops.agent(poolName, "expiring"), "the registration stays");
    assert.throws(() => devops.simulateAgent.unregister(poolName, "expiring", readerToken), /needs Manage/);
  });

  it("lists only the pools the caller may manage with actionFilter=manage", async () => {
    const manager = await bearer().getTaskAgentApi();
    const reader = await bearer(readerToken).getTaskAgentApi();
    const manageable = (api: typeof manager) =>
      api.getAgentPools(poolName, undefined, undefined, TaskAgentPoolActionFilter.Manage);
    assert.deepEqual(
      (await manageable(manager)).map((pool) => pool.name),
      [poolName],
    );
    assert.deepEqual(await manageable(reader), []);
    assert.equal((await reader.getAgentPools(poolName)).length, 1);
    assert.equal(devops.requests.at(-2)?.query.actionFilter, String(TaskAgentPoolActionFilter.Manage));
  });

  it("rejects a job at queue time when no registered agent satisfies its demands", () => {
    assert.throws(
      () => devops.queueJob({ poolName, demands: { EPHEMERAL_AGENT_RUN: "1" } }),
      (error: Error) => {
        assert.ok(error instanceof JobRejectedError);
        assert.equal(
          error.message,
          `No agent found in pool ${poolName} which satisfies the following demand: EPHEMERAL_AGENT_RUN. All demands: EPHEMERAL_AGENT_RUN -equals 1`,
        );
        return true;
      },
    );
    devops.simulateAgent.register({
      poolName,
      name: "offline",
      systemCapabilities: { EPHEMERAL_AGENT_RUN: "1" },
    });
    const queued = devops.queueJob({ poolName, demands: { EPHEMERAL_AGENT_RUN: "1" } });
    assert.equal(
      queued.assignTime,
      undefined,
      "an offline agent that satisfies the demands lets the job wait",
    );
  });

  it("answers the Security has-permissions query per pool", async () => {
    const query =
      "_apis/permissions/101eae8c-1709-47f9-b228-0e476c35b3ba/2?tokens=AgentPools/7,AgentPools/8&api-version=7.1";
    assert.deepEqual((await rest("GET", query)).body, { count: 2, value: [true, false] });
    assert.deepEqual((await rest("GET", query, undefined, readerToken)).body, {
      count: 2,
      value: [false, false],
    });
  });

  it("runs the session, message and job request protocol an agent script speaks", async () => {
    const registered = (await rest("POST", "_apis/distributedtask/pools/7/agents?api-version=7.1", {
      name: "script-agent",
      version: "4.260.0",
      systemCapabilities: { EPHEMERAL_AGENT_RUN: "99" },
    })) as { status: number; body: { id: number } };
    const session = (await rest("POST", "_apis/distributedtask/pools/7/sessions", {
      agent: { id: registered.body.id, name: "script-agent" },
      ownerName: "container",
    })) as { body: { sessionId: string } };
    assert.equal(devops.agent(poolName, "script-agent")?.status, "online");

    const idle = await rest(
      "GET",
      `_apis/distributedtask/pools/7/messages?sessionId=${session.body.sessionId}`,
    );
    assert.equal(idle.status, 202);

    const job = devops.queueJob({ poolName, demands: { EPHEMERAL_AGENT_RUN: "99" }, jobName: "Build" });
    const delivered = (await rest(
      "GET",
      `_apis/distributedtask/pools/7/messages?sessionId=${session.body.sessionId}`,
    )) as {
      status: number;
      body: { messageId: number; messageType: string; body: string };
    };
    assert.equal(delivered.body.messageType, "PipelineAgentJobRequest");
    assert.equal((JSON.parse(delivered.body.body) as { requestId: number }).requestId, job.requestId);
    const ack = await rest(
      "DELETE",
      `_apis/distributedtask/pools/7/messages/${delivered.body.messageId}?sessionId=${session.body.sessionId}`,
    );
    assert.equal(ack.status, 204);

    const taskAgent = await bearer().getTaskAgentApi();
    const busy = await taskAgent.getAgents(7, "script-agent", false, true);
    assert.equal(busy[0].assignedRequest?.requestId, job.requestId);

    await rest(
      "PATCH",
      `_apis/distributedtask/pools/7/jobrequests/${job.requestId}?lockToken=00000000-0000-0000-0000-000000000000`,
      {
        requestId: job.requestId,
        finishTime: new Date().toISOString(),
        result: "succeeded",
      },
    );
    const done = await taskAgent.getAgents(7, "script-agent", false, true, true);
    assert.equal(done[0].assignedRequest, undefined);
    assert.equal(done[0].lastCompletedRequest?.result, TaskResult.Succeeded);

    await rest("DELETE", `_apis/distributedtask/pools/7/sessions/${session.body.sessionId}`);
    assert.equal(devops.agent(poolName, "script-agent")?.status, "offline");
  });

  it("keeps a job message the agent has not acknowledged for its next session", async () => {
    const registered = (await rest("POST", "_apis/distributedtask/pools/7/agents?api-version=7.1", {
      name: "restarting-agent",
      version: "4.260.0",
      systemCapabilities: { EPHEMERAL_AGENT_RUN: "98" },
    })) as { body: { id: number } };
    const openSession = async () =>
      (
        (await rest("POST", "_apis/distributedtask/pools/7/sessions", {
          agent: { id: registered.body.id, name: "restarting-agent" },
          ownerName: "container",
        })) as { body: { sessionId: string } }
      ).body.sessionId;
    const first = await openSession();
    const job = devops.queueJob({ poolName, demands: { EPHEMERAL_AGENT_RUN: "98" }, jobName: "Build" });
    await rest("DELETE", `_apis/distributedtask/pools/7/sessions/${first}`);

    const second = await openSession();
    const delivered = (await rest("GET", `_apis/distributedtask/pools/7/messages?sessionId=${second}`)) as {
      status: number;
      body: { body: string };
    };
    assert.equal(delivered.status, 200);
    assert.equal((JSON.parse(delivered.body.body) as { requestId: number }).requestId, job.requestId);
  });

  it("lets tests simulate an agent without any container", () => {
    devops.simulateAgent.register({
      poolName,
      name: "sim",
      systemCapabilities: { EPHEMERAL_AGENT_RUN: "7" },
    });
    const queued = devops.queueJob({ poolName, demands: { EPHEMERAL_AGENT_RUN: "7" } });
    assert.equal(queued.assignTime, undefined);
    devops.simulateAgent.online(poolName, "sim");
    assert.equal(queued.reservedAgent?.name, "sim");
    assert.equal(devops.simulateAgent.finish(poolName, "sim", "failed").result, "failed");
    assert.equal(devops.agent(poolName, "sim")?.lastCompletedRequest?.requestId, queued.requestId);
    devops.simulateAgent.offline(poolName, "sim");
    devops.simulateAgent.unregister(poolName, "sim");
    assert.deepEqual(devops.agents(poolName), []);
    assert.throws(
      () => devops.simulateAgent.register({ poolName, name: "x", token: readerToken }),
      /needs Manage/,
    );
  });

  it("lists the agent package and serves its download", async () => {
    const taskAgent = await bearer().getTaskAgentApi();
    const [agentPackage] = await taskAgent.getPackages("agent", "linux-x64", 1);
    assert.equal(agentPackage.filename, "vsts-agent-linux-x64-4.260.0.tar.gz");
    const viaQuery = (await rest("GET", "_apis/distributedtask/packages/agent?platform=linux-x64&top=1"))
      .body as {
      value: Array<{ downloadUrl: string; hashValue: string }>;
    };
    const download = await fetch(viaQuery.value[0].downloadUrl);
    const bytes = Buffer.from(await download.arrayBuffer());
    assert.equal(bytes.toString(), "not really a tarball");
    assert.equal(viaQuery.value[0].hashValue, createHash("sha256").update(bytes).digest("hex"));
    assert.deepEqual(await taskAgent.getPackages("agent", "win-x64", 1), []);
  });
});

describe("Azure DevOps stand-in as Azure DevOps Server 2022 (REST API 7.0)", () => {
  let devops: DevOpsStandin;

  before(async () => {
    devops = await startDevOps({
      maxApiVersion: "7.0",
      pools: [{ name: poolName, id: 7 }],
      tokens: [{ token: manageToken, poolRights: { [poolName]: "manage" } }],
    });
  });
  after(() => devops.close());

  it("answers 400 VssVersionOutOfRangeException to 7.1, in the query or in the Accept header", async () => {
    const headers = { authorization: `Bearer ${manageToken}` };
    const inQuery = await fetch(`${devops.url}_apis/distributedtask/pools?api-version=7.1`, { headers });
    assert.equal(inQuery.status, 400);
    const body = (await inQuery.json()) as { message: string; typeKey: string };
    assert.equal(body.typeKey, "VssVersionOutOfRangeException");
    assert.equal(
      body.message,
      "VS800071: The requested REST API version of 7.1 is out of range for this server. The latest REST API version this server supports is 7.0.",
    );
    const inAccept = await fetch(`${devops.url}_apis/distributedtask/pools`, {
      headers: { ...headers, accept: "application/json;api-version=7.2-preview.1" },
    });
    assert.equal(inAccept.status, 400);
    const supported = await fetch(`${devops.url}_apis/distributedtask/pools?api-version=7.0`, { headers });
    assert.equal(supported.status, 200);
  });

  it("advertises 7.0 in its locations, so node-api negotiates 7.0", async () => {
    const taskAgent = await new azdev.WebApi(
      devops.url,
      azdev.getBearerHandler(manageToken),
    ).getTaskAgentApi();
    assert.equal((await taskAgent.getAgentPools(poolName)).length, 1);
    assert.match(devops.requests.at(-1)?.headers.accept ?? "", /api-version=7\.0$/);
  });
});
