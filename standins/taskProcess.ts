import { execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { APP_CERTIFICATE_PATH, CA_CERT_PATH, STANDIN_DEFAULTS, type StartAllOptions, startAll } from ".";

export const REPO = path.resolve(__dirname, "..");
export type TaskName = "StartEphemeralAgentV1" | "TeardownEphemeralAgentV1";
export type AuthScheme =
  "servicePrincipalSecret" | "servicePrincipalCertificate" | "managedIdentity" | "workloadIdentityFederation";
export type Standins = Awaited<ReturnType<typeof startAll>>;

/** The ARM service connection's id, as the agent names it in ENDPOINT_* variables. */
export const ARM_CONNECTION = STANDIN_DEFAULTS.serviceConnectionId;

/** Everything a task prints about itself through logging commands. */
export interface TaskRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Output variables set with isOutput=true. */
  outputs: Record<string, string>;
  result?: { status: string; message: string };
  warnings: string[];
  /** Contents of the uploaded job summaries. */
  summaries: string[];
}

export interface TaskEnvironment {
  inputs: Record<string, string>;
  scheme?: AuthScheme;
  /** The job's access token (SystemVssConnection). */
  jobToken?: string;
  extra?: Record<string, string>;
}

/** Starts all stand-ins; DevOps speaks https so that workload identity federation works too. */
export function startStandins(options: StartAllOptions = {}): Promise<Standins> {
  return startAll({ devops: { protocol: "https" }, ...options });
}

/** What taskEnvironment needs of the stand-ins: Standins, or the addresses standins/serve.ts prints. */
export interface StandinAddresses {
  arm: { url: string };
  entra: { url: string; imdsHost: string };
  devops: { url: string; oidcRequestUri(project: string): string };
  /** The Retail Prices API stand-in; without it the tasks would ask the real API. */
  retailPrices?: { url: string };
}

/** The variables the agent sets for a task: inputs, endpoints, system variables. */
export function taskEnvironment(standins: StandinAddresses, environment: TaskEnvironment): NodeJS.ProcessEnv {
  // Created by the run that uses it and removed after it.
  const temp = path.join(os.tmpdir(), `ephemeral-task-${randomUUID()}`);
  const scheme = environment.scheme ?? "servicePrincipalSecret";
  const { tenantId, clientId, clientSecret, managedIdentityClientId, subscriptionId } = STANDIN_DEFAULTS;
  const id = ARM_CONNECTION;
  const authParameters: Record<string, string> = { tenantid: tenantId, serviceprincipalid: clientId };
  let authScheme = "ServicePrincipal";
  if (scheme === "servicePrincipalSecret") {
    authParameters.authenticationType = "spnKey";
    authParameters.serviceprincipalkey = clientSecret;
  } else if (scheme === "servicePrincipalCertificate") {
    authParameters.authenticationType = "spnCertificate";
    authParameters.servicePrincipalCertificate = fs.readFileSync(APP_CERTIFICATE_PATH, "utf8");
  } else if (scheme === "managedIdentity") {
    authScheme = "ManagedServiceIdentity";
  } else {
    authScheme = "WorkloadIdentityFederation";
  }
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_EXTRA_CA_CERTS: CA_CERT_PATH,
    EPHEMERAL_AGENT_POLL_INTERVAL_MS: "100",
    EPHEMERAL_AGENT_RETRY_BASE_MS: "20",
    ...(standins.retailPrices && { EPHEMERAL_AGENT_RETAIL_PRICES_URL: standins.retailPrices.url }),
    AGENT_TEMPDIRECTORY: temp,
    AGENT_VERSION: "4.260.0",
    SYSTEM_COLLECTIONURI: standins.devops.url,
    SYSTEM_TEAMFOUNDATIONCOLLECTIONURI: standins.devops.url,
    SYSTEM_HOSTTYPE: "build",
    BUILD_BUILDID: "4711",
    ENDPOINT_AUTH_SYSTEMVSSCONNECTION: JSON.stringify({
      scheme: "OAuth",
      parameters: { AccessToken: environment.jobToken ?? STANDIN_DEFAULTS.jobToken },
    }),
    [`ENDPOINT_URL_${id}`]: `${standins.arm.url}/`,
    [`ENDPOINT_AUTH_SCHEME_${id}`]: authScheme,
    [`ENDPOINT_AUTH_${id}`]: JSON.stringify({ scheme: authScheme, parameters: authParameters }),
    [`ENDPOINT_DATA_${id}_SUBSCRIPTIONID`]: subscriptionId,
    [`ENDPOINT_DATA_${id}_ENVIRONMENT`]: "AzureStackLocal",
    [`ENDPOINT_DATA_${id}_ACTIVEDIRECTORYAUTHORITY`]: `${standins.entra.url}/`,
    [`ENDPOINT_DATA_${id}_ACTIVEDIRECTORYSERVICEENDPOINTRESOURCEID`]: standins.arm.url,
    ...environment.extra,
  };
  if (scheme === "managedIdentity") {
    env[`ENDPOINT_DATA_${id}_MSICLIENTID`] = managedIdentityClientId;
    env.AZURE_POD_IDENTITY_AUTHORITY_HOST = standins.entra.imdsHost;
  }
  if (scheme === "workloadIdentityFederation") {
    env.SYSTEM_OIDCREQUESTURI = standins.devops.oidcRequestUri(STANDIN_DEFAULTS.project);
  }
  for (const [name, value] of Object.entries(environment.inputs)) {
    env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] = value;
  }
  return env;
}

