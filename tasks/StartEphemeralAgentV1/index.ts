import { randomBytes } from "node:crypto";
import { AzureDevOpsPools } from "../common/clients/azureDevOps";
import { generateAgentKey } from "../common/core/agentCredential";
import { newLaunchId } from "../common/core/naming";
import { DEFAULT_POLL_INTERVAL_MS } from "../common/core/timing";
import { parseStartInputs } from "../common/inputs/start";
import { collectionUrl, registrationToken } from "../common/platform/connections";
import { runTask } from "../common/platform/entry";
import { readInputs } from "../common/platform/inputs";
import { pricesFor } from "../common/platform/prices";
import { resolveProviderSettings } from "../common/platform/providerSettings";
import { retailPricesTuning, tuning } from "../common/platform/tuning";
import { createProvider } from "../common/providers";
import { startCost } from "../common/start/cost";
import { startOptions } from "../common/start/options";
import { startFailed, startSucceeded } from "../common/start/outcome";
import { startAgents } from "../common/start/startAgents";
import task from "./task.json";

runTask(
  __dirname,
  async ({ log, signal }) => {
    const inputs = parseStartInputs(readInputs(task.inputs));
    const token = registrationToken(inputs.token);
    const { pollIntervalMs, retryPolicy } = tuning(DEFAULT_POLL_INTERVAL_MS.start);
    const settings = resolveProviderSettings(inputs, { pollIntervalMs, retryPolicy }, signal);
    // Azure DevOps first: an unreachable organization or a refused token fails before the provider's SDK loads.
    const pools = await AzureDevOpsPools.connect(collectionUrl(), token, retryPolicy, signal, log);
    const provider = await createProvider(settings);
    const result = await startAgents(
      startOptions(inputs, { collectionUrl: collectionUrl(), token }, pollIntervalMs),
      {
        provider,
        pools,
        log,
        signal,
        clock: Date.now,
        launchId: newLaunchId(randomBytes),
        newAgentKey: generateAgentKey,
      },
    );
    const prices = pricesFor(settings, {
      estimateCost: inputs.estimateCost,
      ...retailPricesTuning(),
      signal,
    });
    return startSucceeded(result, await startCost(provider.billedSize, result.agents.length, prices));
  },
  startFailed,
);
