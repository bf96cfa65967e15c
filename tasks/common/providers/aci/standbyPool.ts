// Azure Container Instances standby pools: what a warm start reads and sends. The SDK here (9.1.0) drops
// containerGroupProfile, standbyPoolProfile and configMap from its request bodies, and no standby pool SDK is
// reachable, so these calls are raw JSON through the container instance client's own pipeline (authentication,
// retries and proxy settings stay the SDK's). Shapes: Azure/azure-rest-api-specs, specification/standbypool
// (2025-03-01) and specification/containerinstance (2025-09-01, ContainerGroupCreateOrUpdateStandbyPool); the
// claim's behaviour: the recorded claim in Azure/azure-cli (test_container_reuse_from_standbypool.yaml). Copies and
// notes: standins/reference/aci/standby/.
import { tagsFor, type AgentIdentity } from "../../core/contract";
import { AccessError, InputError, UserError } from "../../core/errors";
import type { Log } from "../../core/log";
import type { AgentPublicKey } from "../../core/agentCredential";
import type { WarmStart } from "../../core/ports";
import { WARM_SETTINGS_KEYS, publicKeyInLog, type WarmAgentSettings } from "../../core/warmStart";

export const STANDBY_POOL_API = "2025-03-01";
/** The first stable version whose container group carries containerGroupProfile, standbyPoolProfile and configMap. */
export const CLAIM_API = "2025-09-01";
export const PROFILE_READ_ACTION = "Microsoft.ContainerInstance/containerGroupProfiles/read";
/** Set in the profile's container: the agent image then waits for its settings instead of starting at once. */
export const WARM_START_VARIABLE = "EPHEMERAL_AGENT_WARM_START";

export interface StandbyPoolSettings {
  standbyPool: string;
  containerGroupProfile?: string;
  containerGroupProfileRevision?: number;
  fallback: "cold" | "fail";
}

/** An answer of Resource Manager to a raw request; `body` is the parsed JSON, {} when there is none. */
export interface ArmAnswer {
  status: number;
  body: Record<string, unknown>;
  /** The body as sent, for an error message when it is not JSON. */
  text: string;
}

/** What the standby pool needs of the provider: raw requests, the permission check and error explanations. */
export interface ArmAccess {
  send(method: "GET" | "PUT", path: string, apiVersion: string, body?: object): Promise<ArmAnswer>;
  checkPermissions(scope: string, actions: readonly string[], scopeName: string): Promise<void>;
  /** Turns an ARM error answer into an error that names the fix. */
  explain(answer: ArmAnswer, action: string): Error;
  logs(name: string): Promise<string>;
  log: Log;
}

/** What prepare learned: where claimed groups live, their size and what the claim names. */
export interface StandbyPoolPlan {
  location: string;
  profile: { id: string; revision: number };
  container: string;
  cpu?: number;
  memoryGB?: number;
}

interface PoolResource {
  location?: string;
  properties?: {
    provisioningState?: string;
    elasticityProfile?: { maxReadyCapacity?: number };
    containerGroupProperties?: { containerGroupProfile?: { id?: string; revision?: number } };
  };
}

interface RuntimeView {
  properties?: {
    instanceCountSummary?: { instanceCountsByState?: { state?: string; count?: number }[] }[];
    status?: { code?: string; message?: string };
  };
}

interface ProfileResource {
  properties?: {
    revision?: number;
    osType?: string;
    containers?: {
      name?: string;
      properties?: {
        image?: string;
        environmentVariables?: { name?: string; value?: string }[];
        resources?: { requests?: { cpu?: number; memoryInGB?: number } };
      };
    }[];
  };
}

export class AciStandbyPool implements WarmStart {
  private plan: StandbyPoolPlan | undefined;
  /** The tags each claim set, sent again with the config map update: a PUT replaces a resource's tags. */
  private readonly claimTags = new Map<string, Record<string, string>>();

  constructor(
    private readonly settings: StandbyPoolSettings,
    private readonly resourceGroupPath: string,
    private readonly arm: ArmAccess,
  ) {}

  get description(): string {
    return `standby pool ${lastSegment(this.settings.standbyPool)}`;
  }

