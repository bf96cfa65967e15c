import assert from "node:assert/strict";
import { ContainerInstanceManagementClient, type ContainerGroup } from "@azure/arm-containerinstance";
import { ClientSecretCredential } from "@azure/identity";
import { STANDIN_DEFAULTS, fault, startAll, tooManyRequests, type Standins } from "./index";

const { resourceGroup, location, tenantId, clientId, clientSecret, jobToken, poolName } = STANDIN_DEFAULTS;

function containerGroup(
  environment: Array<{ name: string; value?: string; secureValue?: string }> = [],
): ContainerGroup {
  return {
    location,
    osType: "Linux",
    restartPolicy: "Never",
    containers: [
      {
        name: "agent",
        image: "example.azurecr.io/agent:1",
        resources: { requests: { cpu: 1, memoryInGB: 2 } },
        environmentVariables: environment,
      },
    ],
  };
}

function agentEnvironment(agentName: string): Array<{ name: string; value?: string; secureValue?: string }> {
  return [
    { name: "AZP_URL", value: "https://dev.azure.com/myorg" },
    { name: "AZP_POOL", value: poolName },
    { name: "AZP_AGENT_NAME", value: agentName },
    { name: "EPHEMERAL_AGENT_RUN", value: agentName },
    { name: "AZP_TOKEN", secureValue: jobToken },
  ];
}

