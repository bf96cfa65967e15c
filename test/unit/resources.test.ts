import assert from "node:assert/strict";
import { InputError } from "../../tasks/common/core/errors";
import {
  checkRegistryMatches,
  parseDnsServers,
  parseImage,
  parseSubnetId,
} from "../../tasks/common/inputs/references";

const SUBNET =
  "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/vnet1/subnets/aci";

describe("Azure and image references", () => {
  it("accepts a subnet resource id and rejects malformed ones", () => {
    assert.equal(parseSubnetId(SUBNET), SUBNET);
    for (const bad of [
      "aci",
      "/subscriptions/not-a-guid/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/v/subnets/s",
      SUBNET.replace("/subnets/aci", ""),
      SUBNET + "/extra",
    ]) {
      assert.throws(
        () => parseSubnetId(bad),
        (error: unknown) => error instanceof InputError && error.input === "subnetId",
      );
    }
  });

  it("parses DNS server lists", () => {
    assert.deepEqual(parseDnsServers("10.0.0.4, 10.0.0.5"), ["10.0.0.4", "10.0.0.5"]);
    assert.deepEqual(parseDnsServers(""), []);
    assert.throws(() => parseDnsServers("10.0.0.256"), /not an IPv4 address/);
  });

  it("finds the registry of an image as Docker does", () => {
    assert.equal(parseImage("ubuntu:24.04").registry, "docker.io");
    assert.equal(parseImage("team/agent:1").registry, "docker.io");
    assert.equal(parseImage("myacr.azurecr.io/agents/ephemeral:1.2").registry, "myacr.azurecr.io");
    assert.equal(parseImage("localhost:5000/agent").registry, "localhost:5000");
    assert.equal(parseImage(`agent@sha256:${"a".repeat(64)}`).registry, "docker.io");
  });

  it("rejects image references Docker would not accept", () => {
    for (const bad of [
      "Agent:1",
      "agent:",
      "agent:bad tag",
      "https://myacr.azurecr.io/agent",
      "agent@sha256:123",
    ]) {
      assert.throws(
        () => parseImage(bad),
        (error: unknown) => error instanceof InputError && error.input === "image",
        bad,
      );
    }
  });

  it("requires a registry connection to match the image's registry", () => {
    checkRegistryMatches(parseImage("myacr.azurecr.io/agent:1"), "https://myacr.azurecr.io/");
    checkRegistryMatches(parseImage("agent:1"), "https://index.docker.io/v1/");
    assert.throws(
      () => checkRegistryMatches(parseImage("agent:1"), "myacr.azurecr.io"),
      (error: unknown) =>
        error instanceof InputError &&
        error.input === "registryConnection" &&
        /prefix the image/.test(error.message),
    );
  });
});
