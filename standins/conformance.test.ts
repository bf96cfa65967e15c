import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ClientSecretCredential } from "@azure/identity";
import { STANDIN_DEFAULTS, startAll, type Standins } from "./index";
import { ReferenceSchemas, readReferenceJson, typeMismatches } from "./reference-schemas";

type Swagger = { definitions: Record<string, unknown> };
type Example = { responses: Record<string, { body?: Record<string, unknown> }> };

const {
  resourceGroup,
  location,
  tenantId,
  clientId,
  clientSecret,
  jobToken,
  poolName,
  project,
  serviceConnectionId,
} = STANDIN_DEFAULTS;

const aci = new ReferenceSchemas("aci", readReferenceJson<Swagger>("aci/containerInstance-2023-05-01.json"));
const taskAgent = new ReferenceSchemas(
  "taskAgent",
  readReferenceJson<Swagger>("azure-devops/taskAgent-7.1.json"),
  {
    // The service serialises demands as strings ("NAME -equals VALUE"), not as the {name, value} objects the spec shows.
    Demand: { type: "string" },
  },
);
const task = new ReferenceSchemas("task", readReferenceJson<Swagger>("azure-devops/task-7.1.json"));

function assertConforms(schemas: ReferenceSchemas, definition: string, value: unknown): void {
  assert.deepEqual(schemas.errors(definition, value), [], `${definition}: ${JSON.stringify(value)}`);
}

function exampleBody(file: string, status = "200"): Record<string, unknown> {
  return readReferenceJson<Example>(`aci/examples/${file}`).responses[status].body as Record<string, unknown>;
}

