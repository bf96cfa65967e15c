import assert from "node:assert/strict";
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
      jobIdentity: undefined,
      standby: undefined,
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

  it("accepts a job identity beside the registry identity, and the same identity as both", () => {
    const jobIdentity = IDENTITY.replace(/acr-pull$/, "acr-push");
    const both = aciOf(parseStartInputs({ ...ACI, registryIdentity: IDENTITY, jobIdentity }));
    assert.deepEqual([both.registryIdentity, both.jobIdentity], [IDENTITY, jobIdentity]);
    const same = aciOf(parseStartInputs({ ...ACI, registryIdentity: IDENTITY, jobIdentity: IDENTITY }));
    assert.equal(same.jobIdentity, IDENTITY);
  });

  it("accepts a job identity for a Windows container outside a virtual network", () => {
    assert.equal(
      aciOf(parseStartInputs({ ...ACI, osType: "Windows", jobIdentity: IDENTITY })).jobIdentity,
      IDENTITY,
    );
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
      shareDockerEngine: false,
    });
    assert.equal("aci" in inputs, false);
  });
});

describe("start task inputs for a warm start", () => {
  const POOL =
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/pools/providers/Microsoft.StandbyPool/standbyContainerGroupPools/agents";
  const PROFILE =
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/pools/providers/Microsoft.ContainerInstance/containerGroupProfiles/agent";

  it("takes the standby pool, with the pool's profile and a cold fallback by default", () => {
    assert.deepEqual(aciOf(parseStartInputs({ ...ACI, standbyPool: POOL })).standby, {
      standbyPool: POOL,
      containerGroupProfile: undefined,
      containerGroupProfileRevision: undefined,
      fallback: "cold",
    });
  });

  it("takes a profile, its revision and a failing fallback", () => {
    const standby = aciOf(
      parseStartInputs({
        ...ACI,
        standbyPool: POOL,
        containerGroupProfile: PROFILE,
        containerGroupProfileRevision: "3",
        standbyPoolFallback: "Fail",
      }),
    ).standby;
    assert.deepEqual(standby, {
      standbyPool: POOL,
      containerGroupProfile: PROFILE,
      containerGroupProfileRevision: 3,
      fallback: "fail",
    });
  });

  it("refuses a Windows container and the token, which a claimed container cannot be handed", () => {
    assert.throws(
      () => parseStartInputs({ ...ACI, standbyPool: POOL, osType: "Windows" }),
      /Input 'osType'.*Windows containers cannot take/,
    );
    assert.throws(
      () => parseStartInputs({ ...ACI, standbyPool: POOL, registration: "token" }),
      /Input 'registration'.*can be handed no secret/,
    );
  });

  it("leaves the size inputs, which always arrive with their defaults, to the profile", () => {
    const aci = aciOf(parseStartInputs({ ...ACI, standbyPool: POOL, cpu: "1", memoryGB: "2" }));
    assert.equal(aci.standby?.standbyPool, POOL);
  });
});
