import assert from "node:assert/strict";
import { ContainerInstanceManagementClient, type ContainerGroup } from "@azure/arm-containerinstance";
import { ClientSecretCredential } from "@azure/identity";
import {
  STANDIN_DEFAULTS,
  anotherOperationInProgress,
  authorizationFailed,
  fault,
  inaccessibleImage,
  linkedAuthorizationFailed,
  requestDisallowedByPolicy,
  serviceAssociationLinkNotReady,
  startAll,
  tooManyRequests,
  type StartAllOptions,
  type Standins,
} from "./index";

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

  describe("ACI faults, quotas and networks", () => {
    const subnetId = (vnet = "vnet", subnet = "agents") =>
      `/subscriptions/${standins.arm.subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Network/virtualNetworks/${vnet}/subnets/${subnet}`;
    const inSubnet = (id = subnetId()): ContainerGroup => ({ ...containerGroup(), subnetIds: [{ id }] });
    type ArmFailure = { statusCode?: number; code?: string; message: string };

    async function createFails(name: string, group: ContainerGroup): Promise<ArmFailure> {
      try {
        await client.containerGroups.beginCreateOrUpdate(resourceGroup, name, group);
      } catch (error) {
        return error as ArmFailure;
      }
      throw new Error(`creating ${name} succeeded`);
    }

    async function restart(options: StartAllOptions["arm"]): Promise<void> {
      await standins.close();
      standins = await startAll({ arm: { provisioningDelayMs: 50, ...options }, simulateAgents: false });
      const credential = new ClientSecretCredential(tenantId, clientId, clientSecret, {
        authorityHost: standins.entra.url,
        disableInstanceDiscovery: true,
      });
      client = new ContainerInstanceManagementClient(credential, standins.arm.subscriptionId, {
        endpoint: standins.arm.url,
      });
      accessToken = (await credential.getToken(`${standins.arm.url}/.default`)).token;
    }

    it("refuses the first PUTs into a subnet with 409 ServiceAssociationLinkNotReady, then accepts", async () => {
      standins.arm.subnets.push({ id: subnetId() });
      const notReady = serviceAssociationLinkNotReady({ times: 2, subnetId: subnetId() });
      standins.arm.intercept(notReady);
      await client.containerGroups.beginCreateOrUpdate(resourceGroup, "cg-public", containerGroup());
      for (const attempt of [1, 2]) {
        const failure = await createFails(`cg-sal-${attempt}`, inSubnet());
        assert.equal(failure.statusCode, 409);
        assert.equal(failure.code, "ServiceAssociationLinkNotReady");
        assert.match(failure.message, new RegExp(`container group 'cg-sal-${attempt}'`));
      }
      await client.containerGroups.beginCreateOrUpdateAndWait(resourceGroup, "cg-sal-3", inSubnet(), {
        updateIntervalInMs: 10,
      });
      assert.equal(notReady.answered, 2);
      assert.deepEqual(
        standins.arm
          .containerGroups()
          .map((group) => group.name)
          .sort(),
        ["cg-public", "cg-sal-3"],
      );
    });

    it("refuses a DELETE with 409 AnotherOperationInProgress once, then deletes synchronously", async () => {
      await client.containerGroups.beginCreateOrUpdateAndWait(resourceGroup, "cg-busy", containerGroup(), {
        updateIntervalInMs: 10,
      });
      const busy = anotherOperationInProgress({ on: "delete", group: "cg-busy" });
      standins.arm.intercept(busy);
      await assert.rejects(client.containerGroups.beginDeleteAndWait(resourceGroup, "cg-busy"), {
        statusCode: 409,
        code: "AnotherOperationInProgress",
      });
      assert.ok(standins.arm.containerGroup("cg-busy"), "the refused delete left the group");
      const statuses: number[] = [];
      await client.containerGroups.beginDeleteAndWait(resourceGroup, "cg-busy", {
        onResponse: (response) => statuses.push(response.status),
      });
      assert.deepEqual(statuses, [200], "one synchronous answer, nothing to poll");
      assert.equal(standins.arm.containerGroup("cg-busy"), undefined);
      assert.equal(busy.answered, 1);
    });

    it("refuses a PUT with 400 InaccessibleImage and creates nothing", async () => {
      standins.arm.intercept(inaccessibleImage({ image: /azurecr\.io\/agent/ }));
      const failure = await createFails("cg-image", containerGroup());
      assert.equal(failure.statusCode, 400);
      assert.equal(failure.code, "InaccessibleImage");
      assert.match(
        failure.message,
        /The image 'example\.azurecr\.io\/agent:1' in container group 'cg-image' is not accessible/,
      );
      assert.deepEqual(standins.arm.containerGroups(), []);
    });

    it("fails a group whose image cannot be pulled: error on the container's events, none at group level", async () => {
      standins.arm.behaviours.push({
        match: "cg-pull",
        provisioning: "imagePullFailed",
        pullError: "unauthorized: nope",
      });
      await assert.rejects(
        client.containerGroups.beginCreateOrUpdateAndWait(resourceGroup, "cg-pull", containerGroup(), {
          updateIntervalInMs: 10,
        }),
        /Failed to pull image "example\.azurecr\.io\/agent:1".*unauthorized: nope/,
      );
      const group = await client.containerGroups.get(resourceGroup, "cg-pull");
      assert.equal(group.provisioningState, "Failed");
      assert.deepEqual(group.instanceView?.events, []);
      const container = group.containers[0].instanceView;
      assert.equal(container?.currentState?.state, "Waiting");
      const failed = container?.events?.find((event) => event.name === "Failed");
      assert.equal(failed?.type, "Warning");
      assert.match(failed?.message ?? "", /unauthorized: nope/);
    });

    it("keeps a group Pending with its container Waiting in ImagePullBackOff", async () => {
      standins.arm.behaviours.push({ match: "cg-backoff", provisioning: "imagePullBackOff" });
      const poller = await client.containerGroups.beginCreateOrUpdate(
        resourceGroup,
        "cg-backoff",
        containerGroup(),
        {
          updateIntervalInMs: 10,
        },
      );
      // Its 50 ms provisioning delay ends on its own, however slow the machine: wait for it, not for a time.
      let group = await client.containerGroups.get(resourceGroup, "cg-backoff");
      while (group.containers[0].instanceView?.currentState?.state !== "Waiting") {
        await new Promise((resolve) => setTimeout(resolve, 10));
        group = await client.containerGroups.get(resourceGroup, "cg-backoff");
      }
      await poller.poll();
      assert.equal(poller.isDone(), false, "the operation stays Pending");
      assert.equal(group.provisioningState, "Pending");
      assert.equal(group.instanceView?.state, "Pending");
      assert.deepEqual(group.instanceView?.events, []);
      const container = group.containers[0].instanceView;
      assert.deepEqual(
        [container?.currentState?.state, container?.currentState?.detailStatus],
        ["Waiting", "ImagePullBackOff"],
      );
      assert.equal(container?.previousState?.detailStatus, "ErrImagePull");
      assert.deepEqual(
        container?.events?.map((event) => event.name),
        ["Pulling", "Failed", "BackOff"],
      );
    });

    it("ends a canceled group's operation Canceled", async () => {
      standins.arm.behaviours.push({ match: "cg-canceled", provisioning: "canceled" });
      await assert.rejects(
        client.containerGroups.beginCreateOrUpdateAndWait(resourceGroup, "cg-canceled", containerGroup(), {
          updateIntervalInMs: 10,
        }),
      );
      assert.equal(
        (await client.containerGroups.get(resourceGroup, "cg-canceled")).provisioningState,
        "Canceled",
      );
    });

    it("answers 403 AuthorizationFailed naming the action and scope, on any targeted request", async () => {
      standins.arm.subnets.push({ id: subnetId() });
      standins.arm.intercept(authorizationFailed({ target: "readSubnet" }));
      const subnet = await armGet(`${subnetId()}?api-version=2023-09-01`);
      assert.equal(subnet.status, 403);
      const { code, message } = (subnet.body as { error: { code: string; message: string } }).error;
      assert.equal(code, "AuthorizationFailed");
      assert.ok(
        message.includes(
          `does not have authorization to perform action 'Microsoft.Network/virtualNetworks/subnets/read' over scope '${subnetId()}'`,
        ),
        message,
      );
      await client.containerGroups.beginCreateOrUpdate(resourceGroup, "cg-allowed", containerGroup());
    });

    it("answers 403 LinkedAuthorizationFailed for a subnet join or an identity assignment", async () => {
      standins.arm.subnets.push({ id: subnetId() });
      const identity = `/subscriptions/${standins.arm.subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pull`;
      standins.arm.intercept(linkedAuthorizationFailed({ linked: "subnetJoin" }));
      standins.arm.intercept(linkedAuthorizationFailed({ linked: "identityAssign" }));
      await client.containerGroups.beginCreateOrUpdate(resourceGroup, "cg-unlinked", containerGroup());
      const join = await createFails("cg-join", inSubnet());
      assert.equal(join.statusCode, 403);
      assert.equal(join.code, "LinkedAuthorizationFailed");
      assert.ok(
        join.message.includes(
          `does not have permission to perform action(s) 'Microsoft.Network/virtualNetworks/subnets/join/action' on the linked scope(s) '${subnetId()}'`,
        ),
        join.message,
      );
      const assign = await createFails("cg-assign", {
        ...containerGroup(),
        identity: { type: "UserAssigned", userAssignedIdentities: { [identity]: {} } },
      });
      assert.equal(assign.code, "LinkedAuthorizationFailed");
      assert.ok(
        assign.message.includes(
          `'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action' on the linked scope(s) '${identity}'`,
        ),
        assign.message,
      );
    });

    it("answers 403 RequestDisallowedByPolicy naming the policy", async () => {
      standins.arm.intercept(
        requestDisallowedByPolicy({
          policyAssignmentName: "deny-public-containers",
          policyDefinitionDisplayName: "Container groups must join a virtual network",
        }),
      );
      const denied = await createFails("cg-policy", containerGroup());
      assert.equal(denied.statusCode, 403);
      assert.equal(denied.code, "RequestDisallowedByPolicy");
      assert.match(
        denied.message,
        /^Resource 'cg-policy' was disallowed by policy\. Policy identifiers: '\[.*"name":"deny-public-containers"/,
      );
      assert.deepEqual(standins.arm.containerGroups(), []);
    });

    it("refuses a subnet in another subscription and a group outside its network's region", async () => {
      const foreign = subnetId().replace(standins.arm.subscriptionId, "99999999-9999-4999-8999-999999999999");
      const other = await createFails("cg-foreign", inSubnet(foreign));
      assert.deepEqual(
        [other.statusCode, other.code],
        [400, "SubnetAndContainerGroupMustBeInSameSubscription"],
      );

      const hub = subnetId("hub", "aci");
      standins.arm.subnets.push({
        id: hub,
        location: "northeurope",
        natGateway: `/subscriptions/${standins.arm.subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Network/natGateways/egress`,
      });
      const network = await armGet(`${hub.replace(/\/subnets\/aci$/, "")}?api-version=2023-09-01`);
      assert.equal(network.status, 200);
      const body = network.body as { location: string; properties: { subnets: { id: string }[] } };
      assert.equal(body.location, "northeurope");
      assert.deepEqual(
        body.properties.subnets.map((subnet) => subnet.id),
        [hub],
      );
      const subnet = (await armGet(`${hub}?api-version=2023-09-01`)).body as {
        properties: { natGateway?: { id: string }; routeTable?: { id: string } };
      };
      assert.match(subnet.properties.natGateway?.id ?? "", /natGateways\/egress$/);
      assert.equal(subnet.properties.routeTable, undefined);

      const elsewhere = await createFails("cg-region", inSubnet(hub));
      assert.equal(elsewhere.statusCode, 400);
      assert.match(elsewhere.message, /'westeurope'.*'northeurope'/);
      await client.containerGroups.beginCreateOrUpdate(resourceGroup, "cg-hub", {
        ...inSubnet(hub),
        location: "northeurope",
      });
    });

    it("answers ACI's create quota with 429, Retry-After and the remaining-requests headers", async () => {
      await restart({ aciQuotas: { createsPer5Minutes: 2 } });
      const put = (name: string) =>
        fetch(
          `${standins.arm.url}/subscriptions/${standins.arm.subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.ContainerInstance/containerGroups/${name}?api-version=2023-05-01`,
          {
            method: "PUT",
            headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json" },
            body: JSON.stringify({
              location,
              properties: {
                osType: "Linux",
                containers: [
                  {
                    name: "agent",
                    properties: {
                      image: "example.azurecr.io/agent:1",
                      resources: { requests: { cpu: 1, memoryInGB: 2 } },
                    },
                  },
                ],
              },
            }),
          },
        );
      const remaining = (response: Response) => [
        response.headers.get("x-ms-ratelimit-remaining-subscription-resource-requests-pt5m"),
        response.headers.get("x-ms-ratelimit-remaining-subscription-resource-requests-pt1h"),
      ];
      const first = await put("cg-q1");
      assert.equal(first.status, 201);
      assert.deepEqual(remaining(first), ["1", "299"]);
      assert.deepEqual(remaining(await put("cg-q2")), ["0", "298"]);
      const refused = await put("cg-q3");
      assert.equal(refused.status, 429);
      assert.deepEqual(remaining(refused), ["0", "298"]);
      const retryAfter = Number(refused.headers.get("retry-after"));
      assert.ok(retryAfter >= 1 && retryAfter <= 300, `Retry-After ${retryAfter}`);
      assert.equal(standins.arm.quotaRefusals.creates, 1);
      assert.equal(standins.arm.containerGroup("cg-q3"), undefined);
    });

    it("reports region usages and refuses a group beyond the cores quota", async () => {
      await restart({
        regionUsage: {
          [location]: { containerGroups: { limit: 3, used: 1 }, standardCores: { limit: 4, used: 2 } },
        },
      });
      await client.containerGroups.beginCreateOrUpdate(resourceGroup, "cg-usage", containerGroup());
      const usages = [];
      for await (const usage of client.location.listUsage(location)) usages.push(usage);
      assert.deepEqual(
        usages.map((usage) => [usage.name?.value, usage.currentValue, usage.limit, usage.unit]),
        [
          ["ContainerGroups", 2, 3, "Count"],
          ["StandardCores", 3, 4, "Count"],
        ],
      );
      const big = containerGroup();
      big.containers[0].resources = { requests: { cpu: 2, memoryInGB: 2 } };
      const refused = await createFails("cg-big", big);
      assert.equal(refused.code, "ContainerGroupQuotaReached");
      assert.equal(
        refused.message,
        `Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota 'StandardCores' exceeded in region '${location}'. Limit: '4', Usage: '3' Requested: '2'.`,
      );
    });
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
