import { UserError } from "./errors";

/** What a task run ends with, as plain values: the entry wrapper hands it to the agent. */
export interface TaskOutcome {
  status: "Succeeded" | "SucceededWithIssues" | "Failed";
  message: string;
  /** Output variables (isOutput=true), by name. */
  outputs?: Readonly<Record<string, string>>;
  /** A markdown job summary, attached under the given name. */
  summary?: { name: string; markdown: string };
  /** The stack of an unexpected error, for the debug log; a UserError's message already says everything. */
  debug?: string;
}

export function debugStack(error: unknown): string | undefined {
  return error instanceof Error && !(error instanceof UserError) ? error.stack : undefined;
}
