import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import Docker from "dockerode";
import { requireDockerEngine } from "../e2e/engine";
import { TAG } from "../../tasks/common/core/contract";
import { InputError } from "../../tasks/common/core/errors";
import type { RawInputs } from "../../tasks/common/inputs/parse";
import { parseStartInputs } from "../../tasks/common/inputs/start";
import { parseTeardownInputs } from "../../tasks/common/inputs/teardown";
import { CA_CERT_PATH, STANDIN_DEFAULTS } from "../../standins";
import {
  appCertificateParts,
  assertNoSecrets,
  dockerHostConnectionVariables,
  registryConnectionVariables,
  runTask,
  startStandins,
  taskEnvironment,
  type Standins,
  type TaskName,
  ensureBundles,
} from "../../standins/taskProcess";
import { declaredInputs, yamlName, type DeclaredInput } from "../taskJson";

// Each row is a value a user could type; the task must refuse it before it creates anything, naming the
// input and how to fix it. Rows the input parsers refuse run in-process against them; only rows that need
// an answer from Azure, Azure DevOps, a service connection or a Docker engine run the bundled task, all
// against one set of stand-ins.

const { poolName, resourceGroup, subscriptionId, readerToken, serviceConnectionId } = STANDIN_DEFAULTS;
const SUBNET = `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Network/virtualNetworks/hub/subnets/aci`;
const STANDBY_POOL = `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.StandbyPool/standbyContainerGroupPools/agents`;
const RUN_KEY = `bad-input-${randomBytes(4).toString("hex")}`;
const REGISTRY_CONNECTION = "registry-connection";
const DOCKER_CONNECTION = "docker-host-connection";

const ACI = {
  provider: "aci",
  connectedServiceNameARM: serviceConnectionId,
  resourceGroup,
  agentPool: poolName,
  runKey: RUN_KEY,
};
const START_ACI = { ...ACI, image: "myregistry.azurecr.io/ephemeral-agent:1" };
// pullPolicy never: a row that slipped through validation must not make the engine try a registry.
const START_DOCKER = {
  provider: "docker",
  image: "ephemeral-agents-test-busybox:1",
  pullPolicy: "never",
  agentPool: poolName,
  runKey: RUN_KEY,
};
const TEARDOWN_ACI = { ...ACI, awaitTimeoutMinutes: "0.05", gracePeriodSeconds: "0" };

interface BadInput {
  title: string;
  task: TaskName;
  defaults: Record<string, string>;
  inputs: Record<string, string>;
  /** Further agent variables, such as service connections. */
  variables?: () => Record<string, string>;
  jobToken?: string;
  /** Changes the shared stand-ins for the row; returns what puts them back. */
  setup?: (standins: Standins) => () => void;
  /** Names the input (or what to change) and the fix. */
  message: RegExp;
}

function start(title: string, inputs: Record<string, string>, message: RegExp): BadInput {
  return { title, task: "StartEphemeralAgentV1", defaults: START_ACI, inputs, message };
}

function startDocker(title: string, inputs: Record<string, string>, message: RegExp): BadInput {
  return { title, task: "StartEphemeralAgentV1", defaults: START_DOCKER, inputs, message };
}

function teardown(title: string, inputs: Record<string, string>, message: RegExp): BadInput {
  return { title, task: "TeardownEphemeralAgentV1", defaults: TEARDOWN_ACI, inputs, message };
}