describe("stand-in responses against the reference specifications", () => {
  let standins: Standins;
  let armToken: string;
  let packageDirectory: string;

  before(async () => {
    packageDirectory = await mkdtemp(path.join(os.tmpdir(), "standin-conformance-"));
    const agentPackagePath = path.join(packageDirectory, "agent.tar.gz");
    await writeFile(agentPackagePath, "package");
    standins = await startAll({
      arm: { provisioningDelayMs: 20 },
      devops: { agentPackagePath },
      simulateAgents: false,
    });
    const credential = new ClientSecretCredential(tenantId, clientId, clientSecret, {
      authorityHost: standins.entra.url,
      disableInstanceDiscovery: true,
    });
    armToken = (await credential.getToken(`${standins.arm.url}/.default`)).token;
  });

  after(async () => {
    await standins.close();
    await rm(packageDirectory, { recursive: true, force: true });
  });

  it("really checks: a malformed body fails the reference schemas", () => {
    assert.notDeepEqual(aci.errors("ContainerGroup", { properties: { containers: [{ name: 1 }] } }), []);
    assert.notDeepEqual(taskAgent.errors("TaskAgent", { id: "seven", status: "busy" }), []);
  });

  async function call(
    base: string,
    method: string,
    route: string,
    token: string,
    body?: unknown,
  ): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
    const response = await fetch(`${base}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      body: (text ? JSON.parse(text) : {}) as Record<string, unknown>,
    };
  }

  describe("ARM (Microsoft.ContainerInstance 2023-05-01)", () => {
    const groupPath = (name: string): string =>
      `/subscriptions/${standins.arm.subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.ContainerInstance/containerGroups/${name}`;
    const arm = (method: string, route: string, body?: unknown): ReturnType<typeof call> =>
      call(
        standins.arm.url,
        method,
        `${route}${route.includes("?") ? "&" : "?"}api-version=2023-05-01`,
        armToken,
        body,
      );
    const definition = {
      location,
      tags: { purpose: "conformance" },
      properties: {
        osType: "Linux",
        restartPolicy: "Never",
        ipAddress: { type: "Private", ports: [{ port: 80, protocol: "TCP" }] },
        containers: [
          {
            name: "demo1",
            properties: {
              image: "nginx",
              command: [],
              ports: [{ port: 80 }],
              environmentVariables: [
                { name: "PLAIN", value: "1" },
                { name: "TOKEN", secureValue: "s3cret" },
              ],
              resources: { requests: { cpu: 1, memoryInGB: 1.5 } },
            },
          },
        ],
      },
    };

    it("answers PUT with a ContainerGroup, 201 and an Azure-AsyncOperation whose status conforms", async () => {
      const created = await arm("PUT", groupPath("conformance-put"), definition);
      assert.equal(created.status, 201);
      assertConforms(aci, "ContainerGroup", created.body);
      assert.equal((created.body.properties as { provisioningState: string }).provisioningState, "Pending");
      const operation = await call(
        standins.arm.url,
        "GET",
        created.headers.get("azure-asyncoperation")?.replace(standins.arm.url, "") ?? "",
        armToken,
      );
      assert.ok(["Pending", "Succeeded"].includes(operation.body.status as string));
    });

    it("answers GET with a ContainerGroup shaped like the Get_Succeeded example, secure values left out", async () => {
      await arm("PUT", groupPath("conformance-get"), definition);
      await new Promise((resolve) => setTimeout(resolve, 60));
      const fetched = await arm("GET", groupPath("conformance-get"));
      assertConforms(aci, "ContainerGroup", fetched.body);
      const example = exampleBody("ContainerGroupsGet_Succeeded.json");
      assert.deepEqual(typeMismatches(fetched.body, example), []);
      for (const key of Object.keys(example).filter((name) => name !== "zones"))
        assert.ok(key in fetched.body, key);
      const properties = fetched.body.properties as Record<string, unknown>;
      for (const key of ["containers", "ipAddress", "osType", "provisioningState"])
        assert.ok(key in properties, key);
      assert.ok(!JSON.stringify(fetched.body).includes("s3cret"));
      assert.ok(!JSON.stringify(fetched.body).includes("secureValue"));
    });

    it("answers list with a ContainerGroupListResult like the ListByResourceGroup example", async () => {
      const listed = await arm(
        "GET",
        `/subscriptions/${standins.arm.subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.ContainerInstance/containerGroups`,
      );
      assertConforms(aci, "ContainerGroupListResult", listed.body);
      assert.deepEqual(
        typeMismatches(listed.body, exampleBody("ContainerGroupsListByResourceGroup.json")),
        [],
      );
    });

    it("answers logs with Logs like the ContainerListLogs example", async () => {
      await arm("PUT", groupPath("conformance-logs"), definition);
      const logs = await arm("GET", `${groupPath("conformance-logs")}/containers/demo1/logs?tail=10`);
      assertConforms(aci, "Logs", logs.body);
      assert.deepEqual(typeMismatches(logs.body, exampleBody("ContainerListLogs.json")), []);
    });

    it("answers a failed group like the Get_Failed example and errors with CloudError", async () => {
      standins.arm.behaviours.push({ match: "conformance-failed", provisioning: "fail" });
      await arm("PUT", groupPath("conformance-failed"), definition);
      await new Promise((resolve) => setTimeout(resolve, 60));
      const failed = await arm("GET", groupPath("conformance-failed"));
      assertConforms(aci, "ContainerGroup", failed.body);
      assert.deepEqual(typeMismatches(failed.body, exampleBody("ContainerGroupsGet_Failed.json")), []);
      const missing = await arm("GET", groupPath("conformance-missing"));
      assert.equal(missing.status, 404);
      assertConforms(aci, "CloudError", missing.body);
    });
  });

  describe("Azure DevOps (distributedTask 7.1)", () => {
    const devops = (method: string, route: string, body?: unknown): ReturnType<typeof call> =>
      call(standins.devops.url.replace(/\/$/, ""), method, route, jobToken, body);

    it("answers pools with TaskAgentPool items", async () => {
      const pools = await devops("GET", `/_apis/distributedtask/pools?poolName=${poolName}`);
      assert.equal(pools.body.count, 1);
      for (const pool of pools.body.value as unknown[]) assertConforms(taskAgent, "TaskAgentPool", pool);
    });

    it("answers agents with TaskAgent items carrying TaskAgentJobRequest", async () => {
      standins.devops.simulateAgent.register({
        poolName,
        name: "conformance-agent",
        systemCapabilities: { RUN: "1" },
      });
      standins.devops.simulateAgent.online(poolName, "conformance-agent");
      const first = standins.devops.queueJob({ poolName, demands: { RUN: "1" } });
      standins.devops.finishJob(first.requestId, "succeeded");
      const second = standins.devops.queueJob({ poolName, demands: { RUN: "1" } });
      const agents = await devops(
        "GET",
        "/_apis/distributedtask/pools/1/agents?includeCapabilities=true&includeAssignedRequest=true&includeLastCompletedRequest=true",
      );
      const [agent] = agents.body.value as Array<Record<string, unknown>>;
      assertConforms(taskAgent, "TaskAgent", agent);
      assertConforms(taskAgent, "TaskAgentJobRequest", agent.assignedRequest);
      assertConforms(taskAgent, "TaskAgentJobRequest", agent.lastCompletedRequest);
      const request = await devops("GET", `/_apis/distributedtask/pools/1/jobrequests/${second.requestId}`);
      assertConforms(taskAgent, "TaskAgentJobRequest", request.body);
    });

    it("answers sessions, messages and packages with TaskAgentSession, TaskAgentMessage and PackageMetadata", async () => {
      const agent = standins.devops.simulateAgent.register({
        poolName,
        name: "conformance-session",
        systemCapabilities: { RUN: "2" },
      });
      const session = await devops("POST", "/_apis/distributedtask/pools/1/sessions", {
        agent: { id: agent.id },
        ownerName: "x",
      });
      assertConforms(taskAgent, "TaskAgentSession", session.body);
      standins.devops.queueJob({ poolName, demands: { RUN: "2" } });
      const message = await devops(
        "GET",
        `/_apis/distributedtask/pools/1/messages?sessionId=${session.body.sessionId as string}`,
      );
      assertConforms(taskAgent, "TaskAgentMessage", message.body);
      const packages = await devops("GET", "/_apis/distributedtask/packages/agent?platform=linux-x64&top=1");
      assert.equal(packages.body.count, 1);
      assertConforms(taskAgent, "PackageMetadata", (packages.body.value as unknown[])[0]);
    });

    it("answers the OIDC token request with TaskHubOidcToken", async () => {
      const uri = standins.devops.oidcRequestUri(project).replace(standins.devops.url.replace(/\/$/, ""), "");
      const token = await devops("POST", `${uri}?api-version=7.1&serviceConnectionId=${serviceConnectionId}`);
      assertConforms(task, "TaskHubOidcToken", token.body);
      assert.equal(typeof token.body.oidcToken, "string");
    });
  });
});
