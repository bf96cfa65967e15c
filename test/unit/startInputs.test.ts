import assert from "node:assert/strict";
import { InputError } from "../../tasks/common/core/errors";
import { parseStartInputs, type StartInputs } from "../../tasks/common/inputs/start";

const SUBNET =
  "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/vnet1/subnets/aci";
const IDENTITY =
  "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/acr-pull";
const ACI = {
  azureSubscription: "arm",
  resourceGroup: "agents-rg",
  image: "myacr.azurecr.io/agent:1",
  agentPool: "Private",
  runKey: "42",
};

function aciOf(inputs: StartInputs) {
  assert.equal(inputs.provider, "aci");
  return inputs.provider === "aci" ? inputs.aci : assert.fail("not aci");
}

function failsOn(input: string, raw: Record<string, string>, pattern: RegExp) {
  assert.throws(
    () => parseStartInputs(raw),
    (error: unknown) => {
      assert.ok(error instanceof InputError, String(error));
      assert.equal(error.input, input);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

describe("start task inputs", () => {
  it("applies the documented defaults for the aci provider", () => {
    const inputs = parseStartInputs(ACI);
    assert.equal(inputs.provider, "aci");
    assert.equal(inputs.count, 1);
    assert.equal(inputs.agentNamePrefix, "ephemeral");
    assert.equal(inputs.onlineTimeoutMinutes, 10);
    assert.equal(inputs.maxLifetimeMinutes, 120);
    assert.equal(inputs.keepOnFailure, false);
    assert.deepEqual(aciOf(inputs), {
      azureSubscription: "arm",
      resourceGroup: "agents-rg",
      location: undefined,
      subnetId: undefined,
      dnsServers: [],
      registryIdentity: undefined,
      cpu: 1,
      memoryGB: 2,
      osType: "Linux",
    });
    assert.equal("docker" in inputs, false);
  });

  it("lets Windows container groups join a subnet, as ACI allows", () => {
    const aci = aciOf(parseStartInputs({ ...ACI, subnetId: SUBNET, osType: "Windows" }));
    assert.equal(aci.osType, "Windows");
    assert.equal(aci.subnetId, SUBNET);
  });

  it("accepts a registry identity for an Azure Container Registry image", () => {
    assert.equal(aciOf(parseStartInputs({ ...ACI, registryIdentity: IDENTITY })).registryIdentity, IDENTITY);
  });

  it("reads the docker provider's inputs", () => {
    const inputs = parseStartInputs({
      provider: "docker",
      image: "agent:1",
      agentPool: "p",
      runKey: "1",
      pullPolicy: "never",
    });
    assert.equal(inputs.provider, "docker");
    assert.deepEqual(inputs.provider === "docker" && inputs.docker, {
      dockerEndpoint: undefined,
      dockerNetwork: undefined,
      pullPolicy: "never",
    });
    assert.equal("aci" in inputs, false);
  });

  it("rejects bad values, naming the input and the fix", () => {
    failsOn("provider", { ...ACI, provider: "kubernetes" }, /use one of aci, docker/);
    failsOn("count", { ...ACI, count: "0" }, /from 1 to 50/);
    failsOn("count", { ...ACI, count: "1000" }, /from 1 to 50/);
    failsOn("cpu", { ...ACI, cpu: "-1" }, /from 0.1 to 4/);
    failsOn("cpu", { ...ACI, cpu: "8" }, /from 0.1 to 4/);
    failsOn("memoryGB", { ...ACI, memoryGB: "64" }, /from 0.1 to 16/);
    failsOn("subnetId", { ...ACI, subnetId: "my-subnet" }, /not a subnet resource ID/);
    failsOn("dnsServers", { ...ACI, subnetId: SUBNET, dnsServers: "dns.local" }, /IPv4/);
    failsOn("dnsServers", { ...ACI, dnsServers: "10.0.0.4" }, /set subnetId/);
    failsOn("resourceGroup", { ...ACI, resourceGroup: "bad/group" }, /not a resource group name/);
    failsOn("azureSubscription", { ...ACI, azureSubscription: "" }, /is required/);
    failsOn("image", { ...ACI, image: "Bad Image" }, /not an image reference/);
    failsOn("agentPool", { ...ACI, agentPool: "" }, /is required/);
    failsOn("runKey", { ...ACI, runKey: "a b" }, /letters, digits/);
    failsOn("agentNamePrefix", { ...ACI, agentNamePrefix: "My_Agents" }, /lowercase/);
    failsOn("environment", { ...ACI, environment: "NOVALUE" }, /NAME=value/);
    failsOn("onlineTimeoutMinutes", { ...ACI, onlineTimeoutMinutes: "0" }, /from 0.05 to 60/);
    failsOn(
      "maxLifetimeMinutes",
      { ...ACI, maxLifetimeMinutes: "10", onlineTimeoutMinutes: "10" },
      /longer than onlineTimeoutMinutes/,
    );
    failsOn("keepOnFailure", { ...ACI, keepOnFailure: "maybe" }, /true or false/);
    failsOn(
      "registryIdentity",
      { ...ACI, registryIdentity: "acr-pull" },
      /not a user-assigned managed identity resource ID/,
    );
    failsOn(
      "registryIdentity",
      { ...ACI, image: "ubuntu:24.04", registryIdentity: IDENTITY },
      /only from Azure Container Registry.*'docker\.io'/,
    );
    failsOn(
      "pullPolicy",
      { provider: "docker", image: "a:1", agentPool: "p", runKey: "1", pullPolicy: "sometimes" },
      /always, ifNotPresent, never/,
    );
  });
});
