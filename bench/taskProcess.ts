import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { preciseNow, type RecordedRequest } from "../standins";
import {
  REPO,
  parseRun,
  taskEnvironment,
  type Standins,
  type TaskName,
  type TaskRun,
} from "../standins/taskProcess";

export type TaskBuild = "bundle" | "sources";

export interface TimedRun {
  spawnedAt: number;
  exitedAt: number;
  /** CPU time (user + system) the task had used when it was killed at killAtFirstRequest; Linux only. */
  cpuAtFirstRequestMs?: number;
  run: TaskRun;
}

export interface TaskLaunch {
  task: TaskName;
  build?: TaskBuild;
  inputs: Record<string, string>;
  /** Poll interval for EPHEMERAL_AGENT_POLL_INTERVAL_MS; undefined keeps the task's default, as users get it. */
  pollIntervalMs?: number;
  /**
   * Kill the task as soon as a stand-in has received a request (cold start runs): any stand-in, or Entra ID or
   * Resource Manager only (the first request the provider's SDK makes).
   */
  killAtFirstRequest?: "any" | "azure";
  /** The bundle's dist folder; another build's to compare builds (bench/coldStart.ts). Default: this repository's. */
  distDir?: string;
  timeoutMs?: number;
}

/** The environment the agent gives a task, with the task's own default timing unless a poll interval is given. */
function environmentFor(standins: Standins, launch: TaskLaunch): NodeJS.ProcessEnv {
  const env = taskEnvironment(standins, { inputs: launch.inputs });
  fs.mkdirSync(env.AGENT_TEMPDIRECTORY!, { recursive: true });
  delete env.EPHEMERAL_AGENT_RETRY_BASE_MS;
  delete env.EPHEMERAL_AGENT_POLL_INTERVAL_MS;
  if (launch.pollIntervalMs !== undefined)
    env.EPHEMERAL_AGENT_POLL_INTERVAL_MS = String(launch.pollIntervalMs);
  return env;
}

/** Every request the three stand-ins received, oldest first. */
export function allRequests(standins: Standins): RecordedRequest[] {
  return [...standins.entra.requests, ...standins.arm.requests, ...standins.devops.requests].sort(
    (a, b) => a.receivedAt - b.receivedAt,
  );
}

/**
 * CPU time a process has used so far, from /proc/<pid>/stat (utime and stime, fields 14 and 15, in clock
 * ticks of 10 ms: USER_HZ is 100 on Linux); undefined where there is no /proc. Unlike wall-clock time, it
 * hardly moves when other processes compete for the cores.
 */
function cpuTimeMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces: count the fields after it.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/** Runs a task as the agent does (a child node process) and notes when it was spawned and when it exited. */
export function runTimedTask(standins: Standins, launch: TaskLaunch): Promise<TimedRun> {
  const script =
    launch.build === "sources"
      ? ["--import", "tsx", path.join(REPO, "tasks", launch.task, "index.ts")]
      : [path.join(launch.distDir ?? path.join(REPO, "dist"), launch.task, "index.js")];
  const env = environmentFor(standins, launch);
  return new Promise((resolve, reject) => {
    const removers: (() => void)[] = [];
    const spawnedAt = preciseNow();
    const child = spawn(process.execPath, script, { env, cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    let exitedAt = 0;
    let cpuAtFirstRequestMs: number | undefined;
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), launch.timeoutMs ?? 180_000);
    if (launch.killAtFirstRequest) {
      const azure = [standins.entra, standins.arm];
      for (const server of launch.killAtFirstRequest === "azure" ? azure : [...azure, standins.devops]) {
        removers.push(
          server.intercept(() => {
            cpuAtFirstRequestMs ??= cpuTimeMs(child.pid);
            child.kill("SIGKILL");
            return undefined;
          }),
        );
      }
    }
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("exit", () => (exitedAt = preciseNow()));
    child.on("close", (code) => {
      clearTimeout(timer);
      for (const remove of removers) remove();
      fs.rmSync(env.AGENT_TEMPDIRECTORY!, { recursive: true, force: true });
      resolve({ spawnedAt, exitedAt, cpuAtFirstRequestMs, run: parseRun(code, stdout, stderr) });
    });
  });
}

/** Fails loudly when a task that should have succeeded did not: a benchmark of a failing run means nothing. */
export function assertSucceeded(timed: TimedRun, what: string): void {
  if (timed.run.result?.status !== "Succeeded") {
    throw new Error(
      `${what}: the task ended with ${timed.run.result?.status ?? `exit code ${timed.run.code}`}: ${timed.run.result?.message ?? ""}\n${timed.run.stdout.slice(-3000)}\n${timed.run.stderr.slice(-2000)}`,
    );
  }
}
