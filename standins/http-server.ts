import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { serverTlsOptions } from "./tls";

/** One request as a stand-in received it; the Authorization header is never recorded. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: unknown;
  /** Who the stand-in recognised from the credentials (stand-in specific, e.g. the token's scheme). */
  caller?: unknown;
  /** HTTP status the stand-in answered with ("reset" when the connection was dropped on purpose). */
  status?: number | "reset";
  /** When the request arrived: epoch milliseconds with sub-millisecond precision, comparable across stand-ins. */
  receivedAt: number;
}

export interface StandinRequest {
  method: string;
  /** Decoded path without the query string. */
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  body: unknown;
  rawBody: Buffer;
  /** When the request arrived (see RecordedRequest). */
  receivedAt: number;
  /** Aborted when the client disconnects or the stand-in closes; long polls listen to it. */
  signal: AbortSignal;
  record: RecordedRequest;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** Objects are sent as JSON, strings as text, Buffers as bytes; undefined sends no body. */
  body?: unknown;
}

/**
 * Runs before routing; return a reply (or "reset" to destroy the socket) to short-circuit the request, or
 * undefined to pass it on. May be async: a slow answer waits, then passes.
 */
export type Interceptor = (
  request: StandinRequest,
) => Reply | "reset" | undefined | Promise<Reply | "reset" | undefined>;

export type RouteHandler = (
  request: StandinRequest,
  params: Record<string, string>,
) => Reply | Promise<Reply>;

export interface Route {
  method: string;
  /** Path template, e.g. "/subscriptions/:subscriptionId/resourcegroups/:resourceGroup"; literal parts match case-insensitively. */
  pattern: string;
  handle: RouteHandler;
}

export interface StandinServer {
  /** Origin, e.g. https://127.0.0.1:43123 */
  origin: string;
  requests: RecordedRequest[];
  /** Adds an interceptor (fault injection, throttling); returns a function that removes it. */
  intercept: (interceptor: Interceptor) => () => void;
  close: () => Promise<void>;
}

export interface StandinServerOptions {
  protocol: "http" | "https";
  routes: Route[];
  notFound: (request: StandinRequest) => Reply;
}

interface CompiledRoute extends Route {
  regex: RegExp;
  parameterNames: string[];
}

function compileRoute(route: Route): CompiledRoute {
  const parameterNames: string[] = [];
  const source = route.pattern
    .split("/")
    .map((segment) => {
      if (segment.startsWith(":")) {
        parameterNames.push(segment.slice(1));
        return "([^/]+)";
      }
      return segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("/");
  return { ...route, regex: new RegExp(`^${source}/?$`, "i"), parameterNames };
}

function parseBody(raw: Buffer, contentType: string | undefined): unknown {
  if (raw.length === 0) return undefined;
  const text = raw.toString("utf8");
  if (contentType?.includes("application/x-www-form-urlencoded")) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function recordableHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const recorded: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name === "authorization" || value === undefined) continue;
    recorded[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return recorded;
}

function send(response: ServerResponse, reply: Reply): void {
  const headers: Record<string, string> = { ...reply.headers };
  let payload: Buffer | undefined;
  if (Buffer.isBuffer(reply.body)) {
    payload = reply.body;
  } else if (typeof reply.body === "string") {
    payload = Buffer.from(reply.body);
    headers["content-type"] ??= "text/plain; charset=utf-8";
  } else if (reply.body !== undefined) {
    payload = Buffer.from(JSON.stringify(reply.body));
    headers["content-type"] ??= "application/json; charset=utf-8";
  }
  headers["content-length"] = String(payload?.length ?? 0);
  response.writeHead(reply.status, headers);
  response.end(payload);
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startStandinServer(options: StandinServerOptions): Promise<StandinServer> {
  const routes = options.routes.map(compileRoute);
  const requests: RecordedRequest[] = [];
  const interceptors: Interceptor[] = [];
  const closing = new AbortController();

  async function handle(incoming: IncomingMessage, response: ServerResponse): Promise<void> {
    const receivedAt = preciseNow();
    const url = new URL(incoming.url ?? "/", "http://standin");
    const rawBody = await readBody(incoming);
    const body = parseBody(rawBody, incoming.headers["content-type"]);
    const path = decodeURIComponent(url.pathname);
    const record: RecordedRequest = {
      method: incoming.method ?? "GET",
      path,
      query: Object.fromEntries(url.searchParams),
      headers: recordableHeaders(incoming.headers),
      body,
      receivedAt,
    };
    requests.push(record);
    const disconnected = new AbortController();
    response.on("close", () => disconnected.abort());
    const request: StandinRequest = {
      method: record.method,
      path,
      query: record.query,
      headers: incoming.headers,
      body,
      rawBody,
      receivedAt,
      signal: AbortSignal.any([disconnected.signal, closing.signal]),
      record,
    };

    for (const interceptor of interceptors) {
      const intercepted = await interceptor(request);
      if (intercepted === "reset") {
        record.status = "reset";
        incoming.socket.destroy();
        return;
      }
      if (intercepted) {
        record.status = intercepted.status;
        if (!response.destroyed) send(response, intercepted);
        return;
      }
    }

    let reply: Reply | undefined;
    for (const route of routes) {
      if (route.method !== request.method) continue;
      const match = route.regex.exec(path);
      if (!match) continue;
      const params: Record<string, string> = {};
      route.parameterNames.forEach((name, index) => (params[name] = match[index + 1]));
      reply = await route.handle(request, params);
      break;
    }
    reply ??= options.notFound(request);
    record.status = reply.status;
    if (!response.destroyed) send(response, reply);
  }

  const listener = (incoming: IncomingMessage, response: ServerResponse): void => {
    handle(incoming, response).catch((error: unknown) => {
      if (!response.headersSent) send(response, { status: 500, body: { error: String(error) } });
    });
  };
  const server =
    options.protocol === "https"
      ? https.createServer(serverTlsOptions(), listener)
      : http.createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    origin: `${options.protocol}://127.0.0.1:${port}`,
    requests,
    intercept(interceptor) {
      interceptors.push(interceptor);
      return () => {
        const index = interceptors.indexOf(interceptor);
        if (index >= 0) interceptors.splice(index, 1);
      };
    },
    async close() {
      closing.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** Epoch milliseconds with sub-millisecond precision (performance.now() on the epoch scale). */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Resolves after `ms`, or early when `signal` aborts. */
export function wait(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

export function bearerToken(request: StandinRequest): string | undefined {
  const match = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? "");
  return match?.[1];
}
