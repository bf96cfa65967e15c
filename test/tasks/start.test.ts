// The real bundled entry point against the stand-ins: what only a task process shows (inputs from the agent's
// environment, the SDKs over HTTPS, the four ARM sign-in schemes, SIGTERM). The orchestration's scenarios
// (polling, fail-fast, timeout, keepOnFailure, cancellation at each stage) run in-process in test/orchestration.
import assert from "node:assert/strict";
import { STANDIN_DEFAULTS } from "../../standins";
import {
  assertNoSecrets,
  runTask,
  startStandins,
  taskEnvironment,
  type AuthScheme,
  type Standins,
  type TaskEnvironment,
  ensureBundles,
} from "../../standins/taskProcess";
import { defaultOf } from "../taskJson";

const TASK = "StartEphemeralAgentV1";
const { poolName, resourceGroup, subscriptionId } = STANDIN_DEFAULTS;
const SUBNET = `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Network/virtualNetworks/hub/subnets/aci`;
const INPUTS = {
  provider: "aci",
  connectedServiceNameARM: STANDIN_DEFAULTS.serviceConnectionId,
  resourceGroup,
  image: "myregistry.azurecr.io/ephemeral-agent:1",
  agentPool: poolName,
  runKey: "4711",
};

describe("StartEphemeralAgent (bundled) against the stand-ins: smoke tests of the entry point", function () {
  this.timeout(120_000);
  let standins: Standins;

  before(() => ensureBundles());
  beforeEach(async () => {
    standins = await startStandins({ arm: { subnets: [{ id: SUBNET }] } });
  });
  afterEach(() => standins.close());

  function start(
    environment: Partial<TaskEnvironment> & { inputs?: Record<string, string> } = {},
    options = {},
  ) {
    return runTask(
      TASK,
      taskEnvironment(standins, { ...environment, inputs: { ...INPUTS, ...environment.inputs } }),
      options,
    );
  }

  it("launches two agents, waits until they are online and sets the outputs", async () => {
    const run = await start({
      inputs: { count: "2", subnetId: SUBNET, dnsServers: "10.0.0.4", environment: "FOO=bar" },
    });
    assert.equal(run.result?.status, "Succeeded", run.stdout);
    const names = run.outputs.agentNames.split(",");
    assert.equal(names.length, 2);
    assert.match(names[0], new RegExp(`^${defaultOf(TASK, "agentNamePrefix")}-4711-[a-z0-9]{5}-1$`));
    assert.equal(run.outputs.agentName, names[0]);
    assert.equal(run.outputs.agentPool, poolName);
    assert.equal(run.outputs.runKey, "4711");
    assert.equal(run.outputs.demand, "EPHEMERAL_AGENT_RUN -equals 4711");
    for (const name of names) {
      assert.equal(standins.devops.agent(poolName, name)?.status, "online");
      const group = standins.arm.containerGroup(name)!;
      const body = group.request as {
        tags: Record<string, string>;
        properties: {
          restartPolicy: string;
          subnetIds: { id: string }[];
          dnsConfig: { nameServers: string[] };
          containers: {
            properties: { environmentVariables: { name: string; value?: string; secureValue?: string }[] };
          }[];
        };
      };
      assert.equal(body.properties.restartPolicy, "Never");
      assert.deepEqual(body.properties.subnetIds, [{ id: SUBNET }]);
      assert.deepEqual(body.properties.dnsConfig.nameServers, ["10.0.0.4"]);
      assert.equal(body.tags["ephemeral-agent-run-key"], "4711");
      assert.equal(body.tags["ephemeral-agent-pool"], poolName);
      assert.equal(body.tags["ephemeral-agent-name"], name);
      assert.equal(body.tags["ephemeral-agent-lifetime-minutes"], defaultOf(TASK, "maxLifetimeMinutes"));
      const variables = body.properties.containers[0].properties.environmentVariables;
      // The default registration: the agent's own credential as the one secure value, no token anywhere.
      assert.ok(!JSON.stringify(body).includes(STANDIN_DEFAULTS.jobToken), "no token in the container group");
      const credential = variables.find((variable) => variable.name === "AZP_AGENT_CREDENTIAL");
      assert.equal(credential?.value, undefined);
      assert.deepEqual(
        Object.keys(
          JSON.parse(Buffer.from(credential?.secureValue ?? "", "base64").toString()) as object,
        ).sort(),
        [".agent", ".credentials", ".credentials_rsaparams"],
      );
      const visible = Object.fromEntries(
        variables.filter((v) => v.value !== undefined).map((v) => [v.name, v.value]),
      );
      assert.equal(visible.AZP_URL, standins.devops.url);
      assert.equal(visible.AZP_POOL, poolName);
      assert.equal(visible.AZP_AGENT_NAME, name);
      assert.equal(visible.EPHEMERAL_AGENT_RUN, "4711");
      assert.equal(visible.EPHEMERAL_AGENT_MAX_LIFETIME_MINUTES, defaultOf(TASK, "maxLifetimeMinutes"));
      assert.equal(visible.FOO, "bar");
    }
    assert.match(run.summaries.join("\n"), /Ephemeral agents: online/);
    assertNoSecrets(run.stdout + run.stderr + JSON.stringify(run.outputs) + run.summaries.join(""));
  });

  for (const scheme of [
    "servicePrincipalSecret",
    "servicePrincipalCertificate",
    "managedIdentity",
    "workloadIdentityFederation",
  ] as AuthScheme[]) {
    it(`authenticates with ${scheme} and reaches Resource Manager`, async () => {
      const run = await start({ scheme });
      assert.equal(run.result?.status, "Succeeded", run.stdout + run.stderr);
      const puts = standins.arm.requests.filter((request) => request.method === "PUT");
      assert.equal(puts.length, 1);
      const expected = {
        servicePrincipalSecret: "clientSecret",
        servicePrincipalCertificate: "clientCertificate",
        managedIdentity: "managedIdentity",
        workloadIdentityFederation: "workloadIdentityFederation",
      }[scheme];
      assert.equal((puts[0].caller as { scheme: string }).scheme, expected);
      assertNoSecrets(run.stdout + run.stderr);
    });
  }

  it("fails at once when a container stops before its agent is online, and removes everything", async () => {
    standins.arm.behaviours.push({
      match: /-2$/,
      agent: false,
      container: { state: "Terminated", exitCode: 3, detailStatus: "Error" },
      logs: "AZP_URL is not reachable\nno agent package for linux-x64\n",
    });
    const run = await start({ inputs: { count: "2" } });
    assert.equal(run.result?.status, "Failed", run.stdout);
    assert.match(
      run.result?.message ?? "",
      /stopped before the agent came online \(exited, exit code 3, Error\)/,
    );
    assert.match(run.stdout, /no agent package for linux-x64/);
    assert.deepEqual(
      standins.arm.containerGroups().map((group) => group.name),
      [],
    );
    assert.deepEqual(standins.devops.agents(poolName), []);
  });

  it("removes what it created when cancelled with SIGTERM", async () => {
    standins.arm.behaviours.push({ match: () => true, agent: false });
    const run = await start(
      { inputs: { count: "2" } },
      { interrupt: { when: "Created 2 container(s)", signal: "SIGTERM" } },
    );
    assert.equal(run.result?.status, "Failed", run.stdout);
    assert.match(run.result?.message ?? "", /Cancelled/);
    assert.deepEqual(
      standins.arm.containerGroups().map((group) => group.name),
      [],
    );
    assert.deepEqual(standins.devops.agents(poolName), []);
  });
});
