import { randomBytes, randomUUID, X509Certificate, createPublicKey, type KeyObject } from "node:crypto";
import {
  startStandinServer,
  type Interceptor,
  type RecordedRequest,
  type Reply,
  type StandinRequest,
} from "./http-server";
import { decodeJwt, hasValidSignature, isCurrent, type DecodedJwt } from "./jwt";

export type TokenScheme =
  "clientSecret" | "clientCertificate" | "workloadIdentityFederation" | "managedIdentity";

export interface IssuedToken {
  accessToken: string;
  scheme: TokenScheme;
  tenantId: string;
  clientId: string;
  /** The requested scope (token endpoint) or resource (IMDS), as sent by the client. */
  scope: string;
  expiresOn: Date;
}

export interface FederatedCredential {
  issuer: string;
  subject: string;
  /** Defaults to "api://AzureADTokenExchange". */
  audience?: string;
}

export interface EntraApp {
  tenantId: string;
  clientId: string;
  secret?: string;
  /** PEM holding the app's certificate (a private key in the same PEM is ignored). */
  certificatePem?: string;
  federated?: FederatedCredential;
}

export interface ManagedIdentity {
  clientId: string;
  tenantId: string;
}

export interface TrustedIssuer {
  issuer: string;
  publicKeyPem: string;
}

export interface EntraStandinOptions {
  apps?: EntraApp[];
  /** The first one answers IMDS requests that name no client_id (the "system-assigned" identity). */
  managedIdentities?: ManagedIdentity[];
  tokenLifetimeSeconds?: number;
}

export interface EntraStandin {
  /** https origin; use as `authorityHost` (with disableInstanceDiscovery: true). */
  url: string;
  /** Value for AZURE_POD_IDENTITY_AUTHORITY_HOST so ManagedIdentityCredential asks this stand-in instead of 169.254.169.254. */
  imdsHost: string;
  requests: RecordedRequest[];
  apps: EntraApp[];
  managedIdentities: ManagedIdentity[];
  issuedTokens: IssuedToken[];
  /** Returns the token's record if this stand-in issued it and it has not expired. */
  validateToken(accessToken: string): IssuedToken | undefined;
  /** Accepts client assertions signed by this issuer (workload identity federation). */
  trustIssuer(issuer: TrustedIssuer): void;
  /** Makes every issued token invalid (as if expired). */
  expireAllTokens(): void;
  intercept(interceptor: Interceptor): () => void;
  close(): Promise<void>;
}

const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const DEFAULT_FEDERATION_AUDIENCE = "api://AzureADTokenExchange";

function aadError(status: number, error: string, code: number, message: string): Reply {
  return {
    status,
    body: {
      error,
      error_description: `AADSTS${code}: ${message} Trace ID: ${randomUUID()} Correlation ID: ${randomUUID()} Timestamp: ${new Date().toISOString()}`,
      error_codes: [code],
      timestamp: new Date().toISOString(),
      trace_id: randomUUID(),
      correlation_id: randomUUID(),
      error_uri: `https://login.microsoftonline.com/error?code=${code}`,
    },
  };
}

function certificateFromPem(pem: string): X509Certificate {
  const block = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
  if (!block) throw new Error("certificatePem holds no certificate");
  return new X509Certificate(block[0]);
}

function thumbprintMatches(jwt: DecodedJwt, certificate: X509Certificate): boolean {
  const sha1 = Buffer.from(certificate.fingerprint.replace(/:/g, ""), "hex").toString("base64url");
  const sha256 = Buffer.from(certificate.fingerprint256.replace(/:/g, ""), "hex").toString("base64url");
  return jwt.header.x5t === sha1 || jwt.header["x5t#S256"] === sha256;
}

function audienceIncludes(audience: string | string[] | undefined, expected: string): boolean {
  return Array.isArray(audience) ? audience.includes(expected) : audience === expected;
}

