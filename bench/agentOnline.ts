// "Container start to agent online" for both registrations, on the local Docker engine with the agent image and
// the stand-in agent package: from the container's StartedAt (docker inspect) to the Azure DevOps stand-in marking
// the agent online, and the requests the container made to Azure DevOps before that (the package download, which
// both registrations make, is not counted). Usage: node --import tsx bench/agentOnline.ts [--runs 3]
import { parseArgs } from "node:util";
import { preciseNow, type Agent } from "../standins";
import { buildAgentImage, docker } from "../standins/images";
import {
  newRunKey,
  removeContainersOfRun,
  runBundledTask,
  startInputs,
  startOrganization,
} from "../standins/organization";
import { ensureBundles } from "../standins/taskProcess";
import { summarise, type Summary } from "./stats";

export type Registration = "agentCredential" | "token";

export interface AgentOnlineResult {
  registration: Registration;
  /** Container start (State.StartedAt) to the agent's status online. */
  containerStartToOnline: Summary;
  /** Requests from the container to Azure DevOps before it was online, by method and path; the same every run. */
  requestsBeforeOnline: string[];
}

async function oneRun(image: string, registration: Registration) {
  const organization = await startOrganization();
  const runKey = newRunKey();
  try {
    const { devops } = organization.standins;
    const onlineAt = new Map<string, number>();
    devops.events.on("agentStatusChanged", (agent: Agent) => {
      if (agent.status === "online" && !onlineAt.has(agent.name)) onlineAt.set(agent.name, preciseNow());
    });
    const start = await runBundledTask(
      organization,
      "StartEphemeralAgentV1",
      startInputs("docker", image, runKey, { count: "1", registration }),
    );
    if (start.result?.status !== "Succeeded") throw new Error(`the start failed:\n${start.stdout}`);
    const name = start.outputs.agentNames;
    const startedAt = Date.parse((await docker.getContainer(name).inspect()).State.StartedAt);
    const online = onlineAt.get(name);
    if (online === undefined) throw new Error(`agent ${name} never went online`);
    const requests = devops.requests
      .filter((request) => String(request.headers["user-agent"] ?? "").startsWith("curl/"))
      .filter(
        (request) => request.receivedAt <= online && !request.path.startsWith("/_standin/agent-packages/"),
      )
      .map((request) => `${request.method} ${request.path.replace(/\/[0-9a-f-]{36}(?=\/|$)/g, "/{id}")}`);
    return { ms: online - startedAt, requests };
  } finally {
    await removeContainersOfRun(runKey);
    await organization.close();
  }
}

export async function measureAgentOnline(runs: number): Promise<AgentOnlineResult[]> {
  const image = await buildAgentImage();
  await ensureBundles();
  const results: AgentOnlineResult[] = [];
  for (const registration of ["token", "agentCredential"] as const) {
    const samples: number[] = [];
    let requestsBeforeOnline: string[] = [];
    // Run 0 warms the engine and the file system cache; it is not counted.
    for (let run = 0; run <= runs; run++) {
      const sample = await oneRun(image, registration);
      if (run === 0) continue;
      samples.push(sample.ms);
      requestsBeforeOnline = sample.requests;
    }
    results.push({ registration, containerStartToOnline: summarise(samples), requestsBeforeOnline });
  }
  return results;
}

export function agentOnlineLines(results: readonly AgentOnlineResult[]): string {
  return results
    .map(
      (result) =>
        `container start to agent online, registration ${result.registration}: median ${result.containerStartToOnline.medianMs} ms (min ${result.containerStartToOnline.minMs}, max ${result.containerStartToOnline.maxMs}, ${result.containerStartToOnline.runs} runs); ${result.requestsBeforeOnline.length} requests to Azure DevOps before online: ${result.requestsBeforeOnline.join(", ")}`,
    )
    .join("\n");
}

if (require.main === module) {
  const { values } = parseArgs({ options: { runs: { type: "string", default: "3" } } });
  measureAgentOnline(Number(values.runs))
    .then((results) => console.log(agentOnlineLines(results)))
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    });
}
