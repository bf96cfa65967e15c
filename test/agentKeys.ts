import { generateAgentKey, type AgentKey } from "../tasks/common/core/agentCredential";

const KEYS = 4;
let made: Promise<AgentKey[]> | undefined;
let handedOut = 0;

/**
 * StartContext.newAgentKey for in-process starts: an RSA-2048 key costs about 0.3 s of CPU to generate, so the
 * process makes four once and hands them out in turn (the agents of one start get distinct keys up to four).
 * The task processes and the property test of the key files use generateAgentKey itself.
 */
export async function reusedAgentKey(): Promise<AgentKey> {
  made ??= Promise.all(Array.from({ length: KEYS }, () => generateAgentKey()));
  const keys = await made;
  return keys[handedOut++ % KEYS];
}
