import type { ContainerGroup } from "@azure/arm-containerinstance";
import type { BilledSize } from "../../core/cost";

/**
 * What ACI bills a container group by: its region, the vCPU and memory its containers request (summed: the group
 * is allocated the sum of its containers' requests) and its OS type. Undefined when the group says too little.
 */
export function billedSizeOfGroup(group: ContainerGroup): BilledSize | undefined {
  const requests = group.containers.map((container) => container.resources?.requests);
  if (!group.location || !group.osType || requests.length === 0 || requests.some((request) => !request)) {
    return undefined;
  }
  return {
    region: group.location,
    cpu: requests.reduce((sum, request) => sum + (request?.cpu ?? 0), 0),
    memoryGB: requests.reduce((sum, request) => sum + (request?.memoryInGB ?? 0), 0),
    osType: group.osType === "Windows" ? "Windows" : "Linux",
  };
}
