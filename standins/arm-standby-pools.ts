// Azure Container Instances standby pools in the ARM stand-in: container group profiles, standby container group
// pools with their runtime view, and the claim, a container group PUT that names a profile and a pool. Sources, as
// copied into reference/aci/standby/ (SOURCES.md):
// - Azure/azure-rest-api-specs, specification/standbypool (2025-03-01): the pool's body and its runtime view
//   (StandbyContainerGroupPools_Get.json, StandbyContainerGroupPoolRuntimeViews_Get.json);
// - specification/containerinstance 2025-09-01: the profile (ContainerGroupProfilesGet.json, each PUT raises
//   `revision`) and the claim (ContainerGroupCreateOrUpdateStandbyPool.json: 201 when claimed, 200 for a group
//   that exists);
// - the claim recorded by Azure/azure-cli (recording_container_reuse_from_standbypool.json): 201, Succeeded at
//   once, isCreatedFromStandbyPool true, the container Running since before the claim with restartCount 0, the
//   caller's name and resource group; a container name other than the profile's came back with an empty config map;
// - Azure/azure-cli issue 30898: a claim that sets more than config maps answers 400 "ContainerGroup properties other
//   than config map are not allowed";
// - Microsoft Learn: an empty pool makes ACI create the group cold from the same profile, or fail with
//   failContainerGroupCreateOnReuseFailure; degraded health pauses refills; config maps are files under
//   /mnt/configmap/<container>/ that an update changes without a restart.
// Inferred, not verified (standins/README.md): the status and code of a failed reuse, of a missing profile or pool
// and of the 400; that a config-map-only PUT of the claim's shape updates a claimed group; how soon a pool refills.
import { randomUUID } from "node:crypto";
import type { ContainerGroupRecord, ContainerGroupRequest, StandbyOrigin } from "./arm-container-groups";
import type { Reply, StandinRequest } from "./http-server";

export const PROFILE_PATH =
  "/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.ContainerInstance/containerGroupProfiles/:profile";
export const POOL_PATH =
  "/subscriptions/:subscriptionId/resourceGroups/:resourceGroup/providers/Microsoft.StandbyPool/standbyContainerGroupPools/:pool";
const PROFILE_READ = "Microsoft.ContainerInstance/containerGroupProfiles/read";
const GROUP_WRITE = "Microsoft.ContainerInstance/containerGroups/write";
const HEALTHY = { code: "HealthState/healthy", message: "The pool is healthy." };

export interface StandbyPoolTiming {
  /** Time from a claim's request to its answer; the recorded claim took about 5 s. Default 0. */
  claimLatencyMs?: number;
  /** Time from a claim to the pool starting a replacement; default 0 (the group then takes its provisioning delay). */
  refillDelayMs?: number;
}

interface ProfileRecord {
  id: string;
  name: string;
  location: string;
  /** Properties by revision - 1. */
  revisions: Record<string, unknown>[];
}

export interface StandbyPoolRecord {
  id: string;
  name: string;
  location: string;
  maxReadyCapacity: number;
  profile: { id: string; revision: number };
  subnetIds: { id: string }[];
  /** Groups in the pool, not yet claimed: provisioning, then Running. */
  members: ContainerGroupRecord[];
  health: { code: string; message: string };
}

/** What the standby pools need of the ARM stand-in. */
export interface StandbyHost {
  subscriptionId: string;
  /** Whether the caller's permissions grant the action. */
  granted(action: string): boolean;
  schedule(delayMs: number, action: () => void): void;
  /** Makes a group from a profile and provisions it as an ordinary creation; `register` adds it to the listed groups. */
  provision(
    request: ContainerGroupRequest,
    where: { resourceGroup: string; name: string },
    standby: StandbyOrigin,
    register: boolean,
  ): ContainerGroupRecord;
  /** Puts a pooled group under the caller's name and resource group, among the listed groups. */
  adopt(
    group: ContainerGroupRecord,
    resourceGroup: string,
    name: string,
    tags?: Record<string, string>,
  ): void;
  existing(resourceGroup: string, name: string): ContainerGroupRecord | undefined;
  /** The group's ARM body, with its instance view. */
  json(group: ContainerGroupRecord): Record<string, unknown>;
  /** Tells the listeners (the Docker bridge, simulated agents) that a container's config map changed. */
  configMapChanged(group: ContainerGroupRecord, container: string): void;
}

