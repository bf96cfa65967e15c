import { InputError } from "./errors";

/** ACI container group names and our agent names: 1 to 63 lowercase letters, digits and single hyphens. */
const MAX_NAME_LENGTH = 63;
const PREFIX = /^[a-z0-9]+(-[a-z0-9]+)*$/;
export const MAX_PREFIX_LENGTH = 24;

export function parseAgentNamePrefix(value: string): string {
  if (value.length > MAX_PREFIX_LENGTH || !PREFIX.test(value)) {
    throw new InputError(
      "agentNamePrefix",
      `'${value}' cannot start a container name: use 1 to ${MAX_PREFIX_LENGTH} lowercase letters, digits and single hyphens, starting and ending with a letter or digit.`,
    );
  }
  return value;
}

/** The part of the run key that can stand in a name: lowercase, runs of other characters folded to one hyphen. */
function runKeySegment(runKey: string, maxLength: number): string {
  const folded = runKey
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return folded.slice(0, maxLength).replace(/-+$/, "");
}

/**
 * Names for `count` agents of one start: prefix, run key and a launch id that differs between parallel
 * start tasks and re-runs of the same run, then the agent's number.
 */
export function agentNames(prefix: string, runKey: string, launchId: string, count: number): string[] {
  const fixedLength = prefix.length + launchId.length + String(count).length + 3;
  const segment = runKeySegment(runKey, MAX_NAME_LENGTH - fixedLength);
  const stem = segment ? `${prefix}-${segment}-${launchId}` : `${prefix}-${launchId}`;
  return Array.from({ length: count }, (_, index) => `${stem}-${index + 1}`);
}

const LAUNCH_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** A short random id, lowercase letters and digits, from the given random bytes source. */
export function newLaunchId(randomBytes: (size: number) => Uint8Array, length = 5): string {
  return Array.from(randomBytes(length), (byte) => LAUNCH_ID_ALPHABET[byte % LAUNCH_ID_ALPHABET.length]).join(
    "",
  );
}

export function isValidAgentName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && PREFIX.test(name);
}
