import type { Usage } from "@azure/arm-containerinstance";

/** "West Europe" and "westeurope" name the same region. */
export function sameRegion(a: string, b: string): boolean {
  const normal = (region: string) => region.replace(/\s+/g, "").toLowerCase();
  return normal(a) === normal(b);
}

/** The subscription a resource ID lies in. */
export function subscriptionOf(resourceId: string): string | undefined {
  return /^\/subscriptions\/([^/]+)\//i.exec(resourceId)?.[1];
}

/** The virtual network a subnet belongs to: its ID without the /subnets/<name> tail. */
export function virtualNetworkOf(subnetId: string): string {
  return subnetId.replace(/\/subnets\/[^/]+\/?$/i, "");
}

/**
 * Why `count` more container groups of `cpu` cores would not fit the region's quotas, from
 * Microsoft.ContainerInstance/locations/{location}/usages ("ContainerGroups" and "StandardCores", as the spec's
 * Location_ListUsage example names them); undefined when they fit or the quota is not listed.
 */
export function regionQuotaShortfall(
  usages: readonly Usage[],
  location: string,
  count: number,
  cpu: number,
): string | undefined {
  const usage = (name: string) =>
    usages.find((candidate) => candidate.name?.value?.toLowerCase() === name.toLowerCase());
  const checks: [string, string, number][] = [
    ["ContainerGroups", "container groups", count],
    ["StandardCores", "cores", Math.round(count * cpu * 100) / 100],
  ];
  for (const [name, what, needed] of checks) {
    const found = usage(name);
    if (found?.limit === undefined || found.currentValue === undefined) continue;
    const free = found.limit - found.currentValue;
    if (needed > free) {
      return `${count} agent(s) need ${needed} ${what}, but the ${name} quota of region ${location} has ${Math.max(0, free)} left (${found.currentValue} of ${found.limit} in use)`;
    }
  }
  return undefined;
}