export interface RunOptions {
  /** Run the TypeScript sources instead of the bundle in dist/. */
  sources?: boolean;
  /** Send this signal once stdout contains the text (or the pattern matches). */
  interrupt?: { when: string | RegExp; signal: NodeJS.Signals };
  /** Send this signal `ms` after the task was spawned, or after its stdout first matched `from`, unless it ended. */
  interruptAfter?: { ms: number; signal: NodeJS.Signals; from?: RegExp };
  /** Called with everything the task has printed to stdout so far, whenever it prints more. */
  onStdout?: (stdout: string) => void;
  timeoutMs?: number;
}

/** What scripts/build.mjs makes the bundles from, besides the dependencies it bundles (see bundlesAreCurrent). */
const BUNDLE_SOURCES = [
  "tasks",
  "scripts",
  "images/icon.png",
  "tsconfig.json",
  "package.json",
  "package-lock.json",
];

function newestModificationMs(file: string): number {
  const stats = fs.statSync(file);
  if (!stats.isDirectory()) return stats.mtimeMs;
  return Math.max(
    stats.mtimeMs,
    ...fs.readdirSync(file).map((entry) => newestModificationMs(path.join(file, entry))),
  );
}

/**
 * True when every task's dist/<Task>/index.js is newer than every file it is built from. npm writes the files it
 * unpacks into node_modules with a fixed old date, so the dependencies count by node_modules/.package-lock.json,
 * which npm rewrites on every install.
 */
function bundlesAreCurrent(): boolean {
  const tasks = fs
    .readdirSync(path.join(REPO, "tasks"))
    .filter((folder) => fs.existsSync(path.join(REPO, "tasks", folder, "task.json")));
  const bundles = tasks.map((task) => path.join(REPO, "dist", task, "index.js"));
  if (tasks.length === 0 || !bundles.every((bundle) => fs.existsSync(bundle))) return false;
  const oldestBundleMs = Math.min(...bundles.map((bundle) => fs.statSync(bundle).mtimeMs));
  const sources = [...BUNDLE_SOURCES, "node_modules/.package-lock.json"].map((source) =>
    path.join(REPO, source),
  );
  return sources.every((source) => !fs.existsSync(source) || newestModificationMs(source) < oldestBundleMs);
}

let bundlesBuilt: Promise<void> | undefined;

/**
 * Makes sure dist/ holds bundles of the current sources, building them at most once per process: the suites
 * that run the bundled tasks call it from their `before`, so a run of other suites builds nothing. `npm test`
 * builds just before mocha starts, and the bundles it made are then newer than their sources, so the test
 * process reuses them; a source edited since (or a fresh clone) makes it build again.
 */
export function ensureBundles(): Promise<void> {
  bundlesBuilt ??= bundlesAreCurrent()
    ? Promise.resolve()
    : promisify(execFile)(process.execPath, [path.join(REPO, "scripts", "build.mjs")], { cwd: REPO }).then(
        () => undefined,
      );
  return bundlesBuilt;
}

/** Runs a task as the agent does: a separate node process, inputs and endpoints in its environment. */
export function runTask(task: TaskName, env: NodeJS.ProcessEnv, options: RunOptions = {}): Promise<TaskRun> {
  const args = options.sources
    ? ["--import", "tsx", path.join(REPO, "tasks", task, "index.ts")]
    : [path.join(REPO, "dist", task, "index.js")];
  // The agent's temporary folder lives for one run, as on an agent; an environment may serve several runs.
  const temp = env.AGENT_TEMPDIRECTORY;
  if (temp) fs.mkdirSync(temp, { recursive: true });
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let interrupted = false;
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    const interruptAfter = options.interruptAfter;
    let interruptTimer: NodeJS.Timeout | undefined;
    const armInterrupt = () => {
      if (interruptAfter && !interruptTimer)
        interruptTimer = setTimeout(() => child.kill(interruptAfter.signal), interruptAfter.ms);
    };
    if (!interruptAfter?.from) armInterrupt();
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (interruptAfter?.from?.test(stdout)) armInterrupt();
      options.onStdout?.(stdout);
      const interrupt = options.interrupt;
      if (interrupt && !interrupted) {
        const hit =
          typeof interrupt.when === "string" ? stdout.includes(interrupt.when) : interrupt.when.test(stdout);
        if (hit) {
          interrupted = true;
          child.kill(interrupt.signal);
        }
      }
    });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      clearTimeout(interruptTimer);
      const run = parseRun(code, stdout, stderr);
      if (temp) fs.rmSync(temp, { recursive: true, force: true });
      resolve(run);
    });
  });
}

