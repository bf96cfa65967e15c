// What a platform engineer sets up once for a warm start, as the ARM requests `az container container-group-profile
// create` and `az standby-container-group-pool create` send: a container group profile running the agent image in
// warm mode, and a standby pool built from it. Tests, the demo and the bench use it against the ARM stand-in.
import { ClientSecretCredential } from "@azure/identity";
import { STANDIN_DEFAULTS, type Standins } from ".";

export const STANDBY_API = { profile: "2025-09-01", pool: "2025-03-01" } as const;

export interface StandbyPoolSetup {
  image: string;
  /** Containers the pool keeps ready; default 1. */
  readyCapacity?: number;
  /** The container's name in the profile; default "agent", the name the start task requires. */
  containerName?: string;
  /** Environment of the profile's container; default warm mode on. */
  environment?: Array<{ name: string; value?: string; secureValue?: string }>;
  resourceGroup?: string;
  name?: string;
  /** The service principal's secret, when a test changed it from the stand-ins' default. */
  clientSecret?: string;
}

export interface StandbyPoolIds {
  profileId: string;
  poolId: string;
}

/** A token for the ARM stand-in, as the service connection's app gets it. */
export async function armToken(
  standins: Standins,
  clientSecret: string = STANDIN_DEFAULTS.clientSecret,
): Promise<string> {
  const { tenantId, clientId } = STANDIN_DEFAULTS;
  const credential = new ClientSecretCredential(tenantId, clientId, clientSecret, {
    authorityHost: standins.entra.url,
    disableInstanceDiscovery: true,
  });
  return (await credential.getToken(`${standins.arm.url}/.default`)).token;
}

/** One raw ARM request with a bearer token. */
export async function armRequest(
  standins: Standins,
  token: string,
  method: "GET" | "PUT" | "DELETE",
  path: string,
  apiVersion: string,
  body?: object,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${standins.arm.url}${path}?api-version=${apiVersion}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

export async function createStandbyPool(
  standins: Standins,
  setup: StandbyPoolSetup,
): Promise<StandbyPoolIds> {
  const token = await armToken(standins, setup.clientSecret);
  const resourceGroup = setup.resourceGroup ?? STANDIN_DEFAULTS.resourceGroup;
  const name = setup.name ?? "agents";
  const base = `/subscriptions/${standins.arm.subscriptionId}/resourceGroups/${resourceGroup}/providers`;
  const profilePath = `${base}/Microsoft.ContainerInstance/containerGroupProfiles/${name}-profile`;
  const profile = await armRequest(standins, token, "PUT", profilePath, STANDBY_API.profile, {
    location: STANDIN_DEFAULTS.location,
    properties: {
      sku: "Standard",
      osType: "Linux",
      restartPolicy: "Never",
      containers: [
        {
          name: setup.containerName ?? "agent",
          properties: {
            image: setup.image,
            environmentVariables: setup.environment ?? [
              { name: "EPHEMERAL_AGENT_WARM_START", value: "true" },
            ],
            resources: { requests: { cpu: 1, memoryInGB: 2 } },
          },
        },
      ],
    },
  });
  if (profile.status >= 300)
    throw new Error(`profile: HTTP ${profile.status} ${JSON.stringify(profile.body)}`);
  const revision = (profile.body.properties as { revision: number }).revision;
  const poolPath = `${base}/Microsoft.StandbyPool/standbyContainerGroupPools/${name}`;
  const pool = await armRequest(standins, token, "PUT", poolPath, STANDBY_API.pool, {
    location: STANDIN_DEFAULTS.location,
    properties: {
      elasticityProfile: { maxReadyCapacity: setup.readyCapacity ?? 1, refillPolicy: "always" },
      containerGroupProperties: { containerGroupProfile: { id: profilePath, revision } },
    },
  });
  if (pool.status >= 300) throw new Error(`pool: HTTP ${pool.status} ${JSON.stringify(pool.body)}`);
  return { profileId: profilePath, poolId: poolPath };
}

/** Waits until the pool has `count` containers running, ready to be claimed. */
export async function poolReady(
  standins: Standins,
  poolId: string,
  count: number,
  timeoutMs = 60_000,
): Promise<void> {
  const started = Date.now();
  for (;;) {
    const pool = standins.arm.standbyPools.pool(poolId);
    const running = (pool?.members ?? []).filter(
      (member) =>
        member.provisioningState === "Succeeded" && member.containers[0]?.currentState?.state === "Running",
    );
    if (running.length >= count) return;
    if (Date.now() - started > timeoutMs)
      throw new Error(`standby pool ${poolId} has ${running.length} of ${count} ready`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