export async function startEntra(options: EntraStandinOptions = {}): Promise<EntraStandin> {
  const apps = [...(options.apps ?? [])];
  const managedIdentities = [...(options.managedIdentities ?? [])];
  const lifetimeSeconds = options.tokenLifetimeSeconds ?? 3600;
  const issuedTokens: IssuedToken[] = [];
  const tokensByValue = new Map<string, IssuedToken>();
  const trustedIssuers = new Map<string, KeyObject>();
  let origin = "";

  function issue(scheme: TokenScheme, tenantId: string, clientId: string, scope: string): IssuedToken {
    const token: IssuedToken = {
      accessToken: `standin-entra.${randomBytes(24).toString("base64url")}`,
      scheme,
      tenantId,
      clientId,
      scope,
      expiresOn: new Date(Date.now() + lifetimeSeconds * 1000),
    };
    issuedTokens.push(token);
    tokensByValue.set(token.accessToken, token);
    return token;
  }

  function knownTenant(tenantId: string): boolean {
    return (
      apps.some((app) => app.tenantId === tenantId) ||
      managedIdentities.some((mi) => mi.tenantId === tenantId)
    );
  }

  function tokenEndpoint(tenantId: string): string {
    return `${origin}/${tenantId}/oauth2/v2.0/token`;
  }

  function verifyCertificateAssertion(app: EntraApp, jwt: DecodedJwt, tenantId: string): Reply | undefined {
    if (!app.certificatePem)
      return aadError(401, "invalid_client", 700027, "Client assertion failed signature validation.");
    const certificate = certificateFromPem(app.certificatePem);
    if (!thumbprintMatches(jwt, certificate) || !hasValidSignature(jwt, certificate.publicKey)) {
      return aadError(401, "invalid_client", 700027, "Client assertion contains an invalid signature.");
    }
    if (jwt.claims.sub !== app.clientId) {
      return aadError(
        401,
        "invalid_client",
        700021,
        "Client assertion subject does not match the client id.",
      );
    }
    if (!audienceIncludes(jwt.claims.aud, tokenEndpoint(tenantId))) {
      return aadError(
        401,
        "invalid_client",
        700212,
        "Client assertion audience does not match the token endpoint.",
      );
    }
    return undefined;
  }

  function verifyFederatedAssertion(app: EntraApp, jwt: DecodedJwt): Reply | undefined {
    const issuerKey = jwt.claims.iss ? trustedIssuers.get(jwt.claims.iss) : undefined;
    if (!issuerKey || !hasValidSignature(jwt, issuerKey)) {
      return aadError(
        400,
        "invalid_request",
        700211,
        "No matching federated identity record found for presented assertion issuer.",
      );
    }
    const federated = app.federated;
    if (
      !federated ||
      federated.issuer !== jwt.claims.iss ||
      federated.subject !== jwt.claims.sub ||
      !audienceIncludes(jwt.claims.aud, federated.audience ?? DEFAULT_FEDERATION_AUDIENCE)
    ) {
      return aadError(
        400,
        "invalid_request",
        700213,
        "No matching federated identity record found for presented assertion subject.",
      );
    }
    return undefined;
  }

  function token(request: StandinRequest, params: Record<string, string>): Reply {
    const tenantId = params.tenantId;
    const form = (request.body ?? {}) as Record<string, string>;
    if (!knownTenant(tenantId)) {
      return aadError(400, "invalid_request", 90002, `Tenant '${tenantId}' not found.`);
    }
    if (form.grant_type !== "client_credentials") {
      return aadError(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.");
    }
    const app = apps.find(
      (candidate) => candidate.tenantId === tenantId && candidate.clientId === form.client_id,
    );
    if (!app) {
      return aadError(
        400,
        "unauthorized_client",
        700016,
        `Application with identifier '${form.client_id}' was not found in the directory '${tenantId}'.`,
      );
    }
    let scheme: TokenScheme;
    if (form.client_secret !== undefined) {
      if (!app.secret || app.secret !== form.client_secret) {
        return aadError(401, "invalid_client", 7000215, "Invalid client secret provided.");
      }
      scheme = "clientSecret";
    } else if (form.client_assertion_type === JWT_BEARER && form.client_assertion) {
      const jwt = decodeJwt(form.client_assertion);
      if (!jwt) return aadError(401, "invalid_client", 50027, "JWT token is invalid or malformed.");
      if (!isCurrent(jwt.claims)) {
        return aadError(
          401,
          "invalid_client",
          700024,
          "Client assertion is not within its valid time range.",
        );
      }
      const isSelfSigned = jwt.claims.iss === app.clientId;
      const failure = isSelfSigned
        ? verifyCertificateAssertion(app, jwt, tenantId)
        : verifyFederatedAssertion(app, jwt);
      if (failure) return failure;
      scheme = isSelfSigned ? "clientCertificate" : "workloadIdentityFederation";
    } else {
      return aadError(
        400,
        "invalid_client",
        7000218,
        "The request body must contain client_assertion or client_secret.",
      );
    }
    const issued = issue(scheme, tenantId, app.clientId, form.scope ?? "");
    request.record.caller = { scheme, clientId: app.clientId, tenantId };
    return {
      status: 200,
      body: {
        token_type: "Bearer",
        expires_in: lifetimeSeconds,
        ext_expires_in: lifetimeSeconds,
        access_token: issued.accessToken,
      },
    };
  }

  function openIdConfiguration(_request: StandinRequest, params: Record<string, string>): Reply {
    const tenantId = params.tenantId;
    const base = `${origin}/${tenantId}`;
    return {
      status: 200,
      body: {
        token_endpoint: `${base}/oauth2/v2.0/token`,
        token_endpoint_auth_methods_supported: [
          "client_secret_post",
          "private_key_jwt",
          "client_secret_basic",
        ],
        jwks_uri: `${origin}/${tenantId}/discovery/v2.0/keys`,
        response_modes_supported: ["query", "fragment", "form_post"],
        subject_types_supported: ["pairwise"],
        id_token_signing_alg_values_supported: ["RS256"],
        response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
        scopes_supported: ["openid", "profile", "email", "offline_access"],
        issuer: `${base}/v2.0`,
        request_uri_parameter_supported: false,
        userinfo_endpoint: `${origin}/oidc/userinfo`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
        http_logout_supported: true,
        frontchannel_logout_supported: true,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        claims_supported: ["sub", "iss", "aud", "exp", "iat", "nbf", "tid"],
        kerberos_endpoint: `${base}/kerberos`,
        tenant_region_scope: "EU",
        cloud_instance_name: "microsoftonline.com",
        cloud_graph_host_name: "graph.windows.net",
        msgraph_host: "graph.microsoft.com",
        rbac_url: "https://pas.windows.net",
      },
    };
  }

  function instanceDiscovery(request: StandinRequest): Reply {
    return {
      status: 200,
      body: {
        tenant_discovery_endpoint: `${request.query.authorization_endpoint ?? origin}/v2.0/.well-known/openid-configuration`,
        "api-version": "1.1",
        metadata: [{ preferred_network: "127.0.0.1", preferred_cache: "127.0.0.1", aliases: ["127.0.0.1"] }],
      },
    };
  }

  function imdsToken(request: StandinRequest): Reply {
    if (request.headers.metadata !== "true") {
      return {
        status: 400,
        body: { error: "invalid_request", error_description: "Required metadata header not specified" },
      };
    }
    const resource = request.query.resource;
    if (!resource) {
      return {
        status: 400,
        body: {
          error: "invalid_request",
          error_description: "Required query variable 'resource' is missing",
        },
      };
    }
    const requestedClientId = request.query.client_id;
    const identity = requestedClientId
      ? managedIdentities.find((candidate) => candidate.clientId === requestedClientId)
      : managedIdentities[0];
    if (!identity) {
      return { status: 400, body: { error: "invalid_request", error_description: "Identity not found" } };
    }
    const issued = issue("managedIdentity", identity.tenantId, identity.clientId, resource);
    request.record.caller = {
      scheme: "managedIdentity",
      clientId: identity.clientId,
      tenantId: identity.tenantId,
    };
    const expiresOn = Math.floor(issued.expiresOn.getTime() / 1000);
    return {
      status: 200,
      body: {
        access_token: issued.accessToken,
        client_id: identity.clientId,
        expires_in: String(lifetimeSeconds),
        expires_on: String(expiresOn),
        ext_expires_in: String(lifetimeSeconds),
        not_before: String(expiresOn - lifetimeSeconds),
        resource,
        token_type: "Bearer",
      },
    };
  }

  const server = await startStandinServer({
    protocol: "https",
    routes: [
      { method: "POST", pattern: "/:tenantId/oauth2/v2.0/token", handle: token },
      {
        method: "GET",
        pattern: "/:tenantId/v2.0/.well-known/openid-configuration",
        handle: openIdConfiguration,
      },
      { method: "GET", pattern: "/common/discovery/instance", handle: instanceDiscovery },
      { method: "GET", pattern: "/metadata/identity/oauth2/token", handle: imdsToken },
    ],
    notFound: () => ({
      status: 404,
      body: { error: "not_found", error_description: "No such endpoint on the Entra stand-in." },
    }),
  });
  origin = server.origin;

  return {
    url: origin,
    imdsHost: origin,
    requests: server.requests,
    apps,
    managedIdentities,
    issuedTokens,
    validateToken(accessToken) {
      const issued = tokensByValue.get(accessToken);
      return issued && issued.expiresOn.getTime() > Date.now() ? issued : undefined;
    },
    trustIssuer(issuer) {
      trustedIssuers.set(issuer.issuer, createPublicKey(issuer.publicKeyPem));
    },
    expireAllTokens() {
      for (const issued of issuedTokens) issued.expiresOn = new Date(0);
    },
    intercept: server.intercept,
    close: server.close,
  };
}
