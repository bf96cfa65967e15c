import type { ProviderInputs } from "../inputs/providers";
import { checkRegistryMatches } from "../inputs/references";
import { aciSettings, type ProviderSettings } from "../providers";
import { readAzureConnection, readDockerConnection, readRegistryConnection } from "./connections";
import { pipelineLog } from "./log";
import type { Tuning } from "./tuning";

/** Resolves the service connections the inputs name into the provider's settings. */
export function resolveProviderSettings(
  inputs: ProviderInputs,
  tuning: Tuning,
  signal: AbortSignal,
): ProviderSettings {
  const registry = inputs.registryConnection ? readRegistryConnection(inputs.registryConnection) : undefined;
  if (registry && inputs.image) checkRegistryMatches(inputs.image, registry.server);
  if (inputs.provider === "docker") {
    return {
      provider: "docker",
      docker: {
        connection: readDockerConnection(inputs.docker.dockerEndpoint),
        network: inputs.docker.dockerNetwork,
        pullPolicy: inputs.docker.pullPolicy ?? "ifNotPresent",
        image: inputs.image?.reference,
        registry,
        shareEngine: inputs.docker.shareDockerEngine ?? false,
        log: pipelineLog,
      },
    };
  }
  return {
    provider: "aci",
    aci: aciSettings(inputs, readAzureConnection(inputs.aci.azureSubscription), registry, {
      ...tuning,
      log: pipelineLog,
      signal,
    }),
  };
}
