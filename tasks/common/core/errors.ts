/** A user-facing error: the message names what is wrong and how to fix it. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}

/** A task input holds a value the task cannot use. */
export class InputError extends UserError {
  constructor(
    readonly input: string,
    problem: string,
  ) {
    super(`Input '${input}': ${problem}`);
    this.name = "InputError";
  }
}

/** The identity behind a token or a service connection lacks a permission. */
export class AccessError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = "AccessError";
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** The HTTP status carried by errors of the Azure SDK and of azure-devops-node-api, if any. */
export function httpStatusOf(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const candidate = error as { statusCode?: unknown; status?: unknown };
  if (typeof candidate.statusCode === "number") return candidate.statusCode;
  if (typeof candidate.status === "number") return candidate.status;
  return undefined;
}
