import assert from "node:assert/strict";
import * as http from "node:http";
import * as net from "node:net";
import { JobRejectedError, STANDIN_DEFAULTS, type Reply } from "../../standins";
import {
  ACI_INPUTS,
  AGENT_IMAGE,
  assertNoSecrets,
  ensureBundles,
  knownSecrets,
  runTask,
  startStandins,
  taskEnvironment,
  type Standins,
  type TaskEnvironment,
} from "../../standins/taskProcess";

const { poolName, clientId } = STANDIN_DEFAULTS;
/** Starts the agents and is refused once the start job ended (see "expired job tokens"). */
const START_JOB_TOKEN = "start-job-token";
const EXPIRED_TOKEN = "expired-token";
const ACR_CONNECTION = "acr-connection";
const ACR_KEY = "acr-service-principal-key-0123456789";
const LOGIN_SERVER = "myregistry.azurecr.io";

async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A Docker Registry connection of type Azure Container Registry, as the agent hands it to tasks. */
function acrConnection(scheme: string, parameters: Record<string, string>): Record<string, string> {
  return {
    [`ENDPOINT_URL_${ACR_CONNECTION}`]: `https://${LOGIN_SERVER}`,
    [`ENDPOINT_AUTH_${ACR_CONNECTION}`]: JSON.stringify({ scheme, parameters }),
    [`ENDPOINT_AUTH_SCHEME_${ACR_CONNECTION}`]: scheme,
    [`ENDPOINT_DATA_${ACR_CONNECTION}_REGISTRYTYPE`]: "ACR",
  };
}

