// Runs the start and the teardown the way their entry files do (tasks/<Task>/index.ts), inside the test process:
// the real inputs parsing, the real AciProvider and AzureDevOpsPools against the stand-ins over https, the pure
// orchestration and the same outcome mapping. What stays out is the platform layer (the task library): reading
// inputs and service connections from the environment, and reporting the outcome to the agent. A few suites
// still run the bundled tasks as processes, for that layer and the entry points themselves. The two run functions
// follow their entry file step by step: a change of order there belongs here too.
import { randomBytes } from "node:crypto";
import { AzureDevOpsPools } from "../../tasks/common/clients/azureDevOps";
import type { AzureConnection } from "../../tasks/common/clients/entra";
import type { Log } from "../../tasks/common/core/log";
import { newLaunchId } from "../../tasks/common/core/naming";
import type { TaskOutcome } from "../../tasks/common/core/outcome";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../../tasks/common/core/retry";
import type { RawInputs } from "../../tasks/common/inputs/parse";
import type { ProviderInputs } from "../../tasks/common/inputs/providers";
import { parseStartInputs } from "../../tasks/common/inputs/start";
import { parseTeardownInputs } from "../../tasks/common/inputs/teardown";
import {
  aciSettings,
  createProvider,
  type AciRuntime,
  type ProviderSettings,
} from "../../tasks/common/providers";
import { pricesFor } from "../../tasks/common/platform/prices";
import { startCost } from "../../tasks/common/start/cost";
import { startOptions } from "../../tasks/common/start/options";
import { startFailed, startSucceeded } from "../../tasks/common/start/outcome";
import { startAgents } from "../../tasks/common/start/startAgents";
import { teardownCost } from "../../tasks/common/teardown/cost";
import { teardownOptions } from "../../tasks/common/teardown/options";
import { teardownFailed, teardownSucceeded } from "../../tasks/common/teardown/outcome";
import { teardownAgents } from "../../tasks/common/teardown/teardownAgents";
import startTask from "../../tasks/StartEphemeralAgentV1/task.json";
import { reusedAgentKey } from "../agentKeys";
import teardownTask from "../../tasks/TeardownEphemeralAgentV1/task.json";
import { STANDIN_DEFAULTS } from "../../standins";
import { ARM_CONNECTION, type StandinAddresses } from "../../standins/taskProcess";

/** The timing the task-process tests set through EPHEMERAL_AGENT_POLL_INTERVAL_MS and _RETRY_BASE_MS. */
const POLL_INTERVAL_MS = 100;
const RETRY_BASE_DELAY_MS = 20;

/** The retry policy platform/tuning.ts makes of a base delay. */
function retryPolicy(baseDelayMs: number): RetryPolicy {
  return { attempts: DEFAULT_RETRY_POLICY.attempts, baseDelayMs, maxDelayMs: baseDelayMs * 30 };
}

/** A log that keeps every line in order, and the warnings also on their own. */
export class CapturingLog implements Log {
  readonly lines: string[] = [];
  readonly warnings: string[] = [];

  info(message: string): void {
    this.lines.push(message);
  }

  warn(message: string): void {
    this.warnings.push(message);
    this.lines.push(`##[warning]${message}`);
  }

  group(title: string, lines: string): void {
    this.lines.push(`##[group]${title}`, lines, "##[endgroup]");
  }
}

/** What one in-process run of a task ended with. */
export interface InProcessRun {
  outcome: TaskOutcome;
  /** Everything the run logged, one line per entry, warnings marked as the agent shows them. */
  log: string;
  warnings: string[];
}

export interface InProcessOptions {
  /** The task's inputs by their task.json names, as the agent passes them (INPUT_<name>). */
  inputs: Record<string, string>;
  /** The job's access token, used when the `token` input is empty. */
  jobToken?: string;
  /** Cancels the run, as the agent's cancellation does. */
  signal?: AbortSignal;
  /** The retry policy's base delay (EPHEMERAL_AGENT_RETRY_BASE_MS); 20 ms unless given. */
  retryBaseDelayMs?: number;
  /** How long a price lookup may take (EPHEMERAL_AGENT_RETAIL_PRICES_TIMEOUT_MS); 5 s unless given. */
  retailPricesTimeoutMs?: number;
}

/** platform/tuning.ts retailPricesTuning, pointed at the stand-ins' Retail Prices API. */
function retailPrices(standins: StandinAddresses, options: InProcessOptions) {
  if (!standins.retailPrices) throw new Error("the in-process runs need the Retail Prices stand-in");
  return { url: standins.retailPrices.url, timeoutMs: options.retailPricesTimeoutMs ?? 5000 };
}

/** The inputs keyed as platform/inputs.ts readInputs keys them: by an input's first alias, else its name. */
function rawInputs(declared: readonly { name: string; aliases?: string[] }[], given: Record<string, string>) {
  const raw: Record<string, string | undefined> = {};
  for (const input of declared) raw[input.aliases?.[0] ?? input.name] = given[input.name];
  return raw as RawInputs;
}

