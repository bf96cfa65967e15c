import { AzureDevOpsPools } from "../common/clients/azureDevOps";
import { DEFAULT_POLL_INTERVAL_MS } from "../common/core/timing";
import { parseTeardownInputs } from "../common/inputs/teardown";
import { collectionUrl, registrationToken } from "../common/platform/connections";
import { runTask } from "../common/platform/entry";
import { readInputs } from "../common/platform/inputs";
import { pricesFor } from "../common/platform/prices";
import { resolveProviderSettings } from "../common/platform/providerSettings";
import { retailPricesTuning, tuning } from "../common/platform/tuning";
import { createProvider } from "../common/providers";
import { teardownCost } from "../common/teardown/cost";
import { teardownOptions } from "../common/teardown/options";
import { teardownFailed, teardownSucceeded } from "../common/teardown/outcome";
import { teardownAgents } from "../common/teardown/teardownAgents";
import task from "./task.json";

runTask(
  __dirname,
  async ({ log, signal }) => {
    const inputs = parseTeardownInputs(readInputs(task.inputs));
    const { pollIntervalMs, retryPolicy } = tuning(DEFAULT_POLL_INTERVAL_MS.teardown);
    const settings = resolveProviderSettings(inputs, { pollIntervalMs, retryPolicy }, signal);
    const token = registrationToken(inputs.token);
    // Azure DevOps first: an unreachable organization or a refused token fails before the provider's SDK loads.
    const pools = await AzureDevOpsPools.connect(collectionUrl(), token, retryPolicy, signal, log);
    const provider = await createProvider(settings);
    const result = await teardownAgents(teardownOptions(inputs, pollIntervalMs), {
      provider,
      pools,
      log,
      signal,
      clock: Date.now,
    });
    const prices = pricesFor(settings, {
      estimateCost: inputs.estimateCost,
      ...retailPricesTuning(),
      signal,
    });
    return teardownSucceeded(result, inputs.runKey, await teardownCost(result.agents, prices));
  },
  teardownFailed,
);
