// What the end-to-end runs share: the stand-in organization the agents in containers talk to, the task
// inputs for both providers, and the containers a run leaves on the local Docker engine.
import type Docker from "dockerode";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { TAG } from "../tasks/common/core/contract";
import { STANDIN_DEFAULTS, startAll, type StartAllOptions, type Standins } from ".";
import { runTask, taskEnvironment, type TaskRun } from "./taskProcess";
import { docker, packFakeAgent } from "./images";

export const POOL = STANDIN_DEFAULTS.poolName;
/** The job's access token: the tasks use it, and the start task hands it to the agents. */
export const JOB_TOKEN = STANDIN_DEFAULTS.jobToken;
const TASK_TIMEOUT_MS = 3 * 60_000;

export interface Organization {
  standins: Standins;
  close(): Promise<void>;
}

/**
 * Azure DevOps, Entra ID and ARM stand-ins. Azure DevOps speaks http, since the curl in the agent image
 * trusts no test CA, and serves the stand-in agent package; real agents register, so no simulated ones.
 */
export async function startOrganization(arm: StartAllOptions["arm"] = {}): Promise<Organization> {
  const packageDirectory = await mkdtemp(path.join(os.tmpdir(), "fake-agent-package-"));
  try {
    const agentPackagePath = await packFakeAgent(path.join(packageDirectory, "vsts-agent.tar.gz"));
    const standins = await startAll({
      devops: { protocol: "http", agentPackagePath, longPollMs: 500 },
      arm,
      simulateAgents: false,
    });
    return {
      standins,
      async close() {
        await standins.close();
        await rm(packageDirectory, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(packageDirectory, { recursive: true, force: true });
    throw error;
  }
}

/** A run key no other run on this engine uses. */
export function newRunKey(): string {
  return `e2e-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}

export type Provider = "docker" | "aci";

/** Inputs both tasks take to reach the provider. */
const CONNECTION_INPUTS: Record<Provider, Record<string, string>> = {
  docker: { provider: "docker" },
  aci: {
    provider: "aci",
    connectedServiceNameARM: STANDIN_DEFAULTS.serviceConnectionId,
    resourceGroup: STANDIN_DEFAULTS.resourceGroup,
  },
};

/** Inputs only the start task takes; host network so that the agents reach the stand-ins on 127.0.0.1. */
const LAUNCH_INPUTS: Record<Provider, Record<string, string>> = {
  docker: { pullPolicy: "never", dockerNetwork: "host" },
  aci: {},
};

export function startInputs(
  provider: Provider,
  image: string,
  runKey: string,
  more: Record<string, string> = {},
): Record<string, string> {
  return {
    ...CONNECTION_INPUTS[provider],
    ...LAUNCH_INPUTS[provider],
    image,
    agentPool: POOL,
    runKey,
    ...more,
  };
}

export function teardownInputs(
  provider: Provider,
  runKey: string,
  more: Record<string, string> = {},
): Record<string, string> {
  return { ...CONNECTION_INPUTS[provider], agentPool: POOL, runKey, ...more };
}

/** Runs a bundled task (dist/) as the agent would, against the organization. */
export function runBundledTask(
  organization: Organization,
  task: "StartEphemeralAgentV1" | "TeardownEphemeralAgentV1",
  inputs: Record<string, string>,
): Promise<TaskRun> {
  return runTask(task, taskEnvironment(organization.standins, { inputs }), { timeoutMs: TASK_TIMEOUT_MS });
}

/** Containers of a run on the local engine, running or not: the start task's labels or the ACI tags. */
export async function containersOfRun(runKey: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${TAG.runKey}=${runKey}`] } });
}

export async function removeContainersOfRun(runKey: string): Promise<void> {
  const containers = await containersOfRun(runKey);
  await Promise.all(
    containers.map((info) =>
      docker
        .getContainer(info.Id)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
}

/** Waits until a container exits; returns its exit code. */
export async function exitCodeOf(name: string, timeoutMs: number): Promise<number> {
  const state = await waitFor(
    async () => {
      const { State } = await docker.getContainer(name).inspect();
      return State.Status === "exited" || State.Status === "dead" ? State : undefined;
    },
    timeoutMs,
    `container ${name} to exit`,
  );
  return state.ExitCode;
}

/** Polls until `check` returns a value; fails after timeoutMs naming what it waited for. */
export async function waitFor<T>(
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
