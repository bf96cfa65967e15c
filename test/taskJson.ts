// The tasks' inputs as task.json declares them: tests take names and defaults from here, not from copies.
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO, type TaskName } from "../standins/taskProcess";

export interface DeclaredInput {
  name: string;
  aliases?: string[];
  defaultValue?: string | boolean;
}

export function declaredInputs(task: TaskName): DeclaredInput[] {
  const file = path.join(REPO, "tasks", task, "task.json");
  return (JSON.parse(fs.readFileSync(file, "utf8")) as { inputs: DeclaredInput[] }).inputs;
}

/** The name YAML passes the input by, which the parsers read: the first alias, else the name. */
export function yamlName(input: DeclaredInput): string {
  return input.aliases?.[0] ?? input.name;
}

/** task.json's default of an input, as the agent passes it (a string). */
export function defaultOf(task: TaskName, name: string): string {
  const input = declaredInputs(task).find((candidate) => candidate.name === name);
  if (input?.defaultValue === undefined) throw new Error(`${task}'s task.json gives ${name} no default`);
  return String(input.defaultValue);
}
