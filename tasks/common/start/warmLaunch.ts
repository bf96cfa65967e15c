import type { AgentPublicKey } from "../core/agentCredential";
import { UserError } from "../core/errors";
import { formatDuration } from "../core/log";
import { describeStatus, isFinished, type AgentProvider, type WarmStart } from "../core/ports";
import { sleep, type PollTiming } from "../core/timing";

/** Reads of the container's log per read of its state while waiting for its public key. */
const LOG_READS_PER_STATUS = 3;

/**
 * Waits until the claimed container has printed its public key. A container claimed warm printed it at boot; one
 * created cold prints it once it runs. Fails when the container stops first, or at the deadline, which is the
 * start's online timeout: the wait for the key is part of the wait for the agent.
 */
export async function waitForPublicKey(
  name: string,
  warm: WarmStart,
  provider: Pick<AgentProvider, "status">,
  timing: PollTiming,
  signal: AbortSignal,
): Promise<AgentPublicKey> {
  const { deadline } = timing;
  for (let round = 1; ; round++) {
    const key = await warm.publicKey(name);
    if (key) return key;
    if (round % LOG_READS_PER_STATUS === 0) {
      const status = await provider.status(name);
      if (isFinished(status)) {
        throw new UserError(
          `The container of agent ${name} stopped before it printed its public key (${describeStatus(status)}): is the container group profile's image the agent image, started in warm mode (EPHEMERAL_AGENT_WARM_START=true)?`,
        );
      }
    }
    if (deadline.passed) {
      throw new UserError(
        `The container of agent ${name} printed no public key within ${formatDuration(deadline.budgetMs)}: check that the container group profile runs the agent image in warm mode (EPHEMERAL_AGENT_WARM_START=true) and that its log shows no error, or raise onlineTimeoutMinutes.`,
      );
    }
    await sleep(deadline.nextWaitMs(timing.pollIntervalMs), signal);
  }
}
