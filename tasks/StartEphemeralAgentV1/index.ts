import { randomBytes } from "node:crypto";
import * as path from "node:path";
import * as tl from "azure-pipelines-task-lib/task";
import { PoolClient } from "../common/clients/azureDevOps";
import { UserError, errorMessage } from "../common/core/errors";
import { newLaunchId } from "../common/core/naming";
import * as pipeline from "../common/platform/pipeline";
import { createProvider } from "../common/providers/index";
import { StartFailure, isCancellation, startAgents, type StartResult } from "../common/start/startAgents";
import { parseStartInputs } from "../common/inputs/start";
import { startSummary } from "../common/start/summary";
import { DEFAULT_POLL_INTERVAL_MS } from "../common/core/timing";

const INPUTS = [
  "provider",
  "azureSubscription",
  "resourceGroup",
  "location",
  "subnetId",
  "dnsServers",
  "dockerEndpoint",
  "dockerNetwork",
  "pullPolicy",
  "image",
  "registryConnection",
  "registryIdentity",
  "cpu",
  "memoryGB",
  "osType",
  "agentPool",
  "agentNamePrefix",
  "count",
  "runKey",
  "token",
  "environment",
  "onlineTimeoutMinutes",
  "maxLifetimeMinutes",
  "keepOnFailure",
];

async function run(): Promise<void> {
  tl.setResourcePath(path.join(__dirname, "task.json"));
  const log = pipeline.pipelineLog;
  const signal = pipeline.cancellationSignal(log);
  const inputs = parseStartInputs(pipeline.readInputs(INPUTS));
  const token = pipeline.registrationToken(inputs.token);
  const { pollIntervalMs, retryPolicy } = pipeline.tuning(DEFAULT_POLL_INTERVAL_MS.start);
  const provider = createProvider(inputs, { pollIntervalMs, retryPolicy });
  const pools = await PoolClient.connect(pipeline.collectionUrl(), token, retryPolicy);

  const result = await startAgents(
    {
      pool: inputs.agentPool,
      runKey: inputs.runKey,
      namePrefix: inputs.agentNamePrefix,
      count: inputs.count,
      image: inputs.image.reference,
      collectionUrl: pipeline.collectionUrl(),
      token,
      environment: inputs.environment,
      onlineTimeoutMs: inputs.onlineTimeoutMinutes * 60_000,
      maxLifetimeMinutes: inputs.maxLifetimeMinutes,
      keepOnFailure: inputs.keepOnFailure,
      pollIntervalMs,
    },
    { provider, pools, log, signal, clock: Date.now, launchId: newLaunchId(randomBytes) },
  );
  setOutputs(result);
  pipeline.uploadSummary("ephemeral-agents-start", startSummary(result, "online"));
  tl.setResult(tl.TaskResult.Succeeded, `${result.agents.length} agent(s) online in pool '${result.pool}'.`);
}

function setOutputs(result: StartResult): void {
  const names = result.agents.map((agent) => agent.name);
  tl.setVariable("agentName", names[0], false, true);
  tl.setVariable("agentNames", names.join(","), false, true);
  tl.setVariable("agentPool", result.pool, false, true);
  tl.setVariable("runKey", result.runKey, false, true);
  tl.setVariable("demand", result.demand, false, true);
}

run().catch((error: unknown) => {
  if (error instanceof StartFailure) {
    pipeline.uploadSummary("ephemeral-agents-start", startSummary(error.result, "failed"));
  }
  const cause = error instanceof StartFailure ? error.cause : error;
  const message = isCancellation(error) ? "Cancelled; removed what this task created." : errorMessage(cause);
  if (!(cause instanceof UserError) && cause instanceof Error && cause.stack) tl.debug(cause.stack);
  tl.setResult(tl.TaskResult.Failed, message);
  // The cancellation listeners would keep a cancelled task alive; it has nothing left to do.
  process.exit(1);
});
