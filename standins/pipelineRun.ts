// A deploy pipeline's run on this machine: a simulated build, the bundled start task launching one agent of
// images/agent on the Docker engine, a deploy job on it, and the bundled teardown. Two shapes: the agent started
// after the build (sequential) and started while the build runs (templates/ephemeral-agent-jobs.yml). The deploy
// job is queued once both the build and the start are done, as Azure Pipelines queues a job once its dependencies
// have succeeded. Used by `npm run demo` and `npm run bench`.
import { setTimeout as sleep } from "node:timers/promises";
import { demandFor } from "../tasks/common/core/contract";
import type { JobRequest } from ".";
import type { TaskRun } from "./taskProcess";
import {
  POOL,
  exitCodeOf,
  runBundledTask,
  startInputs,
  teardownInputs,
  waitFor,
  type Organization,
} from "./organization";

export type PipelineShape = "sequential" | "started early";

export const DEPLOY_JOB = "Deploy";

export interface PipelineRun {
  shape: PipelineShape;
  buildMs: number;
  agentName: string;
  /** When the build ended, the start task ran, and the deploy job was queued, ran on the agent and ended. */
  buildEnded: Date;
  startBegan: Date;
  startEnded: Date;
  job: Required<Pick<JobRequest, "queueTime" | "receiveTime" | "finishTime">>;
  teardown: TaskRun;
}

/** What the agent adds to the critical path: from the build's end to the deploy job running on the agent. */
export function agentWaitMs(run: PipelineRun): number {
  return run.job.receiveTime.getTime() - run.buildEnded.getTime();
}

/** Deploy job queued to deploy job running on the agent (the job request's queueTime to its receiveTime). */
export function queuedToRunningMs(run: PipelineRun): number {
  return run.job.receiveTime.getTime() - run.job.queueTime.getTime();
}

export async function runDeployPipeline(
  organization: Organization,
  image: string,
  runKey: string,
  shape: PipelineShape,
  buildMs: number,
  say: (text: string) => void = () => undefined,
): Promise<PipelineRun> {
  const { devops } = organization.standins;
  const build = async () => {
    say(`build started (simulated, ${buildMs / 1000} s)`);
    await sleep(buildMs);
    say("build ended");
    return new Date();
  };
  const start = async () => {
    say("start job: StartEphemeralAgent@1 launched");
    const began = new Date();
    const run = await runBundledTask(
      organization,
      "StartEphemeralAgentV1",
      startInputs("docker", image, runKey, { count: "1" }),
    );
    if (run.result?.status !== "Succeeded")
      throw new Error(`the start task failed; its output:\n${run.stdout}`);
    say(`start job succeeded: agent ${run.outputs.agentNames} is online`);
    return { began, ended: new Date(), agentName: run.outputs.agentNames };
  };

  let buildEnded: Date;
  let started: Awaited<ReturnType<typeof start>>;
  if (shape === "sequential") {
    buildEnded = await build();
    started = await start();
  } else {
    [buildEnded, started] = await Promise.all([build(), start()]);
  }

  say(`deploy job '${DEPLOY_JOB}' queued with demand ${demandFor(runKey)}`);
  const job = devops.queueJob({
    poolName: POOL,
    demands: { EPHEMERAL_AGENT_RUN: runKey },
    jobName: DEPLOY_JOB,
  });
  await waitFor(() => job.result, 60_000, `job '${DEPLOY_JOB}' to finish`);
  const exitCode = await exitCodeOf(started.agentName, 60_000);
  say(`agent ${started.agentName} is done: its container exited with code ${exitCode}`);

  say("teardown job: TeardownEphemeralAgent@1 launched");
  const teardown = await runBundledTask(
    organization,
    "TeardownEphemeralAgentV1",
    teardownInputs("docker", runKey, { agentNames: started.agentName }),
  );
  if (teardown.result?.status !== "Succeeded")
    throw new Error(`the teardown task failed; its output:\n${teardown.stdout}`);
  say("teardown job succeeded");
  const { queueTime, receiveTime, finishTime } = job;
  if (!receiveTime || !finishTime) throw new Error(`job '${DEPLOY_JOB}' has no receive or finish time`);
  return {
    shape,
    buildMs,
    agentName: started.agentName,
    buildEnded,
    startBegan: started.began,
    startEnded: started.ended,
    job: { queueTime, receiveTime, finishTime },
    teardown,
  };
}
