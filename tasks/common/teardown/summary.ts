import { timelineTable } from "../core/timeline";
import { teardownCostLines, type TeardownCost } from "./cost";
import type { TeardownResult } from "./teardownAgents";

function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

export function teardownSummary(result: TeardownResult, runKey: string, cost?: TeardownCost): string {
  const lines = [
    `### Ephemeral agents torn down: ${result.outcome === "Succeeded" ? "all removed" : "with issues"}`,
    "",
    `- Where: ${cell(result.providerDescription)}`,
    `- Run key: \`${runKey}\``,
    "",
  ];
  if (result.agents.length) {
    lines.push(
      "| Agent | Lived | Job | Container | Registration |",
      "| --- | --- | --- | --- | --- |",
      ...result.agents.map(
        (agent) =>
          `| ${agentLabel(agent)} | ${agent.lived ?? ""} | ${cell(agent.job)} | ${cell(agent.container)} | ${agent.registration} |`,
      ),
      "",
      ...timelineSection(result),
    );
  } else {
    lines.push("No agents were found.", "");
  }
  if (cost) lines.push(...teardownCostLines(cost, cell));
  if (result.issues.length)
    lines.push("**Issues**", "", ...result.issues.map((issue) => `- ${cell(issue)}`), "");
  return lines.join("\n");
}

function agentLabel(agent: TeardownResult["agents"][number]): string {
  return `${agent.name}${agent.swept ? " (sweep)" : ""}`;
}

/** When each agent was requested, ran, came online, ran its job and was removed ("–": not seen). */
function timelineSection(result: TeardownResult): string[] {
  return [
    "**Timeline** (time since the agent was requested)",
    "",
    ...timelineTable(
      result.agents.map((agent) => ({ name: agentLabel(agent), milestones: agent.milestones })),
    ),
    "",
  ];
}
