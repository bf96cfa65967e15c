import * as pipeline from "../platform/pipeline";
import { checkRegistryMatches, type ImageReference } from "../inputs/references";
import type { ProviderName, PullPolicy } from "../inputs/start";
import { AciProvider } from "./aci/aciProvider";
import { DockerProvider } from "./docker/dockerProvider";
import type { AgentProvider } from "../core/ports";

/** The inputs that choose and configure a provider, shared by both tasks. */
export interface ProviderInputs {
  provider: ProviderName;
  image?: ImageReference;
  registryConnection?: string;
  aci?: {
    azureSubscription: string;
    resourceGroup: string;
    location?: string;
    subnetId?: string;
    dnsServers?: string[];
    registryIdentity?: string;
    cpu?: number;
    memoryGB?: number;
    osType?: "Linux" | "Windows";
  };
  docker?: { dockerEndpoint?: string; dockerNetwork?: string; pullPolicy?: PullPolicy };
}

/** Resolves the service connections the inputs name and makes the provider. */
export function createProvider(inputs: ProviderInputs, tuning: pipeline.Tuning): AgentProvider {
  const registry = inputs.registryConnection
    ? pipeline.readRegistryConnection(inputs.registryConnection)
    : undefined;
  if (registry && inputs.image) checkRegistryMatches(inputs.image, registry.server);
  if (inputs.provider === "docker") {
    const docker = inputs.docker ?? {};
    return new DockerProvider({
      connection: pipeline.readDockerConnection(docker.dockerEndpoint),
      network: docker.dockerNetwork,
      pullPolicy: docker.pullPolicy ?? "ifNotPresent",
      image: inputs.image?.reference,
      registry,
    });
  }
  const aci = inputs.aci!;
  const registryIdentity = aci.registryIdentity;
  return new AciProvider({
    connection: pipeline.readAzureConnection(aci.azureSubscription),
    resourceGroup: aci.resourceGroup,
    location: aci.location,
    subnetId: aci.subnetId,
    dnsServers: aci.dnsServers ?? [],
    cpu: aci.cpu ?? 1,
    memoryGB: aci.memoryGB ?? 2,
    osType: aci.osType ?? "Linux",
    registry:
      registry ??
      (registryIdentity && inputs.image
        ? { server: inputs.image.registry, identityId: registryIdentity }
        : undefined),
    registryIdentity,
    pollIntervalMs: tuning.pollIntervalMs,
    retryPolicy: tuning.retryPolicy,
  });
}
