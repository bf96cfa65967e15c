import { formatDuration } from "../core/log";
import { describeStatus } from "../core/ports";
import { startCostLine, type StartCost } from "./cost";
import type { StartResult } from "./startAgents";

function escapeCell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

export function startSummary(result: StartResult, outcome: string, cost?: StartCost): string {
  const lines = [
    `### Ephemeral agents: ${outcome}`,
    "",
    `- Where: ${escapeCell(result.providerDescription)}`,
    `- Pool: \`${result.pool}\`, run key \`${result.runKey}\``,
    `- Target them with: \`demands: ${result.demand}\``,
    `- Total time: ${formatDuration(result.totalMs)}`,
    ...(cost ? [escapeCell(startCostLine(cost))] : []),
    "",
    "| Agent | Online after | Container |",
    "| --- | --- | --- |",
    ...result.agents.map(
      (agent) =>
        `| ${agent.name} | ${agent.onlineAfterMs === undefined ? "not online" : formatDuration(agent.onlineAfterMs)} | ${agent.status ? escapeCell(describeStatus(agent.status)) : ""} |`,
    ),
    "",
    "| Step | Time |",
    "| --- | --- |",
    ...result.steps.map((step) => `| ${step.name} | ${formatDuration(step.ms)} |`),
    "",
  ];
  return lines.join("\n");
}
