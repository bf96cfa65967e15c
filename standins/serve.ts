/**
 * Runs the stand-ins (`startAll`, Azure DevOps over https) in a process of their own, for tests that block
 * their own process while a task runs (MockTestRunner runs the task with spawnSync).
 *
 *   node --import tsx standins/serve.ts ['<StartAllOptions as JSON>']
 *
 * Prints one JSON line, `ServedStandins` (addresses), on stdout, then answers on `control` (plain http):
 *   GET  /state      -> `StandinState`: container groups (environment without secure values), agents per pool,
 *                       and method/path/status of every request each stand-in received.
 *   POST /behaviours -> appends `SerializedBehaviour[]` (the body) to `arm.behaviours`.
 *   POST /reset      -> closes the stand-ins and starts fresh ones (body: new options, or empty for the first
 *                       ones); answers the new `ServedStandins`.
 *   POST /close      -> stops the stand-ins and exits.
 * It also exits when its stdin pipe closes, so it never outlives the test process that spawned it.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import {
  STANDIN_DEFAULTS,
  startAll,
  type ContainerGroupBehaviour,
  type RecordedRequest,
  type StartAllOptions,
  type Standins,
} from "./index";

export interface ServedStandins {
  control: string;
  arm: { url: string; subscriptionId: string };
  entra: { url: string; imdsHost: string };
  devops: { url: string; oidcRequestUri: string };
  retailPrices: { url: string };
}

/** A container group behaviour as JSON: `match` is a group name or a RegExp source. */
export type SerializedBehaviour = Omit<ContainerGroupBehaviour, "match"> & {
  match: string | { pattern: string; flags?: string };
};

export interface StandinState {
  containerGroups: {
    name: string;
    resourceGroup: string;
    provisioningState: string;
    tags: Record<string, string>;
    /** Environment variables with a plain value; secure values are left out. */
    environment: Record<string, string>;
    containers: { name: string; state?: string; exitCode?: number }[];
  }[];
  agents: Record<string, { name: string; status: string; enabled: boolean }[]>;
  requests: Record<"arm" | "entra" | "devops", { method: string; path: string; status?: number | "reset" }[]>;
}

function addressesOf(standins: Standins, control: string): ServedStandins {
  return {
    control,
    arm: { url: standins.arm.url, subscriptionId: standins.arm.subscriptionId },
    entra: { url: standins.entra.url, imdsHost: standins.entra.imdsHost },
    devops: {
      url: standins.devops.url,
      oidcRequestUri: standins.devops.oidcRequestUri(STANDIN_DEFAULTS.project),
    },
    retailPrices: { url: standins.retailPrices.url },
  };
}

function requestLog(requests: RecordedRequest[]): StandinState["requests"]["arm"] {
  return requests.map(({ method, path, status }) => ({ method, path, status }));
}

function state({ arm, devops, entra }: Standins): StandinState {
  return {
    containerGroups: arm.containerGroups().map((group) => ({
      name: group.name,
      resourceGroup: group.resourceGroup,
      provisioningState: group.provisioningState,
      tags: group.tags ?? {},
      environment: Object.fromEntries(
        (group.request.properties?.containers?.[0]?.properties?.environmentVariables ?? []).flatMap(
          ({ name, value }) => (value === undefined ? [] : [[name, value]]),
        ),
      ),
      containers: group.containers.map((container) => ({
        name: container.name,
        state: container.currentState?.state,
        exitCode: container.currentState?.exitCode,
      })),
    })),
    agents: Object.fromEntries(
      devops.state.pools.map((pool) => [
        pool.name,
        devops.agents(pool.name).map(({ name, status, enabled }) => ({ name, status, enabled })),
      ]),
    ),
    requests: {
      arm: requestLog(arm.requests),
      entra: requestLog(entra.requests),
      devops: requestLog(devops.requests),
    },
  };
}

function behaviour({ match, ...rest }: SerializedBehaviour): ContainerGroupBehaviour {
  return { ...rest, match: typeof match === "string" ? match : new RegExp(match.pattern, match.flags) };
}

function start(options: StartAllOptions): Promise<Standins> {
  return startAll({ ...options, devops: { protocol: "https", ...options.devops } });
}

async function readJson(request: http.IncomingMessage): Promise<unknown> {
  let text = "";
  for await (const chunk of request) text += (chunk as Buffer).toString();
  return text.trim() ? JSON.parse(text) : undefined;
}

async function main(): Promise<void> {
  const initialOptions = JSON.parse(process.argv[2] ?? "{}") as StartAllOptions;
  let standins = await start(initialOptions);
  let control = "";
  let stopping: Promise<void> | undefined;

  /** POST /close and the end of stdin may both ask; the first one stops everything. */
  function shutdown(): Promise<void> {
    stopping ??= standins.close().then(() => {
      server.close();
      process.exit(0);
    });
    return stopping;
  }

  async function answer(request: http.IncomingMessage): Promise<{ status: number; body?: unknown }> {
    const route = `${request.method} ${request.url}`;
    if (route === "GET /state") return { status: 200, body: state(standins) };
    if (route === "POST /behaviours") {
      const behaviours = ((await readJson(request)) ?? []) as SerializedBehaviour[];
      standins.arm.behaviours.push(...behaviours.map(behaviour));
      return { status: 204 };
    }
    if (route === "POST /reset") {
      const options = ((await readJson(request)) ?? initialOptions) as StartAllOptions;
      await standins.close();
      standins = await start(options);
      return { status: 200, body: addressesOf(standins, control) };
    }
    if (route === "POST /close") {
      setImmediate(() => void shutdown()); // after this answer is written
      return { status: 204 };
    }
    return { status: 404, body: { message: `no route ${route}` } };
  }

  const server = http.createServer((request, response) => {
    answer(request)
      .catch((error: unknown) => ({ status: 500, body: { message: String(error) } }))
      .then(({ status, body }) => {
        // A fresh connection per control request: a kept-alive one that the server times out after 5 s idle
        // can be closed just as the test process sends its next request ("other side closed").
        const headers = {
          connection: "close",
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        };
        response.writeHead(status, headers);
        response.end(body === undefined ? undefined : JSON.stringify(body));
      })
      .catch(() => response.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  control = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.stdin.on("close", () => void shutdown());
  process.stdin.resume();
  console.log(JSON.stringify(addressesOf(standins, control)));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
