import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import type { ContainerGroup } from "@azure/arm-containerinstance";
import { billedSizeOfGroup } from "../../tasks/common/providers/aci/billing";

/** The REST specification's list example, as the SDK deserializes it: properties flattened onto the group. */
function exampleGroup(): ContainerGroup {
  const file = path.join(
    __dirname,
    "../../standins/reference/aci/examples/ContainerGroupsListByResourceGroup.json",
  );
  const example = JSON.parse(readFileSync(file, "utf8")) as {
    responses: { 200: { body: { value: { location: string; properties: Record<string, unknown> }[] } } };
  };
  const group = example.responses[200].body.value[0];
  const containers = (
    group.properties.containers as { name: string; properties: Record<string, unknown> }[]
  ).map((container) => ({ name: container.name, ...container.properties }));
  return { ...group.properties, location: group.location, containers } as unknown as ContainerGroup;
}

describe("what ACI bills a container group by (providers/aci/billing)", () => {
  it("reads region, requests and OS type of the specification's list example", () => {
    assert.deepEqual(billedSizeOfGroup(exampleGroup()), {
      region: "WestUs",
      cpu: 1,
      memoryGB: 1.5,
      osType: "Linux",
    });
  });

  it("sums the requests of several containers, and keeps Windows", () => {
    const group: ContainerGroup = {
      location: "eastus",
      osType: "Windows",
      containers: [
        { name: "a", image: "x", resources: { requests: { cpu: 1, memoryInGB: 2 } } },
        { name: "b", image: "y", resources: { requests: { cpu: 0.5, memoryInGB: 1 } } },
      ],
    };
    assert.deepEqual(billedSizeOfGroup(group), {
      region: "eastus",
      cpu: 1.5,
      memoryGB: 3,
      osType: "Windows",
    });
  });

  it("says nothing when the group lacks its region or a container's requests", () => {
    const group = exampleGroup();
    assert.equal(billedSizeOfGroup({ ...group, location: undefined }), undefined);
    assert.equal(
      billedSizeOfGroup({ ...group, containers: [{ name: "a", image: "x" } as never] }),
      undefined,
    );
  });
});