/** A forward proxy on loopback that tunnels CONNECT and forwards plain requests, counting both by target port. */
async function startCountingProxy(): Promise<{
  url: string;
  byPort: Map<number, number>;
  close(): Promise<void>;
}> {
  const byPort = new Map<number, number>();
  const count = (port: number) => byPort.set(port, (byPort.get(port) ?? 0) + 1);
  const sockets = new Set<net.Socket>();
  const server = http.createServer((request, response) => {
    const target = new URL(request.url ?? "");
    count(Number(target.port));
    const upstream = http.request(target, { method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    upstream.on("error", () => response.destroy());
    request.pipe(upstream);
  });
  server.on("connect", (request: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const [host, port] = (request.url ?? "").split(":");
    count(Number(port));
    const upstream = net.connect(Number(port), host, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => undefined);
      socket.on("close", () => sockets.delete(socket));
    }
    upstream.on("error", () => client.destroy());
  });
  server.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    byPort,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe("Azure DevOps as it behaves: the bundled tasks against the stand-in as Azure DevOps Server 2022", function () {
  this.timeout(120_000);
  let standins: Standins;

  before(async () => {
    await ensureBundles();
    standins = await startStandins({ devops: { protocol: "https", maxApiVersion: "7.0" } });
    standins.devops.tokens.push(
      {
        token: START_JOB_TOKEN,
        identity: { displayName: "Start Job" },
        poolRights: { [poolName]: "manage" },
      },
      { token: EXPIRED_TOKEN, identity: { displayName: "Expired" }, expired: true },
    );
  });
  after(() => standins.close());

  function environment(runKey: string, overrides: Partial<TaskEnvironment> = {}): NodeJS.ProcessEnv {
    return taskEnvironment(standins, {
      ...overrides,
      inputs: { ...ACI_INPUTS, image: AGENT_IMAGE, runKey, ...overrides.inputs },
    });
  }

  const start = (runKey: string, overrides: Partial<TaskEnvironment> = {}) =>
    runTask("StartEphemeralAgentV1", environment(runKey, overrides));
  const teardown = (runKey: string, overrides: Partial<TaskEnvironment> = {}) =>
    runTask("TeardownEphemeralAgentV1", environment(runKey, overrides));

  function runGroups(runKey: string): string[] {
    return standins.arm
      .containerGroups()
      .map((group) => group.name)
      .filter((name) => name.includes(`-${runKey}-`));
  }

  function runAgents(runKey: string): string[] {
    return standins.devops
      .agents(poolName)
      .map((agent) => agent.name)
      .filter((name) => name.includes(`-${runKey}-`));
  }

  it("starts, runs a job and tears down with REST API 7.0 only", async () => {
    const before = standins.devops.requests.length;
    const started = await start("2022");
    assert.equal(started.result?.status, "Succeeded", started.stdout);
    const job = standins.devops.queueJob({
      poolName,
      demands: { EPHEMERAL_AGENT_RUN: "2022" },
      jobName: "Work",
    });
    await until(() => job.receiveTime !== undefined, "the agent received the job");
    standins.devops.finishJob(job.requestId);
    const ended = await teardown("2022");
    assert.equal(ended.result?.status, "Succeeded", ended.stdout);
    assert.deepEqual(runGroups("2022"), []);
    assert.deepEqual(runAgents("2022"), []);

    const requests = standins.devops.requests.slice(before);
    assert.deepEqual(
      requests.filter((request) => request.status === 400).map((request) => request.path),
      [],
      "no request asked for a version the server does not have",
    );
    assert.ok(
      requests.some((request) => request.query.actionFilter !== undefined),
      "the pool permission check went through the manage-filtered pool list",
    );
  });

  it("removes the registrations with its own token, after a job token expired", async () => {
    // Only with the registration token does the container unregister itself (with the job's token).
    const started = await start("expiry", { jobToken: START_JOB_TOKEN, inputs: { registration: "token" } });
    assert.equal(started.result?.status, "Succeeded", started.stdout);
    const [name] = started.outputs.agentNames.split(",");
    const job = standins.devops.queueJob({ poolName, demands: { EPHEMERAL_AGENT_RUN: "expiry" } });
    await until(() => job.receiveTime !== undefined, "the agent received the job");
    standins.devops.expireToken(START_JOB_TOKEN);
    standins.devops.finishJob(job.requestId);
    await until(
      () => standins.arm.containerGroup(name)?.containers[0].currentState?.state === "Terminated",
      "the container ended",
    );
    assert.match(standins.arm.containerGroup(name)?.containers[0].logs ?? "", /Failed to remove the agent/);
    assert.equal(standins.devops.agent(poolName, name)?.status, "offline", "the registration stayed");

    const before = standins.devops.requests.length;
    const ended = await teardown("expiry");
    assert.equal(ended.result?.status, "Succeeded", ended.stdout);
    assert.deepEqual(runAgents("expiry"), []);
    const deletes = standins.devops.requests.slice(before).filter((request) => request.method === "DELETE");
    assert.deepEqual(
      deletes.map((request) => [request.status, /api-version=7\.0$/.test(request.headers.accept ?? "")]),
      [[204, true]],
      "the teardown removed the registration with the negotiated version 7.0",
    );
    assert.deepEqual(runGroups("expiry"), []);
  });

  it("rejects at queue time a job whose demand no registered agent satisfies", () => {
    assert.throws(
      () => standins.devops.queueJob({ poolName, demands: { EPHEMERAL_AGENT_RUN: "never-started" } }),
      JobRejectedError,
    );
  });

  it("fails up front, naming the Administrator role, when the token may not manage the pool", async () => {
    const run = await start("reader", { jobToken: STANDIN_DEFAULTS.readerToken });
    assert.equal(run.result?.status, "Failed", run.stdout);
    assert.match(
      run.result?.message ?? "",
      /'Pool Reader' may not manage agent pool 'Default'.*Administrator role/,
    );
    assert.deepEqual(runGroups("reader"), []);
  });

  it("only warns when the permission check itself fails, and goes on", async () => {
    const failing: Reply = { status: 500, body: { message: "VS403000: something went wrong" } };
    const remove = standins.devops.intercept((request) =>
      request.query.actionFilter !== undefined ? failing : undefined,
    );
    try {
      const run = await start("unverified");
      assert.equal(run.result?.status, "Succeeded", run.stdout);
      assert.ok(
        run.warnings.some((warning) =>
          /Could not verify that the token may manage agent pool 'Default'/.test(warning),
        ),
        run.warnings.join("\n"),
      );
    } finally {
      remove();
    }
    assert.equal((await teardown("unverified")).result?.status, "Succeeded");
  });

  it("gives a clear authentication error in both tasks for a token Azure DevOps no longer accepts", async () => {
    const before = standins.devops.requests.length;
    const started = await start("badtoken", { jobToken: EXPIRED_TOKEN });
    assert.equal(started.result?.status, "Failed", started.stdout);
    assert.match(started.result?.message ?? "", /rejected the token/);
    assert.deepEqual(runGroups("badtoken"), []);
    const ended = await teardown("badtoken", { jobToken: EXPIRED_TOKEN });
    assert.equal(ended.result?.status, "Failed", ended.stdout);
    assert.match(ended.result?.message ?? "", /rejected the token/);
    const unsuppressed = standins.devops.requests
      .slice(before)
      .filter((request) => request.headers["x-tfs-fedauthredirect"]?.toLowerCase() !== "suppress");
    assert.deepEqual(
      unsuppressed.map((request) => `${request.method} ${request.path}`),
      [],
      "every request asks for a 401 instead of the sign-in page",
    );
  });

  it("treats a sign-in page answered despite the header as a refused token, never as 'not found'", async () => {
    const signIn: Reply = {
      status: 203,
      headers: { "content-type": "text/html; charset=utf-8" },
      body: "<html><body>Sign in to your account</body></html>",
    };
    const remove = standins.devops.intercept((request) =>
      request.method === "GET" && request.path.includes("/distributedtask/pools") ? signIn : undefined,
    );
    try {
      const started = await start("signin");
      assert.equal(started.result?.status, "Failed", started.stdout);
      assert.match(started.result?.message ?? "", /rejected the token.*HTTP 203, its sign-in page/);
      const ended = await teardown("signin");
      assert.equal(ended.result?.status, "Failed", ended.stdout);
      assert.match(ended.result?.message ?? "", /rejected the token.*HTTP 203, its sign-in page/);
      assert.doesNotMatch(started.stdout + ended.stdout, /was not found|nothing to remove/i);
    } finally {
      remove();
    }
    assert.deepEqual(runGroups("signin"), []);
  });

  it("gives an ACR connection's service principal to the container group as its registry credentials", async () => {
    const run = await start("acr", {
      inputs: { registryConnection: ACR_CONNECTION },
      extra: acrConnection("UsernamePassword", {
        loginServer: LOGIN_SERVER,
        serviceprincipalid: clientId,
        serviceprincipalkey: ACR_KEY,
        tenantId: STANDIN_DEFAULTS.tenantId,
      }),
    });
    assert.equal(run.result?.status, "Succeeded", run.stdout);
    const [name] = run.outputs.agentNames.split(",");
    const body = standins.arm.containerGroup(name)?.request as {
      properties: { imageRegistryCredentials: unknown };
    };
    assert.deepEqual(body.properties.imageRegistryCredentials, [
      { server: LOGIN_SERVER, username: clientId, password: ACR_KEY },
    ]);
    assertNoSecrets(run.stdout + run.stderr, [...knownSecrets(), ACR_KEY]);
    assert.equal((await teardown("acr")).result?.status, "Succeeded");
  });

  for (const scheme of ["ManagedServiceIdentity", "WorkloadIdentityFederation"]) {
    it(`fails before creating anything for an ACR connection with ${scheme}, pointing to registryIdentity`, async () => {
      const runKey = `acr-${scheme.toLowerCase().slice(0, 8)}`;
      const run = await start(runKey, {
        inputs: { registryConnection: ACR_CONNECTION },
        extra: acrConnection(scheme, { loginServer: LOGIN_SERVER, tenantId: STANDIN_DEFAULTS.tenantId }),
      });
      assert.equal(run.result?.status, "Failed", run.stdout);
      assert.match(run.result?.message ?? "", /registryConnection.*registryIdentity/);
      assert.deepEqual(runGroups(runKey), []);
      assert.deepEqual(runAgents(runKey), []);
    });
  }

  it("sends the Azure DevOps, Entra ID, Resource Manager and Retail Prices requests through the agent's proxy", async () => {
    const proxy = await startCountingProxy();
    try {
      const extra = {
        AGENT_PROXYURL: proxy.url,
        AGENT_PROXYBYPASSLIST: JSON.stringify(["example\\.invalid"]),
      };
      const started = await start("proxy", { extra });
      assert.equal(started.result?.status, "Succeeded", started.stdout);
      const ended = await teardown("proxy", { extra });
      assert.equal(ended.result?.status, "Succeeded", ended.stdout);
      const through = (url: string) => proxy.byPort.get(Number(new URL(url).port)) ?? 0;
      assert.ok(through(standins.devops.url) > 0, "Azure DevOps requests went through the proxy");
      assert.ok(through(standins.arm.url) > 0, "Resource Manager requests went through the proxy");
      assert.ok(through(standins.entra.url) > 0, "Entra ID requests went through the proxy");
      assert.ok(through(standins.retailPrices.url) > 0, "Retail Prices requests went through the proxy");
    } finally {
      await proxy.close();
    }
  });
});
