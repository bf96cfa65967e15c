// Makes the ARM stand-in's container groups real: each group it accepts runs as containers on the local
// Docker engine (image, command, environment and secure environment as the request says, host network), and
// their state and log flow back into the stand-in, which answers in Azure Container Instances' shapes.
// Deleting the group stops and removes its containers.
import type Docker from "dockerode";
import { chmodSync, mkdtempSync } from "node:fs";
import { mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { demultiplexLogs } from "../tasks/common/providers/docker/dockerWire";
import type { ArmStandin, ContainerGroupRecord } from ".";
import { docker } from "./images";

/** Label on every container the bridge runs: the container group it stands for. */
export const ACI_GROUP_LABEL = "ephemeral-agents-e2e.aci-group";
const POLL_INTERVAL_MS = 200;
/** How often a created container looks whether its group is provisioned, to start then. */
const PROVISIONING_POLL_MS = 20;
/** Time a container gets after SIGTERM when its group is deleted, before it is killed. */
const DELETE_GRACE_SECONDS = 30;
/** What `docker run` exits with when the engine cannot run the container. */
const ENGINE_FAILURE_EXIT_CODE = 125;

export interface AciOnDocker {
  /** The Docker container that runs container `container` (default: the first) of a group. */
  containerName(groupName: string, container?: string): string;
  /** Stops polling and removes every container the bridge started. */
  close(): Promise<void>;
}

interface ContainerRequest {
  name?: string;
  properties?: {
    image?: string;
    command?: string[];
    environmentVariables?: Array<{ name: string; value?: string; secureValue?: string }>;
    resources?: { requests?: { cpu?: number; memoryInGB?: number } };
  };
}

interface BridgedContainer {
  group: ContainerGroupRecord;
  aciName: string;
  dockerName: string;
  /** Settles once the container runs; undefined when the engine could not run it. */
  started: Promise<Docker.Container | undefined>;
  /** Host folder mounted at /mnt/configmap/<container>, for groups made from a container group profile. */
  configMapDirectory?: string;
  failure?: string;
  deleted: boolean;
}

const RESTART_POLICIES: Record<string, string> = { Never: "no", OnFailure: "on-failure", Always: "always" };

export function runContainerGroupsOnDocker(arm: ArmStandin): AciOnDocker {
  const bridged: BridgedContainer[] = [];
  const dockerName = (groupName: string, container: string) => `aci-${groupName}-${container}`;

  arm.onCreate((group) => {
    const containers = (group.request.properties?.containers ?? []) as ContainerRequest[];
    for (const request of containers) {
      const aciName = request.name ?? "";
      const entry: BridgedContainer = {
        group,
        aciName,
        dockerName: dockerName(group.name, aciName),
        started: Promise.resolve(undefined),
        deleted: false,
        // Config maps are files in /mnt/configmap/<container>/ (Microsoft Learn, "Config maps in Azure Container
        // Instances"); only groups made from a profile can have them.
        configMapDirectory: group.standby ? newConfigMapDirectory() : undefined,
      };
      entry.started = startContainer(entry, request).catch((error: unknown) => {
        entry.failure = (error as Error).message;
        return undefined;
      });
      bridged.push(entry);
    }
  });

  arm.onConfigMap((group, container) => {
    const entry = bridged.find((candidate) => candidate.group === group && candidate.aciName === container);
    const record = group.containers.find((candidate) => candidate.name === container);
    if (entry?.configMapDirectory && record)
      void writeConfigMap(entry.configMapDirectory, record.configMap ?? {});
  });

  arm.onDelete(async (group) => {
    const entries = bridged.filter((entry) => entry.group === group);
    for (const entry of entries) entry.deleted = true;
    await Promise.all(entries.map(stopAndRemove));
  });

  let polling = false;
  const timer = setInterval(() => {
    if (polling) return;
    polling = true;
    void Promise.all(
      bridged.filter((entry) => !entry.deleted).map((entry) => reportBack(arm, entry)),
    ).finally(() => (polling = false));
  }, POLL_INTERVAL_MS);

  return {
    // A claimed group keeps the container its pool started, named after the pooled group.
    containerName: (groupName, container) => {
      const entry = bridged.find(
        (candidate) =>
          candidate.group.name === groupName && (container === undefined || candidate.aciName === container),
      );
      return entry?.dockerName ?? dockerName(groupName, container ?? "");
    },
    async close() {
      clearInterval(timer);
      await Promise.all(bridged.map(stopAndRemove));
    },
  };

  async function startContainer(entry: BridgedContainer, request: ContainerRequest) {
    const properties = request.properties ?? {};
    const requests = properties.resources?.requests ?? {};
    const restartPolicy = entry.group.request.properties?.restartPolicy;
    const container = await docker.createContainer({
      name: entry.dockerName,
      Image: properties.image,
      // ACI's command replaces the image's entry point, as in Kubernetes.
      ...(properties.command?.length ? { Entrypoint: properties.command, Cmd: [] } : {}),
      // Secure values reach the container's environment like any other: ACI only hides them in its API.
      Env: (properties.environmentVariables ?? []).map(
        (variable) => `${variable.name}=${variable.secureValue ?? variable.value ?? ""}`,
      ),
      Labels: { ...entry.group.tags, [ACI_GROUP_LABEL]: entry.group.name },
      HostConfig: {
        NetworkMode: "host",
        Binds: entry.configMapDirectory
          ? [`${entry.configMapDirectory}:/mnt/configmap/${entry.aciName}:ro`]
          : undefined,
        RestartPolicy: {
          Name: RESTART_POLICIES[typeof restartPolicy === "string" ? restartPolicy : "Always"] ?? "no",
        },
        NanoCpus: requests.cpu ? Math.round(requests.cpu * 1e9) : undefined,
        Memory: requests.memoryInGB ? Math.round(requests.memoryInGB * 2 ** 30) : undefined,
      },
    });
    // ACI starts the containers once the group is provisioned (the image pulled): the recorded groups turn
    // Succeeded with their container Running (recordings/2023-05-01/recording_containergroups_create_test.json).
    while (!entry.deleted && ["Pending", "Creating"].includes(entry.group.provisioningState)) {
      await new Promise((resolve) => setTimeout(resolve, PROVISIONING_POLL_MS));
    }
    if (entry.deleted || entry.group.provisioningState !== "Succeeded") {
      await container.remove({ force: true });
      return undefined;
    }
    await container.start();
    return container;
  }
}

/** Copies the container's state and log into the stand-in once ACI would report them (group provisioned). */
async function reportBack(arm: ArmStandin, entry: BridgedContainer): Promise<void> {
  const container = await entry.started;
  const lookup = { resourceGroup: entry.group.resourceGroup, container: entry.aciName };
  const record = entry.group.containers.find((candidate) => candidate.name === entry.aciName);
  if (entry.deleted || !record || entry.group.provisioningState !== "Succeeded") return;
  try {
    if (!container) {
      if (record.currentState?.state !== "Terminated") {
        arm.setLogs(entry.group.name, `the local Docker engine could not run it: ${entry.failure}\n`, lookup);
        arm.setContainerState(
          entry.group.name,
          { state: "Terminated", exitCode: ENGINE_FAILURE_EXIT_CODE },
          lookup,
        );
      }
      return;
    }
    const [inspected, logs] = await Promise.all([
      container.inspect(),
      container.logs({ stdout: true, stderr: true, follow: false }),
    ]);
    if (entry.deleted) return;
    if (entry.group.standby?.pooled) {
      // No API addresses a pooled group, but its container logs from boot: the claim hands that log out.
      record.logs = demultiplexLogs(logs);
      if (inspected.State.Status === "exited" || inspected.State.Status === "dead") {
        // Read once more: the log read beside the inspection may have missed the last lines.
        record.logs = demultiplexLogs(await container.logs({ stdout: true, stderr: true, follow: false }));
        entry.deleted = true;
        arm.standbyPools.retire(entry.group);
        await stopAndRemove(entry);
      }
      return;
    }
    arm.setLogs(entry.group.name, demultiplexLogs(logs), lookup);
    const state = inspected.State;
    const current = record.currentState;
    if (state.Status === "exited" || state.Status === "dead") {
      if (current?.state !== "Terminated" || current.exitCode !== state.ExitCode) {
        arm.setContainerState(
          entry.group.name,
          {
            state: "Terminated",
            exitCode: state.ExitCode,
            startTime: state.StartedAt,
            finishTime: state.FinishedAt,
          },
          lookup,
        );
      }
    } else if (state.Status === "running" && current?.state !== "Running") {
      arm.setContainerState(entry.group.name, { state: "Running", startTime: state.StartedAt }, lookup);
    }
  } catch {
    // The group or the container went away between two polls: the delete hook or the test deals with that.
  }
}

async function stopAndRemove(entry: BridgedContainer): Promise<void> {
  const container = await entry.started;
  if (container) {
    await container.stop({ t: DELETE_GRACE_SECONDS }).catch(() => undefined);
    await container.remove({ force: true }).catch(() => undefined);
  }
  if (entry.configMapDirectory) await rm(entry.configMapDirectory, { recursive: true, force: true });
}

/** An empty folder the container's user (uid 1000) can read once it is mounted. */
function newConfigMapDirectory(): string {
  const directory = mkdtempSync(path.join(os.tmpdir(), "aci-configmap-"));
  chmodSync(directory, 0o755);
  return directory;
}

/**
 * Makes the folder hold exactly the config map's keys as files, each written whole (a temporary file renamed over
 * it), readable by the container's user. How soon ACI's files change after an update is not verified.
 */
async function writeConfigMap(directory: string, pairs: Record<string, string>): Promise<void> {
  await mkdir(directory, { recursive: true });
  for (const [key, value] of Object.entries(pairs)) {
    const temporary = path.join(directory, `.${key}.${process.pid}.tmp`);
    await writeFile(temporary, value, { mode: 0o644 });
    await rename(temporary, path.join(directory, key));
  }
  for (const file of await readdir(directory)) {
    if (!(file in pairs) && !file.endsWith(".tmp")) await rm(path.join(directory, file), { force: true });
  }
}
