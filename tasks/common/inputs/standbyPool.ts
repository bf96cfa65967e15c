import type { RegistrationMode } from "../core/contract";
import { InputError } from "../core/errors";
import { optional, parseChoice, parseInteger, type RawInputs } from "./parse";

/** What happens when the standby pool has no container ready: Azure creates one cold, or the claim fails. */
export const STANDBY_POOL_FALLBACKS = ["cold", "fail"] as const;
export type StandbyPoolFallback = (typeof STANDBY_POOL_FALLBACKS)[number];

/** A warm start: agents are claimed from an Azure Container Instances standby pool. */
export interface StandbyPoolInputs {
  standbyPool: string;
  /** The profile and revision the claim names; by default those the pool is built from. */
  containerGroupProfile?: string;
  containerGroupProfileRevision?: number;
  fallback: StandbyPoolFallback;
}

const STANDBY_POOL_ID =
  /^\/subscriptions\/[0-9a-fA-F-]{36}\/resourceGroups\/[-\w.()]+\/providers\/Microsoft\.StandbyPool\/standbyContainerGroupPools\/[-\w]+$/i;
const PROFILE_ID =
  /^\/subscriptions\/[0-9a-fA-F-]{36}\/resourceGroups\/[-\w.()]+\/providers\/Microsoft\.ContainerInstance\/containerGroupProfiles\/[-\w]+$/i;

/**
 * Inputs a claimed container group takes from its profile and pool, never from the task. cpu and memoryGB have
 * defaults, so they always arrive: the profile's size replaces them (the provider says so when they differ).
 */
const FROM_PROFILE: Readonly<Record<string, string>> = {
  subnetId: "the standby pool's subnet",
  dnsServers: "the container group profile",
  registryIdentity: "the container group profile",
  registryConnection: "the container group profile",
  jobIdentity: "the container group profile",
};

/** standbyPoolFallback is not among them: it has a default, so it always arrives. */
const STANDBY_ONLY = ["containerGroupProfile", "containerGroupProfileRevision"];

/**
 * The standby pool inputs, or undefined without a standby pool. A claim may carry only config maps, which are
 * plain text, so a warm start needs the agent's own credential; everything else comes from the profile.
 */
export function parseStandbyPoolInputs(
  raw: RawInputs,
  context: { provider: string; registration: RegistrationMode; osType?: string },
): StandbyPoolInputs | undefined {
  const standbyPool = optional(raw, "standbyPool");
  if (standbyPool === undefined) {
    const stray = STANDBY_ONLY.find((name) => optional(raw, name) !== undefined);
    if (stray) throw new InputError(stray, "applies only to a warm start: set standbyPool, or clear it.");
    return undefined;
  }
  if (context.provider !== "aci") {
    throw new InputError(
      "standbyPool",
      "standby pools are a feature of Azure Container Instances: use provider aci, or clear standbyPool.",
    );
  }
  if (!STANDBY_POOL_ID.test(standbyPool)) {
    throw new InputError(
      "standbyPool",
      `'${standbyPool}' is not a standby pool resource ID: use /subscriptions/<subscription id>/resourceGroups/<group>/providers/Microsoft.StandbyPool/standbyContainerGroupPools/<name> (the pool's JSON view shows it).`,
    );
  }
  if (context.registration !== "agentCredential") {
    throw new InputError(
      "registration",
      "a container claimed from a standby pool can be handed no secret (a claim carries only plain-text config maps), so it cannot get a registration token: use registration agentCredential, or clear standbyPool.",
    );
  }
  if (context.osType === "Windows") {
    throw new InputError(
      "osType",
      "a warm start needs the agent's own credential, which Windows containers cannot take: use a Linux profile and osType Linux, or clear standbyPool.",
    );
  }
  for (const [name, source] of Object.entries(FROM_PROFILE)) {
    if (optional(raw, name) !== undefined) {
      throw new InputError(
        name,
        `a container claimed from a standby pool takes it from ${source}: set it there, and clear ${name}.`,
      );
    }
  }
  const containerGroupProfile = optional(raw, "containerGroupProfile");
  if (containerGroupProfile !== undefined && !PROFILE_ID.test(containerGroupProfile)) {
    throw new InputError(
      "containerGroupProfile",
      `'${containerGroupProfile}' is not a container group profile resource ID: use /subscriptions/<subscription id>/resourceGroups/<group>/providers/Microsoft.ContainerInstance/containerGroupProfiles/<name>, or clear it to use the pool's.`,
    );
  }
  const revision = optional(raw, "containerGroupProfileRevision");
  return {
    standbyPool,
    containerGroupProfile,
    containerGroupProfileRevision:
      revision === undefined
        ? undefined
        : parseInteger("containerGroupProfileRevision", revision, { min: 1, max: 1_000_000 }),
    fallback: parseChoice(
      "standbyPoolFallback",
      optional(raw, "standbyPoolFallback") ?? "cold",
      STANDBY_POOL_FALLBACKS,
    ),
  };
}