/** The stand-ins' Azure Resource Manager connection (service principal with a secret), as readAzureConnection reads it. */
function standinAzureConnection(standins: StandinAddresses, id: string): AzureConnection {
  if (id !== ARM_CONNECTION) throw new Error(`the stand-ins have no Azure connection '${id}'`);
  const { tenantId, clientId, clientSecret, subscriptionId } = STANDIN_DEFAULTS;
  return {
    armUrl: `${standins.arm.url}/`,
    authorityHost: `${standins.entra.url}/`,
    audience: standins.arm.url,
    subscriptionId,
    tenantId,
    authentication: { scheme: "servicePrincipalSecret", clientId, secret: clientSecret },
  };
}

/** platform/providerSettings.ts resolveProviderSettings, for provider aci and the stand-ins' connection. */
function standinProviderSettings(
  standins: StandinAddresses,
  inputs: ProviderInputs,
  runtime: AciRuntime,
): ProviderSettings {
  if (inputs.provider !== "aci") throw new Error("the in-process runs cover provider aci only");
  if (inputs.registryConnection) throw new Error("the in-process runs resolve no registry connection");
  const connection = standinAzureConnection(standins, inputs.aci.azureSubscription);
  return { provider: "aci", aci: aciSettings(inputs, connection, undefined, runtime) };
}

/** What both tasks' steps share in this process: the log, the signal, the retry policy, the stand-ins' address. */
interface InProcessTask {
  log: CapturingLog;
  signal: AbortSignal;
  policy: RetryPolicy;
  collectionUrl: string;
}

/** Runs a task's steps and maps a failure as the entry wrapper does (platform/entry.ts runTask). */
async function runInProcess(
  standins: StandinAddresses,
  options: InProcessOptions,
  steps: (task: InProcessTask) => Promise<TaskOutcome>,
  failed: (error: unknown) => TaskOutcome,
): Promise<InProcessRun> {
  const task: InProcessTask = {
    log: new CapturingLog(),
    signal: options.signal ?? new AbortController().signal,
    policy: retryPolicy(options.retryBaseDelayMs ?? RETRY_BASE_DELAY_MS),
    collectionUrl: standins.devops.url,
  };
  const outcome = await steps(task).catch(failed);
  return { outcome, log: task.log.lines.join("\n"), warnings: task.log.warnings };
}

/** tasks/StartEphemeralAgentV1/index.ts, in this process. */
export function runStartInProcess(
  standins: StandinAddresses,
  options: InProcessOptions,
): Promise<InProcessRun> {
  return runInProcess(
    standins,
    options,
    async ({ log, signal, policy, collectionUrl }) => {
      const inputs = parseStartInputs(rawInputs(startTask.inputs, options.inputs));
      const token = inputs.token ?? options.jobToken ?? STANDIN_DEFAULTS.jobToken;
      const runtime = { pollIntervalMs: POLL_INTERVAL_MS, retryPolicy: policy, log, signal };
      const settings = standinProviderSettings(standins, inputs, runtime);
      const pools = await AzureDevOpsPools.connect(collectionUrl, token, policy, signal, log);
      const provider = await createProvider(settings);
      const result = await startAgents(startOptions(inputs, { collectionUrl, token }, POLL_INTERVAL_MS), {
        provider,
        pools,
        log,
        signal,
        clock: Date.now,
        launchId: newLaunchId(randomBytes),
        newAgentKey: reusedAgentKey,
      });
      const lookup = { estimateCost: inputs.estimateCost, ...retailPrices(standins, options), signal };
      const prices = pricesFor(settings, lookup);
      return startSucceeded(result, await startCost(provider.billedSize, result.agents.length, prices));
    },
    startFailed,
  );
}

/** tasks/TeardownEphemeralAgentV1/index.ts, in this process. */
export function runTeardownInProcess(
  standins: StandinAddresses,
  options: InProcessOptions,
): Promise<InProcessRun> {
  return runInProcess(
    standins,
    options,
    async ({ log, signal, policy, collectionUrl }) => {
      const inputs = parseTeardownInputs(rawInputs(teardownTask.inputs, options.inputs));
      const runtime = { pollIntervalMs: POLL_INTERVAL_MS, retryPolicy: policy, log, signal };
      const settings = standinProviderSettings(standins, inputs, runtime);
      const token = inputs.token ?? options.jobToken ?? STANDIN_DEFAULTS.jobToken;
      const pools = await AzureDevOpsPools.connect(collectionUrl, token, policy, signal, log);
      const provider = await createProvider(settings);
      const result = await teardownAgents(teardownOptions(inputs, POLL_INTERVAL_MS), {
        provider,
        pools,
        log,
        signal,
        clock: Date.now,
      });
      const lookup = { estimateCost: inputs.estimateCost, ...retailPrices(standins, options), signal };
      const prices = pricesFor(settings, lookup);
      return teardownSucceeded(result, inputs.runKey, await teardownCost(result.agents, prices));
    },
    teardownFailed,
  );
}
