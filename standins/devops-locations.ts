/**
 * Route discovery data for azure-devops-node-api: it asks OPTIONS /_apis/{area} for the area's resource
 * locations and builds request URLs from their routeTemplate. The ids are the ones node-api 15 uses.
 */

interface ResourceLocation {
  id: string;
  area: string;
  resourceName: string;
  routeTemplate: string;
  resourceVersion: number;
  minVersion: string;
  maxVersion: string;
  releasedVersion: string;
}

/** What Azure DevOps Services advertises today: 7.2 in preview, 7.1 released. */
export const SERVICES_API_VERSIONS = { maxVersion: "7.2", releasedVersion: "7.1" };

function location(
  id: string,
  area: string,
  resourceName: string,
  routeTemplate: string,
  resourceVersion = 1,
): ResourceLocation {
  return {
    id,
    area,
    resourceName,
    routeTemplate,
    resourceVersion,
    minVersion: "1.0",
    ...SERVICES_API_VERSIONS,
  };
}

export const DISTRIBUTED_TASK_AREA_ID = "a85b8835-c1a1-4aac-ae97-1c3d0ba72dbd";

const areaLocations: Record<string, ResourceLocation[]> = {
  location: [
    location(
      "e81700f7-3be2-46de-8624-2eb35882fcaa",
      "Location",
      "ResourceAreas",
      "_apis/{resource}/{areaId}",
    ),
  ],
  distributedtask: [
    location(
      "a8c47e17-4d56-4a56-92bb-de7ea7dc65be",
      "distributedtask",
      "pools",
      "_apis/{area}/{resource}/{poolId}",
    ),
    location(
      "e298ef32-5878-4cab-993c-043836571f42",
      "distributedtask",
      "agents",
      "_apis/{area}/pools/{poolId}/{resource}/{agentId}",
    ),
    location(
      "134e239e-2df3-4794-a6f6-24f1f19ec8dc",
      "distributedtask",
      "sessions",
      "_apis/{area}/pools/{poolId}/{resource}/{sessionId}",
    ),
    location(
      "c3a054f6-7a8a-49c0-944e-3a8e5d7adfd7",
      "distributedtask",
      "messages",
      "_apis/{area}/pools/{poolId}/{resource}/{messageId}",
    ),
    location(
      "fc825784-c92a-4299-9221-998a02d1b54f",
      "distributedtask",
      "jobrequests",
      "_apis/{area}/pools/{poolId}/{resource}/{requestId}",
    ),
    location(
      "8ffcd551-079c-493a-9c02-54346299d144",
      "distributedtask",
      "packages",
      "_apis/{area}/{resource}/{packageType}/{platform}/{version}",
      2,
    ),
    location(
      "69a319f4-28c1-4bfd-93e6-ea0ff5c6f1a2",
      "distributedtask",
      "oidctoken",
      "{scopeIdentifier}/_apis/{area}/hubs/{hubName}/plans/{planId}/jobs/{jobId}/{resource}",
    ),
  ],
};

/**
 * Body of OPTIONS /_apis/{area}; undefined for areas the stand-in does not serve. With maxApiVersion (a server
 * such as Azure DevOps Server 2022, "7.0") every location advertises that version as both its newest and its
 * released one, so node-api's autoNegotiateApiVersion falls back to it.
 */
export function areaLocationsResponse(
  area: string,
  maxApiVersion?: string,
): { count: number; value: ResourceLocation[] } | undefined {
  const locations = areaLocations[area.toLowerCase()];
  if (!locations) return undefined;
  const value = maxApiVersion
    ? locations.map((entry) => ({ ...entry, maxVersion: maxApiVersion, releasedVersion: maxApiVersion }))
    : locations;
  return { count: value.length, value };
}

export function resourceAreasResponse(collectionUrl: string): { count: number; value: unknown[] } {
  return {
    count: 1,
    value: [{ id: DISTRIBUTED_TASK_AREA_ID, name: "distributedtask", locationUrl: collectionUrl }],
  };
}