export interface StandbyPools {
  pools(): StandbyPoolRecord[];
  pool(id: string): StandbyPoolRecord | undefined;
  /** Sets the pool's health, as its runtime view reports it; degraded pauses refills. */
  setHealth(id: string, health: { code: string; message: string }): void;
  /**
   * A pooled group whose container ended before any claim leaves the pool, which makes another: inferred from
   * `refillPolicy: always`, **not verified** (what the warm-mode image's wait limit relies on).
   */
  retire(group: ContainerGroupRecord): void;
  putProfile: (request: StandinRequest, params: Record<string, string>) => Reply;
  getProfile: (request: StandinRequest, params: Record<string, string>) => Reply;
  putPool: (request: StandinRequest, params: Record<string, string>) => Reply;
  getPool: (request: StandinRequest, params: Record<string, string>) => Reply;
  getRuntimeView: (request: StandinRequest, params: Record<string, string>) => Reply;
  /** A container group PUT that names a profile: a claim, a cold creation from the profile, or a config map update. */
  claim: (body: ContainerGroupRequest, resourceGroup: string, name: string) => Promise<Reply>;
}

function armError(status: number, code: string, message: string): Reply {
  return { status, body: { error: { code, message } } };
}

/** A profile revision that does not exist (status and code not verified). */
function missingRevision(reference: { id?: string; revision?: number } | undefined): Reply {
  return armError(
    400,
    "InvalidContainerGroupProfile",
    `Container group profile '${reference?.id ?? ""}' revision ${reference?.revision ?? 0} does not exist.`,
  );
}

function sameId(a: string | undefined, b: string | undefined): boolean {
  return (a ?? "").toLowerCase() === (b ?? "").toLowerCase();
}

function isRunning(group: ContainerGroupRecord): boolean {
  return group.provisioningState === "Succeeded" && group.containers[0]?.currentState?.state === "Running";
}

