/** Everything that reads from or writes to the agent through azure-pipelines-task-lib. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as taskInternal from "azure-pipelines-task-lib/internal";
import * as tl from "azure-pipelines-task-lib/task";
import type { AzureAuthentication, AzureConnection } from "../clients/entra";
import { InputError } from "../core/errors";
import type { RawInputs } from "../inputs/parse";
import type { Log } from "../core/log";
import type { DockerConnection } from "../providers/docker/dockerProvider";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../core/retry";

/** task.json names of inputs that YAML knows by an alias; the agent passes inputs by their names. */
const NAMES_OF_ALIASES: Readonly<Record<string, string>> = { azureSubscription: "connectedServiceNameARM" };

/** Inputs that may hold a secret, such as a personal access token typed in without a secret variable. */
const SECRET_INPUTS: ReadonlySet<string> = new Set(["token"]);

/** The raw values of the inputs, keyed by their YAML names; never throws, so that validation happens in one place. */
export function readInputs(names: readonly string[]): RawInputs {
  return Object.fromEntries(names.map((name) => [name, readInput(NAMES_OF_ALIASES[name] ?? name)]));
}

/**
 * tl.getInput writes every value it returns to the debug log, before the task could register it as a
 * secret; secret inputs are read from task-lib's store directly, as tl.getInput does, without that line.
 */
function readInput(name: string): string | undefined {
  if (!SECRET_INPUTS.has(name)) return tl.getInput(name, false);
  return taskInternal._vault.retrieveSecret(`INPUT_${taskInternal._getVariableKey(name)}`);
}

export const pipelineLog: Log = {
  info: (message) => console.log(message),
  warn: (message) => tl.warning(message),
  group: (title, lines) => {
    console.log(`##[group]${title}`);
    console.log(lines);
    console.log("##[endgroup]");
  },
};

/**
 * A service connection's authorization parameters. Read from the whole authorization object because
 * tl.getEndpointAuthorizationParameter writes each value it returns to the debug log.
 */
function authorization(id: string): { scheme?: string; parameter: (key: string) => string | undefined } {
  const auth = tl.getEndpointAuthorization(id, true);
  const parameters = Object.entries(auth?.parameters ?? {});
  return {
    scheme: auth?.scheme,
    parameter: (key) =>
      parameters.find(([name]) => name.toLowerCase() === key.toLowerCase())?.[1] || undefined,
  };
}

/** Registers a value for masking; the agent masks line by line, so a PEM is registered a line at a time. */
function secret(value: string | undefined): string | undefined {
  for (const line of (value ?? "").split(/\r?\n/)) {
    if (line.trim().length >= 8 && !line.startsWith("-----")) tl.setSecret(line.trim());
  }
  return value;
}

export function collectionUrl(): string {
  const url = tl.getVariable("System.CollectionUri") ?? tl.getVariable("System.TeamFoundationCollectionUri");
  if (!url) throw new Error("System.CollectionUri is not set: run this task in an Azure Pipelines job.");
  return url;
}

/** The token that registers and removes agents: the given one, or the job's own access token. */
export function registrationToken(given: string | undefined): string {
  const token = given ?? authorization("SystemVssConnection").parameter("AccessToken");
  if (!token) {
    throw new InputError(
      "token",
      "is empty and the job's access token is not available: give a personal access token, or allow scripts to access the OAuth token for this job.",
    );
  }
  return secret(token)!;
}

