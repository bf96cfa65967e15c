import type { AgentProvider } from "../core/ports";
import type { AciSettings } from "./aci/aciProvider";
import type { DockerSettings } from "./docker/dockerProvider";

/** A provider's settings with every service connection resolved to plain values. */
export type ProviderSettings =
  { provider: "aci"; aci: AciSettings } | { provider: "docker"; docker: DockerSettings };

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