export function standbyPools(host: StandbyHost, timing: StandbyPoolTiming = {}): StandbyPools {
  const profiles = new Map<string, ProfileRecord>();
  const pools = new Map<string, StandbyPoolRecord>();

  const resourceId = (params: Record<string, string>, type: string, name: string) =>
    `/subscriptions/${host.subscriptionId}/resourceGroups/${params.resourceGroup}/providers/${type}/${name}`;

  function profileJson(profile: ProfileRecord, revision: number): Record<string, unknown> {
    return {
      id: profile.id,
      name: profile.name,
      type: "Microsoft.ContainerInstance/containerGroupProfiles",
      location: profile.location,
      properties: { ...profile.revisions[revision - 1], revision },
    };
  }

  function poolJson(pool: StandbyPoolRecord): Record<string, unknown> {
    return {
      id: pool.id,
      name: pool.name,
      type: "Microsoft.StandbyPool/standbyContainerGroupPools",
      location: pool.location,
      tags: {},
      properties: {
        elasticityProfile: { maxReadyCapacity: pool.maxReadyCapacity, refillPolicy: "always" },
        provisioningState: "Succeeded",
        containerGroupProperties: { containerGroupProfile: pool.profile, subnetIds: pool.subnetIds },
      },
    };
  }

  function groupRequest(
    profile: ProfileRecord,
    revision: number,
    placement: { location: string; subnetIds: { id: string }[] },
  ): ContainerGroupRequest {
    const properties = structuredClone(
      profile.revisions[revision - 1],
    ) as ContainerGroupRequest["properties"];
    const { subnetIds } = placement;
    return {
      location: placement.location,
      properties: { ...properties, ...(subnetIds.length ? { subnetIds } : {}) },
    };
  }

  /** Keeps the pool at its ready capacity, unless it is degraded. */
  function fill(pool: StandbyPoolRecord): void {
    if (!pools.has(pool.id.toLowerCase()) || /degraded/i.test(pool.health.code)) return;
    const profile = profiles.get(pool.profile.id.toLowerCase());
    if (!profile) return;
    while (pool.members.length < pool.maxReadyCapacity) {
      const member = host.provision(
        groupRequest(profile, pool.profile.revision, pool),
        { resourceGroup: "(standby pool)", name: `${pool.name}-${randomUUID().slice(0, 8)}` },
        { profile: pool.profile, poolId: pool.id, fromPool: true, pooled: true },
        false,
      );
      pool.members.push(member);
    }
  }

  function applyConfigMaps(group: ContainerGroupRecord, body: ContainerGroupRequest): void {
    for (const requested of body.properties?.containers ?? []) {
      const container = group.containers.find((candidate) => candidate.name === requested.name);
      // A claim naming another container than the profile's came back with an empty config map (recorded claim).
      if (!container) continue;
      const pairs = (
        requested.properties?.configMap as { keyValuePairs?: Record<string, string> } | undefined
      )?.keyValuePairs;
      container.configMap = { ...(pairs ?? {}) };
      host.configMapChanged(group, container.name);
    }
  }

  /** Only config maps may be set at a claim (Azure/azure-cli issue 30898; status and code not verified). */
  function claimProblem(body: ContainerGroupRequest): Reply | undefined {
    const allowed = new Set(["containers", "containerGroupProfile", "standbyPoolProfile"]);
    const extraGroup = Object.keys(body.properties ?? {}).filter((key) => !allowed.has(key));
    const extraContainer = (body.properties?.containers ?? []).flatMap((container) =>
      Object.keys(container.properties ?? {}).filter((key) => key !== "configMap"),
    );
    if (extraGroup.length || extraContainer.length || body.identity !== undefined) {
      return armError(
        400,
        "InvalidRequestContent",
        "ContainerGroup properties other than config map are not allowed.",
      );
    }
    return undefined;
  }

  async function answerAfterLatency(reply: Reply): Promise<Reply> {
    const latency = timing.claimLatencyMs ?? 0;
    if (latency > 0) await new Promise<void>((resolve) => host.schedule(latency, resolve));
    return reply;
  }

  return {
    pools: () => [...pools.values()],
    pool: (id) => pools.get(id.toLowerCase()),
    setHealth(id, health) {
      const pool = pools.get(id.toLowerCase());
      if (!pool) throw new Error(`No standby pool ${id}`);
      pool.health = health;
      fill(pool);
    },

    retire(group) {
      const pool = pools.get((group.standby?.poolId ?? "").toLowerCase());
      if (!pool || !pool.members.includes(group)) return;
      pool.members.splice(pool.members.indexOf(group), 1);
      host.schedule(timing.refillDelayMs ?? 0, () => fill(pool));
    },

    putProfile(request, params) {
      const body = (request.body ?? {}) as { location?: string; properties?: Record<string, unknown> };
      const id = resourceId(params, "Microsoft.ContainerInstance/containerGroupProfiles", params.profile);
      const existing = profiles.get(id.toLowerCase());
      // The service sets the revision: one given in the body is not kept.
      const properties = { ...body.properties };
      delete properties.revision;
      const profile = existing ?? { id, name: params.profile, location: body.location ?? "", revisions: [] };
      profile.revisions.push(properties);
      profiles.set(id.toLowerCase(), profile);
      return { status: existing ? 200 : 201, body: profileJson(profile, profile.revisions.length) };
    },

    getProfile(request, params) {
      if (!host.granted(PROFILE_READ)) {
        return armError(
          403,
          "AuthorizationFailed",
          `The client does not have authorization to perform action '${PROFILE_READ}' over scope '${request.path}' or the scope is invalid.`,
        );
      }
      const id = resourceId(params, "Microsoft.ContainerInstance/containerGroupProfiles", params.profile);
      const profile = profiles.get(id.toLowerCase());
      if (!profile) {
        return armError(
          404,
          "ResourceNotFound",
          `The Resource 'Microsoft.ContainerInstance/containerGroupProfiles/${params.profile}' under resource group '${params.resourceGroup}' was not found.`,
        );
      }
      return { status: 200, body: profileJson(profile, profile.revisions.length) };
    },

    putPool(request, params) {
      const body = (request.body ?? {}) as {
        location?: string;
        properties?: {
          elasticityProfile?: { maxReadyCapacity?: number };
          containerGroupProperties?: {
            containerGroupProfile?: { id?: string; revision?: number };
            subnetIds?: { id: string }[];
          };
        };
      };
      const reference = body.properties?.containerGroupProperties?.containerGroupProfile;
      const profile = profiles.get((reference?.id ?? "").toLowerCase());
      const revision = reference?.revision ?? 0;
      if (!profile || revision < 1 || revision > profile.revisions.length) return missingRevision(reference);
      const id = resourceId(params, "Microsoft.StandbyPool/standbyContainerGroupPools", params.pool);
      const existing = pools.get(id.toLowerCase());
      const pool: StandbyPoolRecord = {
        id,
        name: params.pool,
        location: body.location ?? profile.location,
        maxReadyCapacity: body.properties?.elasticityProfile?.maxReadyCapacity ?? 1,
        profile: { id: profile.id, revision },
        subnetIds: body.properties?.containerGroupProperties?.subnetIds ?? [],
        // Changing the profile drains and replaces every member (Microsoft Learn, standby pool update).
        members:
          existing && sameId(existing.profile.id, profile.id) && existing.profile.revision === revision
            ? existing.members
            : [],
        health: existing?.health ?? HEALTHY,
      };
      pools.set(id.toLowerCase(), pool);
      fill(pool);
      return { status: existing ? 200 : 201, body: poolJson(pool) };
    },

    getPool(_request, params) {
      const pool = pools.get(
        resourceId(params, "Microsoft.StandbyPool/standbyContainerGroupPools", params.pool).toLowerCase(),
      );
      if (!pool) {
        return armError(
          404,
          "ResourceNotFound",
          `The Resource 'Microsoft.StandbyPool/standbyContainerGroupPools/${params.pool}' under resource group '${params.resourceGroup}' was not found.`,
        );
      }
      return { status: 200, body: poolJson(pool) };
    },

    getRuntimeView(_request, params) {
      const pool = pools.get(
        resourceId(params, "Microsoft.StandbyPool/standbyContainerGroupPools", params.pool).toLowerCase(),
      );
      if (!pool) return armError(404, "ResourceNotFound", `Standby pool '${params.pool}' was not found.`);
      const running = pool.members.filter(isRunning).length;
      return {
        status: 200,
        body: {
          id: `${pool.id}/runtimeViews/latest`,
          name: pool.name,
          type: "Microsoft.StandbyPool/standbyContainerGroupPools/runtimeViews",
          properties: {
            instanceCountSummary: [
              {
                instanceCountsByState: [
                  { state: "creating", count: pool.members.length - running },
                  { state: "running", count: running },
                  { state: "deleting", count: 0 },
                ],
              },
            ],
            provisioningState: "Succeeded",
            status: pool.health,
          },
        },
      };
    },

    async claim(body, resourceGroup, name) {
      const problem = claimProblem(body);
      if (problem) return problem;
      const reference = body.properties?.containerGroupProfile as
        { id?: string; revision?: number } | undefined;
      const profile = profiles.get((reference?.id ?? "").toLowerCase());
      if (!host.granted(PROFILE_READ)) {
        // ARM's wording for a linked resource the caller may not use (standins/faults.ts cites its sources).
        return armError(
          403,
          "LinkedAuthorizationFailed",
          `The client has permission to perform action '${GROUP_WRITE}' on scope '/subscriptions/${host.subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.ContainerInstance/containerGroups/${name}'; however, it does not have permission to perform action(s) '${PROFILE_READ}' on the linked scope(s) '${reference?.id ?? ""}' or the linked scope(s) are invalid.`,
        );
      }
      const revision = reference?.revision ?? 0;
      if (!profile || revision < 1 || revision > profile.revisions.length) return missingRevision(reference);
      const existing = host.existing(resourceGroup, name);
      if (existing?.standby) {
        // A PUT replaces the resource's tags (Azure Resource Manager's PUT semantics).
        existing.tags = body.tags;
        applyConfigMaps(existing, body);
        return { status: 200, body: host.json(existing) };
      }
      const standbyProfile = body.properties?.standbyPoolProfile as
        { id?: string; failContainerGroupCreateOnReuseFailure?: boolean } | undefined;
      const pool = standbyProfile?.id ? pools.get(standbyProfile.id.toLowerCase()) : undefined;
      const fits =
        pool !== undefined && sameId(pool.profile.id, profile.id) && pool.profile.revision === revision;
      const ready = fits ? pool.members.find(isRunning) : undefined;
      if (ready && pool) {
        pool.members.splice(pool.members.indexOf(ready), 1);
        ready.standby = { ...ready.standby!, pooled: false };
        host.adopt(ready, resourceGroup, name, body.tags);
        applyConfigMaps(ready, body);
        host.schedule(timing.refillDelayMs ?? 0, () => fill(pool));
        return answerAfterLatency({ status: 201, body: host.json(ready) });
      }
      if (standbyProfile?.failContainerGroupCreateOnReuseFailure) {
        return armError(
          409,
          "ContainerGroupReuseFromStandbyPoolFailed",
          `No container group could be obtained from standby pool '${standbyProfile.id ?? ""}', and failContainerGroupCreateOnReuseFailure is set.`,
        );
      }
      const group = host.provision(
        groupRequest(profile, revision, {
          location: body.location ?? pool?.location ?? profile.location,
          subnetIds: pool?.subnetIds ?? [],
        }),
        { resourceGroup, name },
        {
          profile: { id: profile.id, revision },
          poolId: standbyProfile?.id ?? "",
          fromPool: false,
          pooled: false,
        },
        true,
      );
      group.tags = body.tags;
      applyConfigMaps(group, body);
      return answerAfterLatency({ status: 201, body: host.json(group) });
    },
  };
}