function commandProperties(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split(";")
      .filter((pair) => pair.includes("="))
      .map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]),
  );
}

export function parseRun(code: number | null, stdout: string, stderr: string): TaskRun {
  const run: TaskRun = { code, stdout, stderr, outputs: {}, warnings: [], summaries: [] };
  for (const match of stdout.matchAll(/^##vso\[([\w.]+)([^\]]*)\](.*)$/gm)) {
    const [, command, rawProperties, value] = match;
    const properties = commandProperties(rawProperties.trim());
    if (command === "task.setvariable" && properties.isOutput === "true")
      run.outputs[properties.variable] = value;
    if (command === "task.complete") run.result = { status: properties.result, message: value };
    if (command === "task.issue" && properties.type === "warning") run.warnings.push(value);
    if (command === "task.logissue" && properties.type === "warning") run.warnings.push(value);
    if (command === "task.uploadsummary" && fs.existsSync(value))
      run.summaries.push(fs.readFileSync(value, "utf8"));
  }
  return run;
}

/** Every secret value the stand-ins know; none may appear in what a task prints. */
export function knownSecrets(): string[] {
  const { clientSecret, jobToken, readerToken } = STANDIN_DEFAULTS;
  const certificate = fs.readFileSync(APP_CERTIFICATE_PATH, "utf8");
  const keyBody = /-----BEGIN [A-Z ]*PRIVATE KEY-----\n([^-]+)\n/.exec(certificate)?.[1].split("\n")[0] ?? "";
  return [clientSecret, jobToken, readerToken, keyBody].filter((secret) => secret.length > 0);
}

/** Fails when a secret appears; `task.setsecret` commands are exempt: the agent consumes them to mask the value. */
export function assertNoSecrets(text: string, secrets: readonly string[] = knownSecrets()): void {
  const visible = text.replace(/^##vso\[task\.setsecret\].*$/gm, "");
  for (const secret of secrets) {
    if (visible.includes(secret)) throw new Error(`a secret (${secret.slice(0, 4)}…) appears in the output`);
  }
}

/** The variables the agent sets for a Docker Registry service connection with a username and password. */
export function registryConnectionVariables(
  id: string,
  registry: { server: string; username: string; password: string },
): Record<string, string> {
  return {
    [`ENDPOINT_URL_${id}`]: `https://${registry.server}`,
    [`ENDPOINT_AUTH_${id}`]: JSON.stringify({
      scheme: "UsernamePassword",
      parameters: { registry: registry.server, username: registry.username, password: registry.password },
    }),
  };
}

/** The variables the agent sets for a Docker host service connection (TLS client certificate). */
export function dockerHostConnectionVariables(
  id: string,
  url: string,
  tls: { cacert: string; cert: string; key: string },
): Record<string, string> {
  return {
    [`ENDPOINT_URL_${id}`]: url,
    [`ENDPOINT_AUTH_${id}`]: JSON.stringify({ scheme: "Certificate", parameters: tls }),
  };
}

/** The private key and the certificate of the test app registration, as separate PEM texts. */
export function appCertificateParts(): { key: string; certificate: string } {
  const pem = fs.readFileSync(APP_CERTIFICATE_PATH, "utf8");
  const key = /-----BEGIN [A-Z ]*PRIVATE KEY-----[^-]+-----END [A-Z ]*PRIVATE KEY-----\n?/.exec(pem)?.[0];
  const certificate = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/.exec(pem)?.[0];
  if (!key || !certificate) throw new Error(`${APP_CERTIFICATE_PATH} holds no key and certificate`);
  return { key, certificate };
}

/** Container groups and agent registrations the stand-ins still hold, by name. */
export function leftovers(
  standins: Pick<Standins, "arm" | "devops">,
  poolName: string = STANDIN_DEFAULTS.poolName,
): { containers: string[]; agents: string[] } {
  return {
    containers: standins.arm
      .containerGroups()
      .map((group) => group.name)
      .sort(),
    agents: standins.devops
      .agents(poolName)
      .map((agent) => agent.name)
      .sort(),
  };
}

/** Runs `work` for every item, at most `concurrency` at a time; results in the items' order. */
export async function mapConcurrently<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}

/** Inputs that point either task at the stand-ins' Azure connection, resource group and pool. */
export const ACI_INPUTS = {
  provider: "aci",
  connectedServiceNameARM: STANDIN_DEFAULTS.serviceConnectionId,
  resourceGroup: STANDIN_DEFAULTS.resourceGroup,
  agentPool: STANDIN_DEFAULTS.poolName,
};
export const AGENT_IMAGE = "myregistry.azurecr.io/ephemeral-agent:1";