/** Rows the input parsers refuse: no request, no container, nothing to clean up. */
const PARSE_ROWS: BadInput[] = [
  start(
    "a malformed subnet id",
    { subnetId: "vnet-hub/aci" },
    /Input 'subnetId'.*not a subnet resource ID: use \/subscriptions\/.*Properties page/,
  ),
  start(
    "a resource group name with a slash",
    { resourceGroup: "rg/agents" },
    /Input 'resourceGroup'.*not a resource group name: use up to 90 letters/,
  ),
  start(
    "an image with an empty tag",
    { image: "myacr.azurecr.io/agent:" },
    /Input 'image'.*not an image reference: use \[registry\/\]repository\[:tag\]/,
  ),
  start(
    "an image with uppercase letters in the repository",
    { image: "myacr.azurecr.io/Agent:1" },
    /Input 'image'.*not an image reference: .*lowercase repository/,
  ),
  start("count 0", { count: "0" }, /Input 'count'.*use a whole number from 1 to 50/),
  start("count 1000", { count: "1000" }, /Input 'count'.*use a whole number from 1 to 50/),
  start("count 2.5", { count: "2.5" }, /Input 'count'.*not a whole number: use a whole number from 1 to 50/),
  start("cpu -1", { cpu: "-1" }, /Input 'cpu'.*use a number from 0\.1 to 4/),
  start("cpu 8", { cpu: "8" }, /Input 'cpu'.*use a number from 0\.1 to 4/),
  start(
    "cpu 1.25, off ACI's 0.1 step",
    { cpu: "1.25" },
    /Input 'cpu'.*not a multiple of 0\.1: use a multiple of 0\.1, such as 1\.[23]/,
  ),
  start("memoryGB 0", { memoryGB: "0" }, /Input 'memoryGB'.*use a number from 0\.1 to 16/),
  start("memoryGB 64", { memoryGB: "64" }, /Input 'memoryGB'.*use a number from 0\.1 to 16/),
  start("memoryGB 'lots'", { memoryGB: "lots" }, /Input 'memoryGB'.*not a number: use a number from 0\.1/),
  start(
    "an agent name prefix that cannot start a name",
    { agentNamePrefix: "Build_Agents!" },
    /Input 'agentNamePrefix'.*cannot start a container name: use 1 to 24 lowercase letters/,
  ),
  start(
    "a run key with forbidden characters",
    { runKey: "run 1;rm -rf" },
    /Input 'runKey'.*cannot be used: use 1 to 64 letters, digits/,
  ),
  start(
    "an environment line without '='",
    { environment: "FOO=bar\nJUSTANAME" },
    /Input 'environment'.*line 2 is not NAME=value: write each variable as NAME=value/,
  ),
  start(
    "an environment line setting AZP_TOKEN",
    { environment: "AZP_TOKEN=mine" },
    /Input 'environment'.*AZP_TOKEN is set by the task itself: remove that line/,
  ),
  start(
    "an unknown provider",
    { provider: "kubernetes" },
    /Input 'provider'.*'kubernetes' is not supported: use one of aci, docker/,
  ),
  start(
    "DNS servers without a subnet",
    { dnsServers: "10.0.0.4" },
    /Input 'dnsServers'.*only to container groups in a subnet: set subnetId, or clear dnsServers/,
  ),
  start(
    "a DNS server that is not an address",
    { subnetId: SUBNET, dnsServers: "dns.example" },
    /Input 'dnsServers'.*not an IPv4 address: list DNS server addresses/,
  ),
  start(
    "onlineTimeoutMinutes 0",
    { onlineTimeoutMinutes: "0" },
    /Input 'onlineTimeoutMinutes'.*use a number from 0\.05 to 60/,
  ),
  start(
    "maxLifetimeMinutes below onlineTimeoutMinutes",
    { onlineTimeoutMinutes: "30", maxLifetimeMinutes: "10" },
    /Input 'maxLifetimeMinutes'.*leaves no time for a job.*make it longer than onlineTimeoutMinutes/,
  ),
  start(
    "keepOnFailure 'maybe'",
    { keepOnFailure: "maybe" },
    /Input 'keepOnFailure'.*'maybe' is not a boolean: use true or false/,
  ),
  start(
    "estimateCost 'yes'",
    { estimateCost: "yes" },
    /Input 'estimateCost'.*'yes' is not a boolean: use true or false/,
  ),
  start("no agent image", { image: "" }, /Input 'image'.*is required: set it to the agent image/),
  start("an image with a space", { image: "Bad Image" }, /Input 'image'.*not an image reference/),
  start(
    "no agentPool",
    { agentPool: "" },
    /Input 'agentPool'.*is required: set it to the name of a self-hosted/,
  ),
  start(
    "no Azure Resource Manager service connection",
    { connectedServiceNameARM: "" },
    /Input 'azureSubscription'.*is required: set it to an Azure Resource Manager service connection/,
  ),
  start(
    "a registry identity that is not an identity resource ID",
    { registryIdentity: "acr-pull" },
    /Input 'registryIdentity'.*not a user-assigned managed identity resource ID/,
  ),
  start(
    "a registry identity for an image outside Azure Container Registry",
    {
      image: "ubuntu:24.04",
      registryIdentity: `/subscriptions/${subscriptionId}/resourceGroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/acr-pull`,
    },
    /Input 'registryIdentity'.*only from Azure Container Registry.*clear registryIdentity/,
  ),
  start(
    "a job identity that is not an identity resource ID",
    { jobIdentity: "acr-push" },
    /Input 'jobIdentity'.*'acr-push' is not a user-assigned managed identity resource ID: use \/subscriptions\//,
  ),
  start(
    "a job identity for a Windows container in a subnet",
    {
      osType: "Windows",
      subnetId: SUBNET,
      jobIdentity: `/subscriptions/${subscriptionId}/resourceGroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/acr-push`,
    },
    /Input 'jobIdentity'.*Windows container in a virtual network cannot get tokens.*use osType Linux.*or clear jobIdentity/,
  ),
  start(
    "a standby pool that is not a standby pool resource ID",
    { standbyPool: "agents-pool" },
    /Input 'standbyPool'.*'agents-pool' is not a standby pool resource ID: use \/subscriptions\/.*standbyContainerGroupPools/,
  ),
  start(
    "a standby pool with registration token",
    { standbyPool: STANDBY_POOL, registration: "token" },
    /Input 'registration'.*can be handed no secret.*use registration agentCredential, or clear standbyPool/,
  ),
  start(
    "a standby pool with a subnet of the task's own",
    { standbyPool: STANDBY_POOL, subnetId: SUBNET },
    /Input 'subnetId'.*takes it from the standby pool's subnet: set it there, and clear subnetId/,
  ),
  start(
    "a standby pool with a job identity of the task's own",
    {
      standbyPool: STANDBY_POOL,
      jobIdentity: `/subscriptions/${subscriptionId}/resourceGroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/acr-push`,
    },
    /Input 'jobIdentity'.*takes it from the container group profile: set it there, and clear jobIdentity/,
  ),
  start(
    "a container group profile that is not a profile resource ID",
    { standbyPool: STANDBY_POOL, containerGroupProfile: "agent-profile" },
    /Input 'containerGroupProfile'.*not a container group profile resource ID.*or clear it to use the pool's/,
  ),
  start(
    "a profile revision that is no whole number",
    { standbyPool: STANDBY_POOL, containerGroupProfileRevision: "latest" },
    /Input 'containerGroupProfileRevision'.*'latest' is not a whole number/,
  ),
  start(
    "standbyPoolFallback 'wait'",
    { standbyPool: STANDBY_POOL, standbyPoolFallback: "wait" },
    /Input 'standbyPoolFallback'.*'wait' is not supported: use one of cold, fail/,
  ),
  start(
    "a profile revision without a standby pool",
    { containerGroupProfileRevision: "2" },
    /Input 'containerGroupProfileRevision'.*applies only to a warm start: set standbyPool, or clear it/,
  ),
  startDocker(
    "a standby pool with the docker provider",
    { standbyPool: STANDBY_POOL },
    /Input 'standbyPool'.*standby pools are a feature of Azure Container Instances: use provider aci, or clear standbyPool/,
  ),
  start(
    "shareDockerEngine with the aci provider",
    { shareDockerEngine: "true" },
    /Input 'shareDockerEngine'.*Azure Container Instances has no Docker engine to share: build the image with ACR Tasks.*jobIdentity/,
  ),
  startDocker(
    "shareDockerEngine 'yes'",
    { shareDockerEngine: "yes" },
    /Input 'shareDockerEngine'.*'yes' is not a boolean: use true or false/,
  ),
  start(
    "registration 'pat'",
    { registration: "pat" },
    /Input 'registration'.*'pat' is not supported: use one of agentCredential, token/,
  ),
  startDocker(
    "pullPolicy 'sometimes'",
    { pullPolicy: "sometimes" },
    /Input 'pullPolicy'.*'sometimes' is not supported: use one of always, ifNotPresent, never/,
  ),
  teardown("no agentPool", { agentPool: "" }, /Input 'agentPool'.*is required: set it to the agent pool/),
  teardown(
    "a run key with forbidden characters",
    { runKey: "$(Build.BuildId)" },
    /Input 'runKey'.*cannot be used: use 1 to 64 letters/,
  ),
  teardown(
    "an agentNames entry that is no agent name",
    { agentNames: "ephemeral-1-abcde-1, Agent One" },
    /Input 'agentNames'.*'Agent One' is not an agent name.*pass the start task's agentNames output/,
  ),
  teardown(
    "a negative awaitTimeoutMinutes",
    { awaitTimeoutMinutes: "-5" },
    /Input 'awaitTimeoutMinutes'.*use a number from 0 to 1440/,
  ),
  teardown(
    "an awaitTimeoutMinutes that is not a number",
    { awaitTimeoutMinutes: "soon" },
    /Input 'awaitTimeoutMinutes'.*'soon' is not a number: use a number from 0 to 1440/,
  ),
  teardown(
    "sweepOlderThanMinutes that is not a number",
    { sweepOlderThanMinutes: "a day" },
    /Input 'sweepOlderThanMinutes'.*'a day' is not a whole number: use a whole number from 0/,
  ),
  teardown(
    "gracePeriodSeconds over an hour",
    { gracePeriodSeconds: "7200" },
    /Input 'gracePeriodSeconds'.*use a whole number from 0 to 3600/,
  ),
  teardown(
    "estimateCost 'no'",
    { estimateCost: "no" },
    /Input 'estimateCost'.*'no' is not a boolean: use true or false/,
  ),
  teardown("an unknown provider", { provider: "nomad" }, /Input 'provider'.*use one of aci, docker/),
];

