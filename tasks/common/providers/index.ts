import type { AzureConnection } from "../clients/entra";
import type { Log } from "../core/log";
import type { AgentProvider } from "../core/ports";
import type { RetryPolicy } from "../core/retry";
import type { ProviderInputs } from "../inputs/providers";
import type { AciSettings } from "./aci/aciProvider";
import type { DockerSettings } from "./docker/dockerProvider";

/** A provider's settings with every service connection resolved to plain values. */
export type ProviderSettings =
  { provider: "aci"; aci: AciSettings } | { provider: "docker"; docker: DockerSettings };

/** What the aci provider is told besides its inputs and connections: timing, where to log, when to stop. */
export interface AciRuntime {
  pollIntervalMs: number;
  retryPolicy: RetryPolicy;
  log: Log;
  signal: AbortSignal;
}

/** The aci provider's settings from its inputs, the Azure connection and the registry connection, if any. */
export function aciSettings(
  inputs: Extract<ProviderInputs, { provider: "aci" }>,
  connection: AzureConnection,
  registry: { server: string; username: string; password: string } | undefined,
  runtime: AciRuntime,
): AciSettings {
  const { aci, image } = inputs;
  const registryIdentity = aci.registryIdentity;
  return {
    connection,
    resourceGroup: aci.resourceGroup,
    location: aci.location,
    subnetId: aci.subnetId,
    dnsServers: aci.dnsServers ?? [],
    cpu: aci.cpu ?? 1,
    memoryGB: aci.memoryGB ?? 2,
    osType: aci.osType ?? "Linux",
    registry:
      registry ??
      (registryIdentity && image ? { server: image.registry, identityId: registryIdentity } : undefined),
    registryIdentity,
    jobIdentity: aci.jobIdentity,
    standby: aci.standby && image ? { ...aci.standby, image: image.reference } : undefined,
    ...runtime,
  };
}

/**
 * Makes the provider. Each implementation is loaded only when chosen: the Docker client's dependencies
 * (gRPC, protobuf, ssh2) are not compiled on the aci path, nor the Azure SDK on the docker path.
 */
export async function createProvider(settings: ProviderSettings): Promise<AgentProvider> {
  switch (settings.provider) {
    case "aci": {
      const { AciProvider } = await import("./aci/aciProvider");
      return new AciProvider(settings.aci);
    }
    case "docker": {
      const { DockerProvider } = await import("./docker/dockerProvider");
      return new DockerProvider(settings.docker);
    }
  }
}