/** An Azure Resource Manager service connection, as the agent hands it to tasks. */
export function readAzureConnection(id: string): AzureConnection {
  const auth = authorization(id);
  const scheme = (auth.scheme ?? "ServicePrincipal").toLowerCase();
  const param = auth.parameter;
  const data = (key: string) => tl.getEndpointDataParameter(id, key, true);
  const armUrl = tl.getEndpointUrl(id, true) || "https://management.azure.com/";
  const tenantId = param("tenantid") ?? "";
  const clientId = param("serviceprincipalid") ?? "";
  let authentication: AzureAuthentication;
  switch (scheme) {
    case "serviceprincipal":
      authentication =
        param("authenticationType") === "spnCertificate"
          ? {
              scheme: "servicePrincipalCertificate",
              clientId,
              certificatePem: secret(param("servicePrincipalCertificate")) ?? "",
            }
          : {
              scheme: "servicePrincipalSecret",
              clientId,
              secret: secret(param("serviceprincipalkey")) ?? "",
            };
      break;
    case "managedserviceidentity":
      authentication = { scheme: "managedIdentity", clientId: data("msiclientId") || undefined };
      break;
    case "workloadidentityfederation":
      authentication = {
        scheme: "workloadIdentityFederation",
        clientId,
        serviceConnectionId: id,
        systemAccessToken: registrationToken(undefined),
      };
      break;
    default:
      throw new InputError(
        "azureSubscription",
        `the connection uses the '${scheme}' scheme, which this task does not support: use a service principal, managed identity or workload identity federation connection.`,
      );
  }
  const subscriptionId = data("subscriptionid") ?? data("subscriptionId");
  if (!subscriptionId) {
    throw new InputError(
      "azureSubscription",
      "the connection is not scoped to a subscription: use a subscription-level Azure Resource Manager connection.",
    );
  }
  return {
    armUrl,
    authorityHost:
      data("activeDirectoryAuthority") ||
      data("environmentAuthorityUrl") ||
      "https://login.microsoftonline.com/",
    audience: data("activeDirectoryServiceEndpointResourceId") || armUrl,
    subscriptionId,
    tenantId,
    authentication,
  };
}

/** A Docker Registry service connection (username and password). */
export function readRegistryConnection(id: string): { server: string; username: string; password: string } {
  const param = authorization(id).parameter;
  const server = param("registry");
  const username = param("username");
  const password = secret(param("password"));
  if (!server || !username || !password) {
    throw new InputError(
      "registryConnection",
      "the connection has no registry, username and password: use a Docker Registry connection of type 'Others' or 'Azure Container Registry' with admin or token credentials, or use registryIdentity for Azure Container Registry.",
    );
  }
  return { server, username, password };
}

/** A Docker host service connection (TLS), or the agent's local engine when none is given. */
export function readDockerConnection(id: string | undefined): DockerConnection {
  if (!id) return { kind: "local" };
  const param = authorization(id).parameter;
  const url = tl.getEndpointUrl(id, true);
  if (!url)
    throw new InputError(
      "dockerEndpoint",
      "the Docker host connection has no server URL: set it to tcp://<host>:2376.",
    );
  return { kind: "remote", url, ca: param("cacert"), cert: param("cert"), key: secret(param("key")) };
}

/** Fires when the agent cancels the task (SIGINT, then SIGTERM). */
export function cancellationSignal(log: Log): AbortSignal {
  const controller = new AbortController();
  const cancel = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    log.warn(`Received ${signal}: cancelling and removing what this task created.`);
    controller.abort();
  };
  process.on("SIGINT", cancel);
  process.on("SIGTERM", cancel);
  return controller.signal;
}

/** Attaches a markdown job summary to the run. */
export function uploadSummary(name: string, markdown: string): void {
  const directory = tl.getVariable("Agent.TempDirectory") ?? os.tmpdir();
  const file = path.join(directory, `${name}-${process.pid}.md`);
  fs.writeFileSync(file, markdown);
  tl.uploadSummary(file);
}

export interface Tuning {
  pollIntervalMs: number;
  retryPolicy: RetryPolicy;
}

function positiveNumber(variable: string): number | undefined {
  const value = Number(process.env[variable]);
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

/** Polling and retry timing; the environment may shorten it so that tests need not wait seconds per round. */
export function tuning(defaultPollIntervalMs: number): Tuning {
  const baseDelayMs = positiveNumber("EPHEMERAL_AGENT_RETRY_BASE_MS") ?? DEFAULT_RETRY_POLICY.baseDelayMs;
  return {
    pollIntervalMs: positiveNumber("EPHEMERAL_AGENT_POLL_INTERVAL_MS") ?? defaultPollIntervalMs,
    retryPolicy: { attempts: DEFAULT_RETRY_POLICY.attempts, baseDelayMs, maxDelayMs: baseDelayMs * 30 },
  };
}