  /**
   * Reads the pool, its runtime view and its profile, and checks that a claim can work: read access on the profile
   * (a claim without it fails 403 LinkedAuthorizationFailed), a healthy pool with enough ready containers (or a
   * fallback that allows cold ones), and a profile whose one container is the agent image in warm mode.
   */
  async prepare(expected: {
    image: string;
    container: string;
    location?: string;
    count: number;
  }): Promise<StandbyPoolPlan> {
    const { standbyPool } = this.settings;
    const pool = await this.read<PoolResource>(standbyPool, STANDBY_POOL_API, "standbyPool", "standby pool");
    const poolProfile = pool.properties?.containerGroupProperties?.containerGroupProfile;
    if (!pool.location || !poolProfile?.id || poolProfile.revision === undefined) {
      throw new UserError(
        `Standby pool ${standbyPool} names no container group profile and revision, or no location: recreate it with containerGroupProperties.containerGroupProfile.`,
      );
    }
    if (
      expected.location &&
      !sameText(expected.location.replace(/\s/g, ""), pool.location.replace(/\s/g, ""))
    ) {
      throw new InputError(
        "location",
        `is '${expected.location}', but standby pool ${lastSegment(standbyPool)} is in '${pool.location}': claimed container groups are in the pool's region. Clear location.`,
      );
    }
    const profileId = this.settings.containerGroupProfile ?? poolProfile.id;
    if (!sameText(profileId, poolProfile.id)) {
      throw new InputError(
        "containerGroupProfile",
        `standby pool ${lastSegment(standbyPool)} is built from profile ${poolProfile.id}, not ${profileId}: a claim can only take the pool's containers. Clear containerGroupProfile, or use a pool built from it.`,
      );
    }
    const revision = this.settings.containerGroupProfileRevision ?? poolProfile.revision;
    if (revision !== poolProfile.revision) {
      throw new InputError(
        "containerGroupProfileRevision",
        `standby pool ${lastSegment(standbyPool)} holds containers of revision ${poolProfile.revision}, not ${revision}: clear containerGroupProfileRevision, or update the pool to that revision.`,
      );
    }
    await this.arm.checkPermissions(profileId, [PROFILE_READ_ACTION], `container group profile ${profileId}`);
    const profile = await this.read<ProfileResource>(
      profileId,
      CLAIM_API,
      "containerGroupProfile",
      "container group profile",
    );
    const container = checkProfile(profile, profileId, expected);
    await this.checkRuntimeView(expected.count);
    const requests = container.properties?.resources?.requests;
    this.plan = {
      location: pool.location,
      profile: { id: profileId, revision },
      container: expected.container,
      cpu: requests?.cpu,
      memoryGB: requests?.memoryInGB,
    };
    return this.plan;
  }

  async claim(identity: AgentIdentity): Promise<{ warm: boolean }> {
    const tags = tagsFor(identity);
    this.claimTags.set(identity.name, tags);
    const answer = await this.arm.send(
      "PUT",
      this.groupPath(identity.name),
      CLAIM_API,
      this.claimBody(tags, {}),
    );
    if (answer.status >= 400) throw this.claimError(answer, identity.name);
    const properties = answer.body.properties as { isCreatedFromStandbyPool?: boolean } | undefined;
    return { warm: properties?.isCreatedFromStandbyPool === true };
  }

  async publicKey(name: string): Promise<AgentPublicKey | undefined> {
    return publicKeyInLog(await this.arm.logs(name));
  }

  async deliver(name: string, settings: WarmAgentSettings): Promise<void> {
    const values = Object.fromEntries(WARM_SETTINGS_KEYS.map((key) => [key, settings[key]]));
    // Not verified against Azure: which body a claimed group accepts for a config map update. This sends the
    // claim's own shape again, the one body documented to set a config map on a pooled group.
    const answer = await this.arm.send(
      "PUT",
      this.groupPath(name),
      CLAIM_API,
      this.claimBody(this.claimTags.get(name), values),
    );
    if (answer.status >= 400) throw this.arm.explain(answer, `hand agent ${name} its settings (config map)`);
  }

  private claimBody(tags: Record<string, string> | undefined, keyValuePairs: Record<string, string>): object {
    const plan = this.requirePlan();
    return {
      location: plan.location,
      tags,
      properties: {
        containerGroupProfile: plan.profile,
        standbyPoolProfile: {
          id: this.settings.standbyPool,
          failContainerGroupCreateOnReuseFailure: this.settings.fallback === "fail",
        },
        containers: [{ name: plan.container, properties: { configMap: { keyValuePairs } } }],
      },
    };
  }

  private claimError(answer: ArmAnswer, name: string): Error {
    const error = answer.body.error as { code?: string; message?: string } | undefined;
    if (answer.status === 403 && error?.code === "LinkedAuthorizationFailed") {
      return new AccessError(
        `Azure refused to claim container group ${name} from ${this.description} (403 LinkedAuthorizationFailed): the service connection's identity needs ${PROFILE_READ_ACTION} on container group profile ${this.requirePlan().profile.id}, in a subscription of its own tenant: grant it 'Reader' on the profile. ${error.message ?? ""}`.trim(),
      );
    }
    const explained = this.arm.explain(answer, `claim container group ${name} from ${this.description}`);
    if (this.settings.fallback !== "fail" || answer.status >= 500) return explained;
    return new UserError(
      `${explained.message} standbyPoolFallback is fail: when the pool has no container ready, the claim fails instead of creating one cold. Raise the pool's maxReadyCapacity, or set standbyPoolFallback to cold.`,
    );
  }

