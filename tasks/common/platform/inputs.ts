import * as taskInternal from "azure-pipelines-task-lib/internal";
import * as tl from "azure-pipelines-task-lib/task";
import type { RawInputs } from "../inputs/parse";

/** An input as task.json declares it: the agent passes it by `name`, YAML may use its first alias. */
export interface DeclaredInput {
  name: string;
  aliases?: readonly string[];
}

/** Inputs that may hold a secret, such as a personal access token typed in without a secret variable. */
const SECRET_INPUTS: ReadonlySet<string> = new Set(["token"]);

/** The raw values of the inputs, keyed by their YAML names; never throws, so that validation happens in one place. */
export function readInputs(declared: readonly DeclaredInput[]): RawInputs {
  return Object.fromEntries(
    declared.map((input) => [input.aliases?.[0] ?? input.name, readInput(input.name)]),
  );
}

/**
 * tl.getInput writes every value it returns to the debug log, before the task could register it as a
 * secret; secret inputs are read from task-lib's store directly, as tl.getInput does, without that line.
 */
function readInput(name: string): string | undefined {
  if (!SECRET_INPUTS.has(name)) return tl.getInput(name, false);
  return taskInternal._vault.retrieveSecret(`INPUT_${taskInternal._getVariableKey(name)}`);
}
