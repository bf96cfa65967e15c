import * as path from "node:path";
import * as tl from "azure-pipelines-task-lib/task";
import { PoolClient } from "../common/clients/azureDevOps";
import { UserError, errorMessage } from "../common/core/errors";
import * as pipeline from "../common/platform/pipeline";
import { createProvider } from "../common/providers/index";
import { teardownAgents } from "../common/teardown/teardownAgents";
import { parseTeardownInputs } from "../common/inputs/teardown";
import { teardownSummary } from "../common/teardown/summary";
import { CancelledError, DEFAULT_POLL_INTERVAL_MS } from "../common/core/timing";

const INPUTS = [
  "provider",
  "azureSubscription",
  "resourceGroup",
  "dockerEndpoint",
  "agentPool",
  "runKey",
  "agentNames",
  "agentNamePrefix",
  "token",
  "awaitTimeoutMinutes",
  "gracePeriodSeconds",
  "showLogs",
  "sweepOlderThanMinutes",
];

async function run(): Promise<void> {
  tl.setResourcePath(path.join(__dirname, "task.json"));
  const log = pipeline.pipelineLog;
  const signal = pipeline.cancellationSignal(log);
  const inputs = parseTeardownInputs(pipeline.readInputs(INPUTS));
  const { pollIntervalMs, retryPolicy } = pipeline.tuning(DEFAULT_POLL_INTERVAL_MS.teardown);
  const provider = createProvider(inputs, { pollIntervalMs, retryPolicy });
  const pools = await PoolClient.connect(
    pipeline.collectionUrl(),
    pipeline.registrationToken(inputs.token),
    retryPolicy,
  );

  const result = await teardownAgents(
    {
      pool: inputs.agentPool,
      runKey: inputs.runKey,
      agentNames: inputs.agentNames,
      agentNamePrefix: inputs.agentNamePrefix,
      awaitTimeoutMs: inputs.awaitTimeoutMinutes * 60_000,
      gracePeriodMs: inputs.gracePeriodSeconds * 1000,
      showLogs: inputs.showLogs,
      sweepOlderThanMinutes: inputs.sweepOlderThanMinutes,
      pollIntervalMs,
    },
    { provider, pools, log, signal, clock: Date.now },
  );
  pipeline.uploadSummary("ephemeral-agents-teardown", teardownSummary(result, inputs.runKey));
  if (result.agents.length === 0) {
    tl.setResult(tl.TaskResult.Succeeded, `Found no agents of run '${inputs.runKey}': nothing to remove.`);
  } else if (result.outcome === "Succeeded") {
    tl.setResult(tl.TaskResult.Succeeded, `Removed ${result.agents.length} agent(s); nothing is left.`);
  } else {
    tl.setResult(tl.TaskResult.SucceededWithIssues, result.issues.join(" "));
  }
}

run().catch((error: unknown) => {
  const message =
    error instanceof CancelledError
      ? "Cancelled before everything was removed: run the teardown again."
      : errorMessage(error);
  if (!(error instanceof UserError) && error instanceof Error && error.stack) tl.debug(error.stack);
  tl.setResult(tl.TaskResult.Failed, message);
  process.exit(1);
});