  private async checkRuntimeView(count: number): Promise<void> {
    const { standbyPool, fallback } = this.settings;
    const answer = await this.arm.send("GET", `${standbyPool}/runtimeViews/latest`, STANDBY_POOL_API);
    if (answer.status >= 400) {
      this.arm.log.warn(
        `Could not read the runtime view of ${this.description} (${this.arm.explain(answer, "read it").message}); going on without knowing how many containers are ready.`,
      );
      return;
    }
    const view = answer.body as RuntimeView;
    const status = view.properties?.status;
    const ready = readyCount(view);
    const problems: string[] = [];
    if (status?.code && /degraded/i.test(status.code)) {
      problems.push(
        `${this.description} is degraded (${status.message ?? status.code}): it refills no containers until that is fixed (see the pool's health state in the portal)`,
      );
    }
    if (ready < count)
      problems.push(`${this.description} has ${ready} container(s) ready for ${count} agent(s)`);
    if (problems.length === 0) return;
    if (fallback === "fail") {
      throw new UserError(
        `${problems.join("; ")}. standbyPoolFallback is fail, so the claims would fail: fix the pool or raise its maxReadyCapacity, or set standbyPoolFallback to cold.`,
      );
    }
    this.arm.log.warn(
      `${problems.join("; ")}: the agents beyond the ready ones start cold, from the same profile.`,
    );
  }

  private async read<T>(id: string, apiVersion: string, input: string, what: string): Promise<T> {
    const answer = await this.arm.send("GET", id, apiVersion);
    if (answer.status === 404) {
      throw new InputError(
        input,
        `${what} ${id} does not exist: copy its resource ID from its JSON view in the portal.`,
      );
    }
    if (answer.status === 403) {
      throw new AccessError(
        `The service connection's identity may not read ${what} ${id}: grant it 'Reader' on it. ${this.arm.explain(answer, `read ${what} ${id}`).message}`,
      );
    }
    if (answer.status >= 400) throw this.arm.explain(answer, `read ${what} ${id}`);
    return answer.body as T;
  }

  private groupPath(name: string): string {
    return `${this.resourceGroupPath}/providers/Microsoft.ContainerInstance/containerGroups/${name}`;
  }

  private requirePlan(): StandbyPoolPlan {
    if (!this.plan) throw new Error("The standby pool was not prepared.");
    return this.plan;
  }
}

/** The profile's one container: the agent image, named as the claim names it, in warm mode, on Linux. */
function checkProfile(
  profile: ProfileResource,
  profileId: string,
  expected: { image: string; container: string },
): NonNullable<NonNullable<ProfileResource["properties"]>["containers"]>[number] {
  const containers = profile.properties?.containers ?? [];
  const where = `container group profile ${lastSegment(profileId)}`;
  if (containers.length !== 1) {
    throw new UserError(
      `${where} has ${containers.length} containers; a warm start claims groups of one container, the agent: give the profile exactly one container named '${expected.container}'.`,
    );
  }
  const [container] = containers;
  // A claim whose container name differs from the profile's loses its config map silently (recorded claim).
  if (container.name !== expected.container) {
    throw new UserError(
      `${where} names its container '${container.name ?? ""}', but a warm start hands settings to a container named '${expected.container}': rename the profile's container to '${expected.container}'.`,
    );
  }
  const image = container.properties?.image ?? "";
  if (image !== expected.image) {
    throw new InputError(
      "image",
      `is '${expected.image}', but ${where} runs '${image}': set image to the profile's image, or update the profile (and the pool) to this one.`,
    );
  }
  if (profile.properties?.osType && profile.properties.osType !== "Linux") {
    throw new UserError(
      `${where} is for ${profile.properties.osType} containers: a warm start needs the agent's own credential, which only Linux containers take. Use a Linux profile.`,
    );
  }
  const warmMode = (container.properties?.environmentVariables ?? []).some(
    (variable) => variable.name === WARM_START_VARIABLE && variable.value === "true",
  );
  if (!warmMode) {
    throw new UserError(
      `${where} does not start the agent image in warm mode, so its containers would never print a public key: add the environment variable ${WARM_START_VARIABLE}=true to its container, then update the pool to the new revision.`,
    );
  }
  return container;
}

/** Containers the runtime view counts as running, that is, ready to be claimed; states compare without case. */
function readyCount(view: RuntimeView): number {
  let ready = 0;
  for (const summary of view.properties?.instanceCountSummary ?? []) {
    for (const entry of summary.instanceCountsByState ?? []) {
      if (entry.state?.toLowerCase() === "running") ready += entry.count ?? 0;
    }
  }
  return ready;
}

function lastSegment(id: string): string {
  return id.split("/").filter(Boolean).at(-1) ?? id;
}

function sameText(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}
