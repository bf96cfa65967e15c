// npm run demo: one pipeline run's life on this machine's Docker engine, as a timeline. The bundled start
// task launches two agents in containers of images/agent, a job runs on one of them, and the bundled
// teardown task removes everything. Needs a Docker engine, and debootstrap to build the base image once.
// With DEMO_SUMMARIES_DIR set, the start and teardown tasks' job summaries (markdown) are written there as
// start.md and teardown.md (scripts/pictures.ts photographs them).
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { TAG, demandFor } from "../tasks/common/core/contract";
import { formatOffset } from "../tasks/common/core/timeline";
import type { Agent, JobRequest } from "../standins";
import { REPO } from "../standins/taskProcess";
import { baseImage, buildAgentImage, docker, dockerAvailable, imageExists } from "../standins/images";
import {
  POOL,
  containersOfRun,
  exitCodeOf,
  newRunKey,
  removeContainersOfRun,
  runBundledTask,
  startInputs,
  startOrganization,
  teardownInputs,
  waitFor,
  type Organization,
} from "../standins/organization";
import { DEPLOY_JOB, agentWaitMs, queuedToRunningMs, runDeployPipeline } from "../standins/pipelineRun";

const AGENT_COUNT = 2;
const JOB_NAME = "Build";
/** The second run's simulated build, side by side with the agent's start. */
const EARLY_BUILD_MS = 8000;

async function main(): Promise<number> {
  if (!(await dockerAvailable())) {
    console.error(
      "The demo needs a Docker engine: install Docker and start it (docker info must work for this user).",
    );
    return 1;
  }
  if (!(await imageExists(baseImage)) && !commandExists("debootstrap")) {
    console.error(
      `The demo builds its Debian base image (${baseImage}) with debootstrap, which is missing: install it (apt-get install debootstrap) and run the demo again.`,
    );
    return 1;
  }

  console.log("Ephemeral Pipeline Agents, demo on this machine's Docker engine\n");
  console.log(
    "No Azure DevOps organization is involved: a local Azure DevOps stand-in plays the organization.",
  );
  console.log("The start and teardown tasks run as bundled for the pipeline agent (dist/), with provider");
  console.log("docker; the agents are real containers of images/agent, whose start script downloads a");
  console.log(
    "stand-in agent package from the stand-in, registers it, runs it for one job and unregisters.\n",
  );

  console.log("Preparing (the first run builds the images, which takes a few minutes):");
  execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: REPO, stdio: "ignore" });
  console.log("      tasks bundled into dist/");
  const image = await buildAgentImage();
  const organization = await startOrganization();
  const runKey = newRunKey();
  const stopOnInterrupt = () => void cleanUp(organization, runKey).finally(() => process.exit(130));
  process.once("SIGINT", stopOnInterrupt);
  try {
    console.log(`\nOrganization: ${organization.standins.devops.url} (pool ${POOL}), run key ${runKey}\n`);
    await runDemo(organization, image, runKey);
    await runStartedEarly(organization, image);
    return 0;
  } finally {
    process.off("SIGINT", stopOnInterrupt);
    await cleanUp(organization, runKey);
  }
}

async function runDemo(organization: Organization, image: string, runKey: string): Promise<void> {
  const { devops } = organization.standins;
  const timeline = new Timeline();
  const stopWatching = await watch(organization, runKey, timeline);
  try {
    timeline.say(`start task launched: ${AGENT_COUNT} agents, provider docker, image ${image}`);
    const start = await runBundledTask(
      organization,
      "StartEphemeralAgentV1",
      startInputs("docker", image, runKey, { count: String(AGENT_COUNT) }),
    );
    if (start.result?.status !== "Succeeded") throw new TaskFailed("start", start.stdout);
    keepSummaries("start", start.summaries);
    const names = start.outputs.agentNames.split(",");
    timeline.say(`start task succeeded: agents ${names.join(", ")} are online`);
    timeline.say(`  outputs: agentNames=${start.outputs.agentNames} demand=${start.outputs.demand}`);

    // Said before queueing: an idle agent takes the job at once, and its assignment would print first.
    timeline.say(`job '${JOB_NAME}' queued with demand ${demandFor(runKey)}`);
    const job = devops.queueJob({
      poolName: POOL,
      demands: { EPHEMERAL_AGENT_RUN: runKey },
      jobName: JOB_NAME,
    });
    await waitFor(() => job.result, 60_000, `job '${JOB_NAME}' to finish`);
    const worker = job.reservedAgent?.name ?? "";
    const exitCode = await exitCodeOf(worker, 60_000);
    timeline.say(`agent ${worker} is done: its container exited with code ${exitCode}`);

    timeline.say("teardown task launched");
    const teardown = await runBundledTask(
      organization,
      "TeardownEphemeralAgentV1",
      teardownInputs("docker", runKey, { agentNames: names.join(",") }),
    );
    if (teardown.result?.status !== "Succeeded") throw new TaskFailed("teardown", teardown.stdout);
    keepSummaries("teardown", teardown.summaries);
    const removed = [...teardown.stdout.matchAll(/^Agent \S+: .*; container removed\b/gm)].length;
    const containersLeft = (await containersOfRun(runKey)).length;
    const agentsLeft = devops.agents(POOL).length;
    const left =
      containersLeft + agentsLeft === 0
        ? "nothing is left"
        : `${containersLeft} container(s) and ${agentsLeft} agent(s) are left`;
    timeline.say(`teardown task succeeded: removed ${removed} containers; ${left}`);
    console.log("\nWhat the teardown task reported:");
    for (const line of teardown.stdout.matchAll(/^Agent \S+: .*$/gm)) console.log(`  ${line[0]}`);
    console.log(`\nLog of ${worker}, as the teardown task printed it:`);
    console.log(indent(groupText(teardown.stdout, `Log of ${worker}`)));
    printSummaryTimeline(teardown.summaries);
    console.log(`\nDone in ${timeline.elapsed()} (after preparing).`);
  } finally {
    stopWatching();
  }
}

