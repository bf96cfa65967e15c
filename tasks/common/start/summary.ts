import { formatDuration } from "../core/log";
import { describeStatus } from "../core/ports";
import { startCostLine, type StartCost } from "./cost";
import type { AgentReport, StartResult } from "./startAgents";

function escapeCell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

const CLAIMED = {
  warm: "claimed warm from the standby pool",
  cold: "created cold: the standby pool had none ready",
};

function containerCell(agent: AgentReport): string {
  const parts = [
    ...(agent.claimed ? [CLAIMED[agent.claimed]] : []),
    ...(agent.status ? [describeStatus(agent.status)] : []),
  ];
  return escapeCell(parts.join("; "));
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
        `| ${agent.name} | ${agent.onlineAfterMs === undefined ? "not online" : formatDuration(agent.onlineAfterMs)} | ${containerCell(agent)} |`,
    ),
    "",
    "| Step | Time |",
    "| --- | --- |",
    ...result.steps.map((step) => `| ${step.name} | ${formatDuration(step.ms)} |`),
    "",
  ];
  return lines.join("\n");
}
