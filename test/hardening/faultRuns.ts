// What the fault-injection suites share: inputs, task runs against the stand-ins, end-state checks.
import assert from "node:assert/strict";
import { STANDIN_DEFAULTS, type StandinRequest, type StartAllOptions } from "../../standins";
import {
  ACI_INPUTS,
  AGENT_IMAGE,
  leftovers,
  runTask,
  startStandins,
  taskEnvironment,
  type Standins,
  type TaskRun,
} from "../../standins/taskProcess";
import { runStartInProcess, type InProcessRun } from "../tasks/inProcessRun";

export const { poolName } = STANDIN_DEFAULTS;
export const START_INPUTS = { ...ACI_INPUTS, image: AGENT_IMAGE, count: "3" };
export const TEARDOWN_INPUTS = { ...ACI_INPUTS, awaitTimeoutMinutes: "1", gracePeriodSeconds: "2" };

export type RequestLine = Pick<StandinRequest, "method" | "path">;

export const isAgentsQuery = (request: RequestLine) =>
  request.method === "GET" && /\/pools\/\d+\/agents$/.test(request.path);
export const isGroupPut = (request: RequestLine) =>
  request.method === "PUT" && /\/containerGroups\/[^/]+$/i.test(request.path);
export const isTokenRequest = (request: RequestLine) =>
  request.method === "POST" && request.path.endsWith("/oauth2/v2.0/token");

/** Agents per bundled start: each generates its RSA key in the task's process (about 0.3 s of CPU). */
export const BUNDLED_START_AGENTS = 2;

/** The bundled start task, with BUNDLED_START_AGENTS agents. */
export function start(standins: Standins, runKey: string): Promise<TaskRun> {
  return runTask(
    "StartEphemeralAgentV1",
    taskEnvironment(standins, { inputs: { ...START_INPUTS, count: String(BUNDLED_START_AGENTS), runKey } }),
  );
}

/** The start as its entry file runs it, in this process (test/tasks/inProcessRun.ts). */
export function startInProcess(
  standins: Standins,
  runKey: string,
  options: { retryBaseDelayMs?: number } = {},
): Promise<InProcessRun> {
  return runStartInProcess(standins, { inputs: { ...START_INPUTS, runKey }, ...options });
}

export function teardown(standins: Standins, inputs: Record<string, string>): Promise<TaskRun> {
  return runTask(
    "TeardownEphemeralAgentV1",
    taskEnvironment(standins, { inputs: { ...TEARDOWN_INPUTS, ...inputs } }),
  );
}

export function assertNothingLeft(standins: Standins, context: string): void {
  assert.deepEqual(leftovers(standins), { containers: [], agents: [] }, `nothing left ${context}`);
}

/** The `count` agents named in `agentNames` (the start's output) are online; `log` explains a failure. */
export function assertAgentsOnline(standins: Standins, agentNames: string, count: number, log: string): void {
  const names = agentNames.split(",");
  assert.equal(names.length, count, log);
  for (const name of names) assert.equal(standins.devops.agent(poolName, name)?.status, "online", name);
}

export function assertOnline(standins: Standins, run: TaskRun): void {
  assertAgentsOnline(standins, run.outputs.agentNames, BUNDLED_START_AGENTS, run.stdout);
}

export async function withStandins<T>(
  options: StartAllOptions,
  work: (standins: Standins) => Promise<T>,
): Promise<T> {
  const standins = await startStandins(options);
  try {
    return await work(standins);
  } finally {
    await standins.close();
  }
}