/**
 * The shape of templates/ephemeral-agent-jobs.yml: a simulated build side by side with the start; the deploy job is
 * queued when the build ends, and the agent is already online for it.
 */
async function runStartedEarly(organization: Organization, image: string): Promise<void> {
  const runKey = newRunKey();
  console.log(
    `\nSecond run, started early (templates/ephemeral-agent-jobs.yml): a build of ${EARLY_BUILD_MS / 1000} s side by side with the start, run key ${runKey}\n`,
  );
  const timeline = new Timeline();
  const stopWatching = await watch(organization, runKey, timeline);
  try {
    const run = await runDeployPipeline(
      organization,
      image,
      runKey,
      "started early",
      EARLY_BUILD_MS,
      (text) => timeline.say(text),
    );
    console.log(
      `\nOn the critical path the agent added ${formatOffset(agentWaitMs(run))} from the build's end to '${DEPLOY_JOB}' running on it (job queued -> job started ${formatOffset(queuedToRunningMs(run))}); its start took ${formatOffset(run.startEnded.getTime() - run.startBegan.getTime())}, beside the build.`,
    );
    printSummaryTimeline(run.teardown.summaries);
  } finally {
    stopWatching();
    await removeContainersOfRun(runKey);
  }
}

/** The timeline table of the teardown task's summary, as the summary tab would show it. */
function printSummaryTimeline(summaries: readonly string[]): void {
  const summary = summaries.join("\n");
  const table = summary
    .slice(Math.max(0, summary.indexOf("**Timeline**")))
    .split("\n")
    .filter((line) => line.startsWith("|"));
  console.log("\nTimeline, from the teardown task's summary (time since each agent was requested):");
  console.log(indent(table.length ? table.join("\n") : "(no timeline in the summary)"));
}

/** Prints what happens in the organization and on the engine while the run goes on. */
async function watch(organization: Organization, runKey: string, timeline: Timeline): Promise<() => void> {
  const events = organization.standins.devops.events;
  const ours = (agent: Agent) => agent.systemCapabilities.EPHEMERAL_AGENT_RUN === runKey;
  const onRegistered = (agent: Agent) => ours(agent) && timeline.say(`agent ${agent.name} registered`);
  const onStatus = (agent: Agent) => ours(agent) && timeline.say(`agent ${agent.name} ${agent.status}`);
  const onDeleted = (agent: Agent) => ours(agent) && timeline.say(`agent ${agent.name} unregistered`);
  const onAssigned = (job: JobRequest, agent: Agent) =>
    timeline.say(`job '${job.jobName}' assigned to agent ${agent.name}`);
  const onFinished = (job: JobRequest) => timeline.say(`job '${job.jobName}' finished: ${job.result}`);
  events.on("agentRegistered", onRegistered);
  events.on("agentStatusChanged", onStatus);
  events.on("agentDeleted", onDeleted);
  events.on("jobAssigned", onAssigned);
  events.on("jobFinished", onFinished);

  const engineEvents = await docker.getEvents({
    filters: { type: ["container"], event: ["start", "die", "destroy"], label: [`${TAG.runKey}=${runKey}`] },
  });
  const lines = createInterface({ input: engineEvents });
  lines.on("line", (line) => {
    const event = JSON.parse(line) as { Action: string; Actor: { Attributes: Record<string, string> } };
    const name = event.Actor.Attributes.name;
    if (event.Action === "start") timeline.say(`container ${name} started`);
    if (event.Action === "die")
      timeline.say(`container ${name} exited with code ${event.Actor.Attributes.exitCode}`);
    if (event.Action === "destroy") timeline.say(`container ${name} removed`);
  });

  return () => {
    events.off("agentRegistered", onRegistered);
    events.off("agentStatusChanged", onStatus);
    events.off("agentDeleted", onDeleted);
    events.off("jobAssigned", onAssigned);
    events.off("jobFinished", onFinished);
    lines.close();
    (engineEvents as NodeJS.ReadableStream & { destroy(): void }).destroy();
  };
}

class Timeline {
  private readonly startedAt = Date.now();

  say(text: string): true {
    console.log(`${`+${this.elapsed()}`.padStart(7)}  ${text}`);
    return true;
  }

  elapsed(): string {
    return `${((Date.now() - this.startedAt) / 1000).toFixed(1)}s`;
  }
}

class TaskFailed extends Error {
  constructor(task: string, output: string) {
    super(`the ${task} task failed; its output:\n${output}`);
  }
}

/** The lines the task printed inside the log group whose title starts with `title`. */
function groupText(output: string, title: string): string {
  const start = output.indexOf(`##[group]${title}`);
  if (start < 0) return "(not printed)";
  const body = output.slice(output.indexOf("\n", start) + 1);
  return body.slice(0, body.indexOf("##[endgroup]")).trimEnd();
}

function keepSummaries(task: string, summaries: string[]): void {
  const directory = process.env.DEMO_SUMMARIES_DIR;
  if (!directory) return;
  mkdirSync(directory, { recursive: true });
  writeFileSync(path.join(directory, `${task}.md`), summaries.join("\n\n"));
}

function indent(text: string): string {
  return text.replace(/^/gm, "  ");
}

function commandExists(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

/** Whatever the run left, when it failed or was interrupted: containers first, then registrations. */
async function cleanUp(organization: Organization, runKey: string): Promise<void> {
  await removeContainersOfRun(runKey);
  await organization.close();
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`\nThe demo failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
