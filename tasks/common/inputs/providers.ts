import type { PullPolicy } from "../core/dockerEngine";
import { InputError } from "../core/errors";
import type { ImageReference } from "./references";
import type { StandbyPoolInputs } from "./standbyPool";

export const PROVIDERS = ["aci", "docker"] as const;
export type ProviderName = (typeof PROVIDERS)[number];
export const OS_TYPES = ["Linux", "Windows"] as const;
export type OsType = (typeof OS_TYPES)[number];

/** What both tasks' inputs say about the provider; service connections are still named, not resolved. */
export type ProviderInputs =
  | {
      provider: "aci";
      image?: ImageReference;
      registryConnection?: string;
      aci: {
        azureSubscription: string;
        resourceGroup: string;
        location?: string;
        subnetId?: string;
        dnsServers?: string[];
        registryIdentity?: string;
        jobIdentity?: string;
        standby?: StandbyPoolInputs;
        cpu?: number;
        memoryGB?: number;
        osType?: OsType;
      };
    }
  | {
      provider: "docker";
      image?: ImageReference;
      registryConnection?: string;
      docker: {
        dockerEndpoint?: string;
        dockerNetwork?: string;
        pullPolicy?: PullPolicy;
        shareDockerEngine?: boolean;
      };
    };

const RESOURCE_GROUP = /^[-\w.()]{1,89}[-\w()]$|^[-\w()]$/u;

export function parseResourceGroup(value: string): string {
  if (!RESOURCE_GROUP.test(value)) {
    throw new InputError(
      "resourceGroup",
      `'${value}' is not a resource group name: use up to 90 letters, digits, '-', '_', '.', '(' or ')', not ending with '.'.`,
    );
  }
  return value;
}