/** Rows only Azure, Azure DevOps, a service connection or a Docker engine can refuse: they run the bundled task. */
const STANDIN_ROWS: BadInput[] = [
  start(
    "a subnet that does not exist",
    { subnetId: SUBNET.replace(/\/aci$/, "/missing") },
    /Input 'subnetId'.*does not exist: copy the subnet's resource ID/,
  ),
  {
    ...start(
      "a subnet not delegated to ACI",
      { subnetId: SUBNET },
      /Input 'subnetId'.*not delegated to Microsoft\.ContainerInstance\/containerGroups: add that delegation/,
    ),
    setup: (standins) => {
      standins.arm.subnets[0].delegated = false;
      return () => (standins.arm.subnets[0].delegated = true);
    },
  },
  start(
    "an unknown pool",
    { agentPool: "NoSuchPool" },
    /Input 'agentPool'.*'NoSuchPool' was not found.*create it .*or fix the name/,
  ),
  {
    ...start(
      "a token without rights on the pool",
      {},
      /may not manage agent pool 'Default': give it the Administrator role on the pool/,
    ),
    jobToken: readerToken,
  },
  start(
    "an unknown resource group",
    { resourceGroup: "rg-missing" },
    /Input 'resourceGroup'.*'rg-missing' does not exist.*create it or pick an existing one/,
  ),
  {
    ...start(
      "a service connection without write access",
      {},
      /lacks Microsoft\.ContainerInstance\/containerGroups\/write.*Contributor/,
    ),
    setup: (standins) => {
      const granted = standins.arm.permissions.splice(0, standins.arm.permissions.length, {
        actions: ["*/read"],
        notActions: [],
      });
      return () => standins.arm.permissions.splice(0, standins.arm.permissions.length, ...granted);
    },
  },
  {
    ...start(
      "an image without a registry host and a registry connection for another registry",
      { image: "agent:1", registryConnection: REGISTRY_CONNECTION },
      /Input 'registryConnection'.*'myacr\.azurecr\.io' but image 'agent:1' comes from 'docker\.io': prefix the image with the registry host/,
    ),
    variables: () =>
      registryConnectionVariables(REGISTRY_CONNECTION, {
        server: "myacr.azurecr.io",
        username: "puller",
        password: "not-a-real-password",
      }),
  },
  {
    ...startDocker(
      "a Docker host that does not answer",
      { dockerEndpoint: DOCKER_CONNECTION },
      /Input 'dockerEndpoint'.*cannot connect to the Docker engine at tcp:\/\/127\.0\.0\.1:1 \(ECONNREFUSED\): check that it runs/,
    ),
    variables: () => {
      const { key, certificate } = appCertificateParts();
      return dockerHostConnectionVariables(DOCKER_CONNECTION, "tcp://127.0.0.1:1", {
        cacert: fs.readFileSync(CA_CERT_PATH, "utf8"),
        cert: certificate,
        key,
      });
    },
  },
  {
    ...startDocker(
      "shareDockerEngine with a Docker host reached over TLS",
      { dockerEndpoint: DOCKER_CONNECTION, shareDockerEngine: "true" },
      /Input 'shareDockerEngine'.*tcp:\/\/127\.0\.0\.1:1 is reached over the network.*client key must not reach a job: run the start job on that engine's host/,
    ),
    variables: () => {
      const { key, certificate } = appCertificateParts();
      return dockerHostConnectionVariables(DOCKER_CONNECTION, "tcp://127.0.0.1:1", {
        cacert: fs.readFileSync(CA_CERT_PATH, "utf8"),
        cert: certificate,
        key,
      });
    },
  },
  {
    ...startDocker(
      "shareDockerEngine with a Unix socket that is not there",
      { dockerEndpoint: DOCKER_CONNECTION, shareDockerEngine: "true" },
      /Input 'shareDockerEngine'.*socket \/nonexistent\/docker\.sock cannot be read.*\(ENOENT\): run the start job on the engine's host/,
    ),
    variables: () =>
      dockerHostConnectionVariables(DOCKER_CONNECTION, "unix:///nonexistent/docker.sock", {
        cacert: "",
        cert: "",
        key: "",
      }),
  },
  startDocker(
    "a Docker network that does not exist",
    { dockerNetwork: `no-such-network-${RUN_KEY}` },
    /Input 'dockerNetwork'.*does not exist on the Docker host.*create it \(docker network create/,
  ),
  startDocker(
    "an image the engine does not have with pullPolicy never",
    { image: `ephemeral-agents-absent-${RUN_KEY}:1` },
    /Input 'pullPolicy'.*is not on the Docker host.*set pullPolicy to ifNotPresent/,
  ),
  teardown(
    "an unknown pool",
    { agentPool: "NoSuchPool" },
    /Input 'agentPool'.*'NoSuchPool' was not found.*or fix the name/,
  ),
  {
    ...teardown("a token Azure DevOps rejects", {}, /rejected the token.*HTTP 401/),
    jobToken: "expired-token",
  },
];

const DECLARED: Record<TaskName, DeclaredInput[]> = {
  StartEphemeralAgentV1: declaredInputs("StartEphemeralAgentV1"),
  TeardownEphemeralAgentV1: declaredInputs("TeardownEphemeralAgentV1"),
};

/**
 * The raw inputs the task reads for a row: task.json's default for every input the row leaves unset, as the
 * agent fills them in, keyed by the name YAML uses (the first alias, else the name).
 */
function rawInputs(row: BadInput): RawInputs {
  const given = { ...row.defaults, ...row.inputs };
  return Object.fromEntries(
    DECLARED[row.task].map((input) => {
      const key = yamlName(input);
      const value = given[input.name] ?? given[key] ?? input.defaultValue;
      return [key, value === undefined ? undefined : String(value)];
    }),
  );
}

function parse(row: BadInput): unknown {
  const raw = rawInputs(row);
  return row.task === "StartEphemeralAgentV1" ? parseStartInputs(raw) : parseTeardownInputs(raw);
}

const taskLabel = (row: BadInput) => (row.task === "StartEphemeralAgentV1" ? "start" : "teardown");

describe("bad input refused by the input parsers (in-process)", () => {
  for (const row of PARSE_ROWS) {
    it(`${taskLabel(row)}: ${row.title}`, () => {
      assert.throws(
        () => parse(row),
        (error: unknown) => {
          assert.ok(error instanceof InputError, `not an InputError: ${String(error)}`);
          assert.match(error.message, row.message);
          const names = DECLARED[row.task].flatMap((input) => [input.name, ...(input.aliases ?? [])]);
          assert.ok(names.includes(error.input), `'${error.input}' is an input of ${row.task}'s task.json`);
          return true;
        },
      );
    });
  }

  it("accepts the rows' base inputs, so that each row fails for its own value", () => {
    for (const row of PARSE_ROWS) assert.doesNotThrow(() => parse({ ...row, inputs: {} }), row.title);
  });
});

const docker = new Docker();

/** Containers on the local engine that carry the run key of the row, as the docker provider labels them. */
async function labelledContainers(runKey: string): Promise<string[]> {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`${TAG.runKey}=${runKey}`] },
  });
  return containers.flatMap((container) => container.Names);
}

