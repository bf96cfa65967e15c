// Warm start against cold creation, on the local Docker engine with the agent image and the stand-in agent package,
// the ARM stand-in running container groups as containers (the agent baked into the image, as README advises for a
// standby pool): from the start task's first container group request
// (the claim, or the creation) to the agent online in the Azure DevOps stand-in, with the platform's latencies
// simulated: ACI provisioning of a cold group, and the claim's answer. The recorded traffic suggests about 20-23 s
// for the first (recordings/2023-05-01, no virtual network) and about 5 s for the second (the recorded claim);
// `--quick` scales both down tenfold. Usage: node --import tsx bench/warmStart.ts [--runs 2] [--quick]
import { parseArgs } from "node:util";
import type { Agent } from "../standins";
import { preciseNow } from "../standins";
import { runContainerGroupsOnDocker } from "../standins/aciOnDocker";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { agentImage, buildAgentImage, docker, packFakeAgent } from "../standins/images";
import {
  newRunKey,
  removeContainersOfRun,
  runBundledTask,
  startInputs,
  startOrganization,
  teardownInputs,
  waitFor,
} from "../standins/organization";
import { createStandbyPool, poolReady } from "../standins/standbyPoolSetup";
import { ensureBundles } from "../standins/taskProcess";
import { PUBLIC_KEY_MARKER } from "../tasks/common/core/warmStart";
import { demultiplexLogs } from "../tasks/common/providers/docker/dockerWire";
import { seconds, summarise, type Summary } from "./stats";

export type WarmShape = "cold" | "warm";
const SHAPES: readonly WarmShape[] = ["cold", "warm"];

/** The simulated platform: a cold group's provisioning, and the time a claim takes to answer. */
export interface WarmStartLatency {
  provisioningMs: number;
  claimMs: number;
}

export const WARM_START_PLAN = {
  full: { runs: 3, latency: { provisioningMs: 21_000, claimMs: 5000 } },
  quick: { runs: 1, latency: { provisioningMs: 2100, claimMs: 500 } },
} as const;

export interface WarmStartShape {
  shape: WarmShape;
  /** The first container group request (claim or creation) to the agent online. */
  requestToOnline: Summary;
  /** The start task, spawn to exit. */
  start: Summary;
}

export interface WarmStartResult {
  latency: WarmStartLatency;
  shapes: WarmStartShape[];
}

async function oneRun(image: string, shape: WarmShape, latency: WarmStartLatency) {
  const organization = await startOrganization({
    provisioningDelayMs: latency.provisioningMs,
    standbyPools: { claimLatencyMs: latency.claimMs },
  });
  const { arm, devops } = organization.standins;
  const bridge = runContainerGroupsOnDocker(arm);
  const runKey = newRunKey();
  try {
    const more: Record<string, string> = { count: "1", maxLifetimeMinutes: "30" };
    if (shape === "warm") {
      const { poolId } = await createStandbyPool(organization.standins, { image, readyCapacity: 1 });
      await poolReady(organization.standins, poolId, 1, latency.provisioningMs + 60_000);
      const pooled = bridge.containerName(arm.standbyPools.pool(poolId)!.members[0].name);
      await waitFor(
        async () => {
          const logs = demultiplexLogs(
            await docker.getContainer(pooled).logs({ stdout: true, stderr: true }),
          );
          return logs.includes(PUBLIC_KEY_MARKER) ? true : undefined;
        },
        60_000,
        "the pooled container's public key",
      );
      more.standbyPool = poolId;
    }
    const onlineAt = new Map<string, number>();
    devops.events.on("agentStatusChanged", (agent: Agent) => {
      if (agent.status === "online" && !onlineAt.has(agent.name)) onlineAt.set(agent.name, preciseNow());
    });
    const began = Date.now();
    const start = await runBundledTask(
      organization,
      "StartEphemeralAgentV1",
      startInputs("aci", image, runKey, more),
    );
    const ended = Date.now();
    if (start.result?.status !== "Succeeded") throw new Error(`the ${shape} start failed:\n${start.stdout}`);
    const name = start.outputs.agentNames;
    const firstRequest = arm.requests.find(
      (request) => request.method === "PUT" && request.path.endsWith(`/containerGroups/${name}`),
    );
    const online = onlineAt.get(name);
    if (!firstRequest || online === undefined) throw new Error(`${shape}: no request or never online`);
    await runBundledTask(
      organization,
      "TeardownEphemeralAgentV1",
      teardownInputs("aci", runKey, {
        agentNames: name,
        awaitTimeoutMinutes: "0.05",
        gracePeriodSeconds: "0",
      }),
    );
    return { requestToOnlineMs: online - firstRequest.receivedAt, startMs: ended - began };
  } finally {
    await bridge.close();
    await removeContainersOfRun(runKey);
    await organization.close();
  }
}

/** The agent baked into the image, as README advises for a standby pool: no download after the claim. */
async function bakedAgentImage(): Promise<string> {
  const directory = await mkdtemp(path.join(os.tmpdir(), "fake-agent-package-"));
  try {
    const agentPackageFile = await packFakeAgent(path.join(directory, "vsts-agent.tar.gz"));
    return await buildAgentImage({ tag: `${agentImage}-baked`, agentPackageFile });
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

export async function measureWarmStart(runs: number, latency: WarmStartLatency): Promise<WarmStartResult> {
  const image = await bakedAgentImage();
  await ensureBundles();
  const samples = new Map(
    SHAPES.map((shape) => [shape, [] as { requestToOnlineMs: number; startMs: number }[]]),
  );
  // Run 0 warms the engine and the file system cache; it is not counted. The shapes alternate within each run.
  for (let run = 0; run <= runs; run++) {
    for (const shape of SHAPES) {
      const sample = await oneRun(image, shape, latency);
      if (run > 0) samples.get(shape)!.push(sample);
    }
  }
  return {
    latency,
    shapes: SHAPES.map((shape) => ({
      shape,
      requestToOnline: summarise(samples.get(shape)!.map((sample) => sample.requestToOnlineMs)),
      start: summarise(samples.get(shape)!.map((sample) => sample.startMs)),
    })),
  };
}

export function warmStartLines(result: WarmStartResult): string {
  const { provisioningMs, claimMs } = result.latency;
  return [
    `warm start against cold creation (simulated: cold provisioning ${seconds(provisioningMs)}, claim answer ${seconds(claimMs)}; agent image on the local engine):`,
    ...result.shapes.map(
      (shape) =>
        `  ${shape.shape}: first container group request -> agent online median ${seconds(shape.requestToOnline.medianMs)} (min ${seconds(shape.requestToOnline.minMs)}, max ${seconds(shape.requestToOnline.maxMs)}, ${shape.requestToOnline.runs} runs); start task median ${seconds(shape.start.medianMs)}`,
    ),
  ].join("\n");
}

if (require.main === module) {
  const { values } = parseArgs({
    options: { runs: { type: "string" }, quick: { type: "boolean", default: false } },
  });
  const plan = WARM_START_PLAN[values.quick ? "quick" : "full"];
  measureWarmStart(values.runs ? Number(values.runs) : plan.runs, plan.latency)
    .then((result) => console.log(warmStartLines(result)))
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    });
}
