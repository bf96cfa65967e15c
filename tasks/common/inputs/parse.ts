import { InputError } from "../core/errors";

/** Raw input values as the agent hands them over: unset inputs are undefined or empty. */
export type RawInputs = Readonly<Record<string, string | undefined>>;

export function optional(raw: RawInputs, name: string): string | undefined {
  const value = raw[name]?.trim();
  return value ? value : undefined;
}

export function required(raw: RawInputs, name: string, what: string): string {
  const value = optional(raw, name);
  if (value === undefined) throw new InputError(name, `is required: set it to ${what}.`);
  return value;
}

interface Range {
  min: number;
  max: number;
}

export function parseInteger(name: string, value: string, range: Range): number {
  if (!/^-?\d+$/.test(value)) {
    throw new InputError(
      name,
      `'${value}' is not a whole number: use a whole number from ${range.min} to ${range.max}.`,
    );
  }
  const parsed = Number(value);
  if (parsed < range.min || parsed > range.max) {
    throw new InputError(
      name,
      `${parsed} is out of range: use a whole number from ${range.min} to ${range.max}.`,
    );
  }
  return parsed;
}

export function parseDecimal(name: string, value: string, range: Range & { step?: number }): number {
  if (!/^-?\d+(\.\d+)?$/.test(value)) {
    throw new InputError(name, `'${value}' is not a number: use a number from ${range.min} to ${range.max}.`);
  }
  const parsed = Number(value);
  if (parsed < range.min || parsed > range.max) {
    throw new InputError(name, `${parsed} is out of range: use a number from ${range.min} to ${range.max}.`);
  }
  if (range.step !== undefined) {
    const steps = parsed / range.step;
    if (Math.abs(steps - Math.round(steps)) > 1e-9) {
      const nearest = Number((Math.round(steps) * range.step).toPrecision(12));
      throw new InputError(
        name,
        `${parsed} is not a multiple of ${range.step}: use a multiple of ${range.step}, such as ${nearest}.`,
      );
    }
  }
  return parsed;
}

export function parseBoolean(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value.trim() === "") return fallback;
  const normalised = value.trim().toLowerCase();
  if (normalised === "true") return true;
  if (normalised === "false") return false;
  throw new InputError(name, `'${value}' is not a boolean: use true or false.`);
}

export function parseChoice<T extends string>(name: string, value: string, choices: readonly T[]): T {
  const match = choices.find((choice) => choice.toLowerCase() === value.toLowerCase());
  if (match === undefined) {
    throw new InputError(name, `'${value}' is not supported: use one of ${choices.join(", ")}.`);
  }
  return match;
}

const RUN_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The run key ties a run's agents together; it appears in names, tags and the demand, so it stays simple. */
export function parseRunKey(value: string): string {
  if (!RUN_KEY.test(value)) {
    throw new InputError(
      "runKey",
      `'${value}' cannot be used: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (the default $(Build.BuildId) always works).`,
    );
  }
  return value;
}

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses `NAME=value` lines; blank lines and lines starting with # are ignored. */
export function parseEnvironment(
  value: string | undefined,
  reservedNames: readonly string[],
): Record<string, string> {
  const variables: Record<string, string> = {};
  if (!value) return variables;
  value.split(/\r?\n/).forEach((rawLine, index) => {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#")) return;
    const separator = line.indexOf("=");
    if (separator <= 0) {
      throw new InputError(
        "environment",
        `line ${index + 1} is not NAME=value: write each variable as NAME=value.`,
      );
    }
    const name = line.slice(0, separator).trim();
    if (!VARIABLE_NAME.test(name)) {
      throw new InputError(
        "environment",
        `line ${index + 1}: '${name}' is not a valid variable name: use letters, digits and '_', not starting with a digit.`,
      );
    }
    if (reservedNames.includes(name.toUpperCase())) {
      throw new InputError(
        "environment",
        `line ${index + 1}: ${name} is set by the task itself: remove that line.`,
      );
    }
    if (name in variables) {
      throw new InputError("environment", `line ${index + 1}: ${name} is set twice: keep one line.`);
    }
    variables[name] = line.slice(separator + 1);
  });
  return variables;
}

/** Parses a comma-separated list, ignoring empty entries. */
export function parseList(value: string | undefined): string[] {
  if (!value) return [];
  return value
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
}
