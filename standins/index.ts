import { readFileSync } from "node:fs";
import { startArm, type AgentSimulation, type ArmStandin, type ArmStandinOptions } from "./arm";
import { startDevOps, type DevOpsStandin, type DevOpsStandinOptions } from "./devops";
import { startEntra, type EntraStandin, type EntraStandinOptions } from "./entra";
import {
  startRetailPrices,
  type RetailPricesStandin,
  type RetailPricesStandinOptions,
} from "./retail-prices";
import { APP_CERTIFICATE_PATH } from "./tls";

export * from "./arm";
export * from "./devops";
export * from "./entra";
export * from "./faults";
export * from "./retail-prices";
export type { ContainerGroupRecord, ContainerState } from "./arm-container-groups";
export type { Agent, JobRequest, Pool } from "./devops-state";
export { JobRejectedError } from "./devops-state";
export type { Interceptor, RecordedRequest, Reply, StandinRequest } from "./http-server";
export { preciseNow } from "./http-server";
export { APP_CERTIFICATE_PATH, CA_CERT_PATH } from "./tls";

/** Identifiers and secrets startAll() configures unless told otherwise. */
export const STANDIN_DEFAULTS = {
  tenantId: "11111111-1111-4111-8111-111111111111",
  clientId: "22222222-2222-4222-8222-222222222222",
  clientSecret: "standin-client-secret",
  managedIdentityClientId: "44444444-4444-4444-8444-444444444444",
  serviceConnectionId: "33333333-3333-4333-8333-333333333333",
  serviceConnectionName: "azure-agents",
  project: "myproject",
  poolName: "Default",
  /** Job access token with Manage on the Default pool. */
  jobToken: "standin-job-token",
  /** Token that can view but not manage pools. */
  readerToken: "standin-reader-token",
  subscriptionId: "00000000-0000-4000-8000-000000000001",
  resourceGroup: "rg-agents",
  location: "westeurope",
} as const;

export interface StartAllOptions {
  entra?: EntraStandinOptions;
  devops?: DevOpsStandinOptions;
  arm?: Omit<ArmStandinOptions, "tokenValidator" | "simulateAgents">;
  retailPrices?: RetailPricesStandinOptions;
  /** Agent simulation in ARM -> DevOps; default on. */
  simulateAgents?: false | Omit<AgentSimulation, "devops">;
}

export interface Standins {
  entra: EntraStandin;
  arm: ArmStandin;
  devops: DevOpsStandin;
  /** The Azure Retail Prices API, serving the saved East US Container Instances prices. */
  retailPrices: RetailPricesStandin;
  close(): Promise<void>;
}

/** Starts Entra ID, Azure DevOps and ARM stand-ins that trust each other; explicit options replace the defaults. */
export async function startAll(options: StartAllOptions = {}): Promise<Standins> {
  const defaults = STANDIN_DEFAULTS;
  const devops = await startDevOps({
    pools: [{ name: defaults.poolName, id: 1 }],
    tokens: [
      {
        token: defaults.jobToken,
        identity: { displayName: `Project Collection Build Service (myorg)` },
        poolRights: { [defaults.poolName]: "manage" },
      },
      { token: defaults.readerToken, identity: { displayName: "Pool Reader" }, defaultPoolRight: "view" },
    ],
    serviceConnections: [
      { id: defaults.serviceConnectionId, name: defaults.serviceConnectionName, project: defaults.project },
    ],
    ...options.devops,
  });
  const entra = await startEntra({
    apps: [
      {
        tenantId: defaults.tenantId,
        clientId: defaults.clientId,
        secret: defaults.clientSecret,
        certificatePem: readFileSync(APP_CERTIFICATE_PATH, "utf8"),
        federated: devops.serviceConnections.some(
          (connection) => connection.id === defaults.serviceConnectionId,
        )
          ? devops.federatedCredentialFor(defaults.serviceConnectionId)
          : undefined,
      },
    ],
    managedIdentities: [{ clientId: defaults.managedIdentityClientId, tenantId: defaults.tenantId }],
    ...options.entra,
  });
  entra.trustIssuer(devops.oidcIssuer);
  const arm = await startArm({
    subscriptionId: defaults.subscriptionId,
    resourceGroups: { [defaults.resourceGroup]: defaults.location },
    ...options.arm,
    tokenValidator: entra,
    simulateAgents: options.simulateAgents === false ? undefined : { devops, ...options.simulateAgents },
  });
  const retailPrices = await startRetailPrices(options.retailPrices);
  return {
    entra,
    arm,
    devops,
    retailPrices,
    async close() {
      await Promise.all([arm.close(), entra.close(), devops.close(), retailPrices.close()]);
    },
  };
}
