import { InputError } from "../core/errors";
import {
  optional,
  parseBoolean,
  parseChoice,
  parseDecimal,
  parseInteger,
  parseList,
  parseRunKey,
  required,
  type RawInputs,
} from "./parse";
import { isValidAgentName, parseAgentNamePrefix } from "../core/naming";
import { PROVIDERS, parseResourceGroup } from "./providers";

export type TeardownInputs = TeardownCommonInputs &
  (
    | { provider: "aci"; aci: { azureSubscription: string; resourceGroup: string } }
    | { provider: "docker"; docker: { dockerEndpoint?: string } }
  );

interface TeardownCommonInputs {
  agentPool: string;
  runKey: string;
  agentNames: string[];
  agentNamePrefix: string;
  token?: string;
  awaitTimeoutMinutes: number;
  gracePeriodSeconds: number;
  showLogs: boolean;
  sweepOlderThanMinutes: number;
  /** Look up the containers' price (Azure Retail Prices API) for the summary. */
  estimateCost: boolean;
}

export function parseTeardownInputs(raw: RawInputs): TeardownInputs {
  const provider = parseChoice("provider", optional(raw, "provider") ?? "aci", PROVIDERS);
  const agentNames = parseList(raw.agentNames);
  const invalid = agentNames.find((name) => !isValidAgentName(name));
  if (invalid !== undefined) {
    throw new InputError(
      "agentNames",
      `'${invalid}' is not an agent name this extension makes: pass the start task's agentNames output, or leave it empty to find the agents by run key.`,
    );
  }
  const common: TeardownCommonInputs = {
    agentPool: required(raw, "agentPool", "the agent pool the start task used"),
    runKey: parseRunKey(required(raw, "runKey", "the start task's run key, such as $(Build.BuildId)")),
    agentNames,
    agentNamePrefix: parseAgentNamePrefix(optional(raw, "agentNamePrefix") ?? "ephemeral"),
    token: optional(raw, "token"),
    awaitTimeoutMinutes: parseDecimal("awaitTimeoutMinutes", optional(raw, "awaitTimeoutMinutes") ?? "30", {
      min: 0,
      max: 24 * 60,
    }),
    gracePeriodSeconds: parseInteger("gracePeriodSeconds", optional(raw, "gracePeriodSeconds") ?? "60", {
      min: 0,
      max: 3600,
    }),
    showLogs: parseBoolean("showLogs", raw.showLogs, true),
    estimateCost: parseBoolean("estimateCost", raw.estimateCost, true),
    sweepOlderThanMinutes: parseInteger(
      "sweepOlderThanMinutes",
      optional(raw, "sweepOlderThanMinutes") ?? "0",
      {
        min: 0,
        max: 365 * 24 * 60,
      },
    ),
  };
  if (provider === "docker") {
    return { ...common, provider, docker: { dockerEndpoint: optional(raw, "dockerEndpoint") } };
  }
  const azureSubscription = required(
    raw,
    "azureSubscription",
    "the Azure Resource Manager service connection the start task used",
  );
  const resourceGroup = parseResourceGroup(
    required(raw, "resourceGroup", "the resource group the start task used"),
  );
  return { ...common, provider, aci: { azureSubscription, resourceGroup } };
}