async function until(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("ARM stand-in", () => {
  let standins: Standins;
  let client: ContainerInstanceManagementClient;
  let accessToken: string;

  beforeEach(async () => {
    standins = await startAll({ arm: { provisioningDelayMs: 50 }, simulateAgents: { delayMs: 10 } });
    const credential = new ClientSecretCredential(tenantId, clientId, clientSecret, {
      authorityHost: standins.entra.url,
      disableInstanceDiscovery: true,
    });
    client = new ContainerInstanceManagementClient(credential, standins.arm.subscriptionId, {
      endpoint: standins.arm.url,
    });
    accessToken = (await credential.getToken(`${standins.arm.url}/.default`)).token;
  });

  afterEach(async () => {
    await standins.close();
  });

  async function armGet(path: string, token = accessToken): Promise<{ status: number; body: unknown }> {
    const response = await fetch(`${standins.arm.url}${path}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return { status: response.status, body: await response.json() };
  }

  it("creates, polls, gets, lists, reads logs of and deletes a container group with the real client", async () => {
    const created = await client.containerGroups.beginCreateOrUpdateAndWait(
      resourceGroup,
      "cg-one",
      containerGroup([
        { name: "SECRET", secureValue: "hunter2" },
        { name: "PLAIN", value: "visible" },
      ]),
      { updateIntervalInMs: 10 },
    );
    assert.equal(created.provisioningState, "Succeeded");
    const put = standins.arm.requests.find((request) => request.method === "PUT");
    assert.equal(put?.status, 201);
    assert.equal(put?.query["api-version"], "2023-05-01");
    assert.ok(standins.arm.requests.some((request) => request.path.includes("/operations/")));

    const fetched = await client.containerGroups.get(resourceGroup, "cg-one");
    assert.equal(fetched.containers[0].instanceView?.currentState?.state, "Running");
    assert.equal(fetched.instanceView?.state, "Running");
    assert.deepEqual(fetched.containers[0].environmentVariables, [
      { name: "SECRET" },
      { name: "PLAIN", value: "visible" },
    ]);

    const listed: ContainerGroup[] = [];
    for await (const group of client.containerGroups.listByResourceGroup(resourceGroup)) listed.push(group);
    assert.deepEqual(
      listed.map((group) => group.name),
      ["cg-one"],
    );
    assert.equal(listed[0].instanceView, undefined);
    assert.equal(listed[0].containers[0].instanceView, undefined);

    standins.arm.setLogs("cg-one", "line 1\nline 2\nline 3\n");
    assert.equal(
      (await client.containers.listLogs(resourceGroup, "cg-one", "agent", { tail: 2 })).content,
      "line 2\nline 3\n",
    );

    await client.containerGroups.beginDeleteAndWait(resourceGroup, "cg-one", { updateIntervalInMs: 10 });
    await assert.rejects(client.containerGroups.get(resourceGroup, "cg-one"), {
      statusCode: 404,
      code: "ResourceNotFound",
    });
    const secondDelete = await fetch(
      `${standins.arm.url}/subscriptions/${standins.arm.subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.ContainerInstance/containerGroups/cg-one?api-version=2023-05-01`,
      { method: "DELETE", headers: { authorization: `Bearer ${accessToken}` } },
    );
    assert.equal(secondDelete.status, 204);
  });

  it("records the scheme of the token behind every ARM request", async () => {
    await client.containerGroups.beginCreateOrUpdateAndWait(resourceGroup, "cg-scheme", containerGroup(), {
      updateIntervalInMs: 10,
    });
    for (const request of standins.arm.requests) {
      assert.deepEqual(request.caller, {
        scheme: "clientSecret",
        clientId,
        tenantId,
        scope: `${standins.arm.url}/.default`,
      });
      assert.equal(request.headers.authorization, undefined);
    }
  });

  it("ends the creation LRO as Failed for a failing behaviour", async () => {
    standins.arm.behaviours.push({
      match: /^cg-fail/,
      provisioning: "fail",
      error: { code: "InaccessibleImage", message: "image not found" },
    });
    await assert.rejects(
      client.containerGroups.beginCreateOrUpdateAndWait(resourceGroup, "cg-fail-1", containerGroup(), {
        updateIntervalInMs: 10,
      }),
      (error: Error & { code?: string }) =>
        error.code === "InaccessibleImage" || /image not found/.test(error.message),
    );
    assert.equal((await client.containerGroups.get(resourceGroup, "cg-fail-1")).provisioningState, "Failed");
  });

  it("keeps a stuck group Creating and its operation Pending", async () => {
    standins.arm.behaviours.push({ match: "cg-stuck", provisioning: "stuck" });
    const poller = await client.containerGroups.beginCreateOrUpdate(
      resourceGroup,
      "cg-stuck",
      containerGroup(),
      {
        updateIntervalInMs: 10,
      },
    );
    await new Promise((resolve) => setTimeout(resolve, 120));
    await poller.poll();
    assert.equal(poller.isDone(), false);
    assert.equal((await client.containerGroups.get(resourceGroup, "cg-stuck")).provisioningState, "Creating");
  });

  it("lets a test terminate a container with an exit code and logs", async () => {
    standins.arm.behaviours.push({
      match: (group) => group.name === "cg-crash",
      container: { state: "Terminated", exitCode: 3 },
      logs: "fatal: cannot reach the organization\n",
    });
    await client.containerGroups.beginCreateOrUpdateAndWait(resourceGroup, "cg-crash", containerGroup(), {
      updateIntervalInMs: 10,
    });
    const group = await client.containerGroups.get(resourceGroup, "cg-crash");
    assert.equal(group.containers[0].instanceView?.currentState?.state, "Terminated");
    assert.equal(group.containers[0].instanceView?.currentState?.exitCode, 3);
    assert.equal(group.containers[0].instanceView?.currentState?.detailStatus, "Error");
    assert.equal(group.containers[0].instanceView?.previousState?.state, "Running");
    assert.equal(group.instanceView?.state, "Failed");
    assert.match(
      (await client.containers.listLogs(resourceGroup, "cg-crash", "agent")).content ?? "",
      /fatal/,
    );
  });

  it("answers resource group and subnet lookups", async () => {
    const subnetId = `/subscriptions/${standins.arm.subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/agents`;
    standins.arm.subnets.push({ id: subnetId }, { id: `${subnetId}-plain`, delegated: false });
    const group = await armGet(
      `/subscriptions/${standins.arm.subscriptionId}/resourcegroups/${resourceGroup}?api-version=2021-04-01`,
    );
    assert.equal(group.status, 200);
    assert.equal((group.body as { location: string }).location, location);
    const missing = await armGet(
      `/subscriptions/${standins.arm.subscriptionId}/resourcegroups/nope?api-version=2021-04-01`,
    );
    assert.deepEqual(
      [missing.status, (missing.body as { error: { code: string } }).error.code],
      [404, "ResourceGroupNotFound"],
    );

    const subnet = (await armGet(`${subnetId}?api-version=2023-09-01`)).body as {
      properties: { delegations: Array<{ properties: { serviceName: string } }> };
    };
    assert.equal(
      subnet.properties.delegations[0].properties.serviceName,
      "Microsoft.ContainerInstance/containerGroups",
    );
    const plain = (await armGet(`${subnetId}-plain?api-version=2023-09-01`)).body as {
      properties: { delegations: unknown[] };
    };
    assert.deepEqual(plain.properties.delegations, []);
    assert.equal((await armGet(`${subnetId}-unknown?api-version=2023-09-01`)).status, 404);

    const inSubnet = { ...containerGroup(), subnetIds: [{ id: `${subnetId}-plain` }] };
    await assert.rejects(
      client.containerGroups.beginCreateOrUpdateAndWait(resourceGroup, "cg-subnet", inSubnet),
      {
        statusCode: 400,
        code: "SubnetNotDelegated",
      },
    );
  });

  it("rejects missing or foreign tokens and unknown subscriptions", async () => {
    const path = `/subscriptions/${standins.arm.subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.ContainerInstance/containerGroups?api-version=2023-05-01`;
    const invalid = await armGet(path, "not-a-token");
    assert.deepEqual(
      [invalid.status, (invalid.body as { error: { code: string } }).error.code],
      [401, "InvalidAuthenticationToken"],
    );
    standins.entra.expireAllTokens();
    assert.equal((await armGet(path)).status, 401);

    const other = new ContainerInstanceManagementClient(
      new ClientSecretCredential(tenantId, clientId, clientSecret, {
        authorityHost: standins.entra.url,
        disableInstanceDiscovery: true,
      }),
      "99999999-9999-4999-8999-999999999999",
      { endpoint: standins.arm.url },
    );
    await assert.rejects(other.containerGroups.get(resourceGroup, "any"), {
      statusCode: 404,
      code: "SubscriptionNotFound",
    });
  });

  it("lets an interceptor inject a 429 that the client retries", async () => {
    standins.arm.intercept(
      fault({ match: (request) => request.method === "GET", reply: tooManyRequests(0) }),
    );
    await assert.rejects(client.containerGroups.get(resourceGroup, "absent"), { statusCode: 404 });
    assert.deepEqual(
      standins.arm.requests.filter((request) => request.method === "GET").map((request) => request.status),
      [429, 404],
    );
  });

  describe("agent simulation", () => {
    it("registers the container's agent, runs one job, unregisters it and ends the container", async () => {
      await client.containerGroups.beginCreateOrUpdateAndWait(
        resourceGroup,
        "cg-agent",
        containerGroup(agentEnvironment("agent-1")),
        {
          updateIntervalInMs: 10,
        },
      );
      await until(() => standins.devops.agent(poolName, "agent-1")?.status === "online");
      const agent = standins.devops.agent(poolName, "agent-1");
      assert.equal(agent?.systemCapabilities.EPHEMERAL_AGENT_RUN, "agent-1");
      assert.equal(agent?.systemCapabilities.AZP_TOKEN, undefined);

      const job = standins.devops.queueJob({
        poolName,
        demands: { EPHEMERAL_AGENT_RUN: "agent-1" },
        jobName: "Build",
      });
      assert.equal(job.reservedAgent?.name, "agent-1");
      await until(() => job.receiveTime !== undefined);
      standins.devops.finishJob(job.requestId, "succeeded");

      assert.equal(standins.devops.agent(poolName, "agent-1"), undefined);
      const group = await client.containerGroups.get(resourceGroup, "cg-agent");
      assert.equal(group.containers[0].instanceView?.currentState?.state, "Terminated");
      assert.equal(group.containers[0].instanceView?.currentState?.exitCode, 0);
      const logs = (await client.containers.listLogs(resourceGroup, "cg-agent", "agent")).content ?? "";
      assert.match(logs, /Running job: Build/);
      assert.match(logs, /Job Build completed with result: Succeeded/);
    });

    it("leaves the registration of a deleted container's agent behind, offline", async () => {
      await client.containerGroups.beginCreateOrUpdateAndWait(
        resourceGroup,
        "cg-killed",
        containerGroup(agentEnvironment("agent-2")),
        {
          updateIntervalInMs: 10,
        },
      );
      await until(() => standins.devops.agent(poolName, "agent-2")?.status === "online");
      await client.containerGroups.beginDeleteAndWait(resourceGroup, "cg-killed", { updateIntervalInMs: 10 });
      assert.equal(standins.devops.agent(poolName, "agent-2")?.status, "offline");
    });

    it("ends the container with exit code 1 when the token may not register agents", async () => {
      const environment = agentEnvironment("agent-3").map((variable) =>
        variable.name === "AZP_TOKEN"
          ? { name: "AZP_TOKEN", secureValue: STANDIN_DEFAULTS.readerToken }
          : variable,
      );
      await client.containerGroups.beginCreateOrUpdateAndWait(
        resourceGroup,
        "cg-denied",
        containerGroup(environment),
        {
          updateIntervalInMs: 10,
        },
      );
      await until(
        () => standins.arm.containerGroup("cg-denied")?.containers[0].currentState?.state === "Terminated",
      );
      assert.equal(standins.arm.containerGroup("cg-denied")?.containers[0].currentState?.exitCode, 1);
      assert.match(
        standins.arm.containerGroup("cg-denied")?.containers[0].logs ?? "",
        /needs Manage permissions/,
      );
      assert.equal(standins.devops.agent(poolName, "agent-3"), undefined);
    });
  });
});