function changes(requests: readonly { method: string; path: string }[]): string[] {
  return requests
    .filter((request) => !["GET", "OPTIONS", "HEAD"].includes(request.method))
    .map((request) => `${request.method} ${request.path}`);
}

describe("bad input refused with an answer from the stand-ins or the engine (bundled tasks)", function () {
  this.timeout(60_000);
  let standins: Standins;

  before(async () => {
    await ensureBundles();
    standins = await startStandins({ arm: { subnets: [{ id: SUBNET }] } });
  });
  after(() => standins?.close());

  for (const row of STANDIN_ROWS) {
    it(`${taskLabel(row)}: ${row.title}`, async function () {
      if (row.defaults === START_DOCKER) await requireDockerEngine(this);
      const armRequestsBefore = standins.arm.requests.length;
      const devopsRequestsBefore = standins.devops.requests.length;
      const restore = row.setup?.(standins);
      const inputs = { ...row.defaults, ...row.inputs };
      try {
        const run = await runTask(
          row.task,
          taskEnvironment(standins, { inputs, jobToken: row.jobToken, extra: row.variables?.() }),
        );
        const context = `\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;
        assert.equal(run.result?.status, "Failed", `the task did not fail${context}`);
        assert.notEqual(run.code, 0, `exit code 0${context}`);
        assert.match(run.result?.message ?? "", row.message, context);
        assert.doesNotMatch(run.stdout + run.stderr, /\n\s+at /, "a stack trace was printed");
        assertNoSecrets(run.stdout + run.stderr);
      } finally {
        restore?.();
      }

      assert.deepEqual(
        changes(standins.arm.requests.slice(armRequestsBefore)),
        [],
        "requests that change something in Azure",
      );
      assert.deepEqual(
        standins.arm.containerGroups().map((group) => group.name),
        [],
        "container groups",
      );
      assert.deepEqual(
        changes(standins.devops.requests.slice(devopsRequestsBefore)),
        [],
        "requests that change something in Azure DevOps",
      );
      assert.deepEqual(
        standins.devops.agents(poolName).map((agent) => agent.name),
        [],
        "agent registrations",
      );
      assert.deepEqual(await labelledContainers(inputs.runKey), [], "docker containers of the run");
    });
  }
});
