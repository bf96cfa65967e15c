import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import type { ProxySettings, TlsSettings } from "@azure/core-rest-pipeline";
import {
  AzurePipelinesCredential,
  ClientCertificateCredential,
  ClientSecretCredential,
  ManagedIdentityCredential,
  type GetTokenOptions,
  type TokenCredential,
} from "@azure/identity";
import { withRetries, type RetryPolicy } from "../core/retry";

/** An Azure Resource Manager service connection, as plain values. */
export interface AzureConnection {
  /** Resource Manager URL of the connection's cloud, such as https://management.azure.com/. */
  armUrl: string;
  /** Entra ID authority host of that cloud, such as https://login.microsoftonline.com/. */
  authorityHost: string;
  /** The audience of Resource Manager tokens (the connection's activeDirectoryServiceEndpointResourceId). */
  audience: string;
  subscriptionId: string;
  tenantId: string;
  authentication: AzureAuthentication;
  /** The agent's proxy and certificates, which every request to Entra ID and Resource Manager must use. */
  agentHttp?: AgentHttpSettings;
}

/** The agent's proxy and certificate settings, as tl.getHttpProxyConfiguration and getHttpCertConfiguration give them. */
export interface AgentHttpSettings {
  proxy?: {
    url: string;
    username?: string;
    password?: string;
    /** Regular expressions; a URL that matches one is reached directly (the task library's rule). */
    bypass: string[];
  };
  certificates?: { caFile?: string; certFile?: string; keyFile?: string; passphrase?: string };
}

/**
 * The Azure SDK pipeline's proxyOptions and tlsOptions for requests to `url`, as Microsoft's tasks hand the agent's
 * settings to their clients (azure-pipelines-task-lib getHttpProxyConfiguration / getHttpCertConfiguration).
 */
export function azurePipelineOptions(
  settings: AgentHttpSettings | undefined,
  url: string,
): { proxyOptions?: ProxySettings; tlsOptions?: TlsSettings } {
  const proxy = settings?.proxy;
  const useProxy = proxy && !proxy.bypass.some((pattern) => new RegExp(pattern, "i").test(url));
  const certificates = settings?.certificates;
  return {
    ...(useProxy && { proxyOptions: proxySettings(proxy) }),
    ...(certificates && {
      tlsOptions: {
        // An explicit ca replaces Node's list: keep the well-known roots beside the agent's own.
        ca: certificates.caFile
          ? [...rootCertificates, readFileSync(certificates.caFile, "utf8")]
          : undefined,
        cert: certificates.certFile ? readFileSync(certificates.certFile, "utf8") : undefined,
        key: certificates.keyFile ? readFileSync(certificates.keyFile, "utf8") : undefined,
        passphrase: certificates.passphrase,
      },
    }),
  };
}

export type AzureAuthentication =
  | { scheme: "servicePrincipalSecret"; clientId: string; secret: string }
  | { scheme: "servicePrincipalCertificate"; clientId: string; certificatePem: string }
  | { scheme: "managedIdentity"; clientId?: string }
  | {
      scheme: "workloadIdentityFederation";
      clientId: string;
      serviceConnectionId: string;
      /** The job's access token, with which the OIDC token is requested from Azure DevOps. */
      systemAccessToken: string;
    };

const PUBLIC_CLOUD_AUTHORITIES = [
  "https://login.microsoftonline.com",
  "https://login.chinacloudapi.cn",
  "https://login.microsoftonline.us",
];

export function armScope(connection: AzureConnection): string {
  return `${connection.audience.replace(/\/+$/, "")}/.default`;
}

/**
 * Entra ID may throttle or fail for a moment like any service; a token request is safe to repeat. msal remembers
 * a throttled token request and refuses it for a while, so each retry asks through a fresh credential.
 */
export function retryingCredential(
  create: () => TokenCredential,
  policy: RetryPolicy,
  signal: AbortSignal,
): TokenCredential {
  let credential = create();
  return {
    getToken: (scopes: string | string[], options?: GetTokenOptions) =>
      withRetries(
        async () => {
          try {
            return await credential.getToken(scopes, options);
          } catch (error) {
            credential = create();
            throw error;
          }
        },
        policy,
        signal,
      ),
  };
}

function proxySettings(proxy: NonNullable<AgentHttpSettings["proxy"]>): ProxySettings {
  const address = new URL(proxy.url);
  return {
    host: `${address.protocol}//${address.hostname}`,
    port: Number(address.port) || (address.protocol === "https:" ? 443 : 80),
    username: proxy.username,
    password: proxy.password,
  };
}

export function createCredential(connection: AzureConnection): TokenCredential {
  const authorityHost = connection.authorityHost;
  // Instance discovery asks the public cloud about the authority: Azure Stack and other hosts must skip it.
  const disableInstanceDiscovery = !PUBLIC_CLOUD_AUTHORITIES.includes(authorityHost.replace(/\/+$/, ""));
  const options = {
    authorityHost,
    disableInstanceDiscovery,
    ...azurePipelineOptions(connection.agentHttp, authorityHost),
  };
  const auth = connection.authentication;
  switch (auth.scheme) {
    case "servicePrincipalSecret":
      return new ClientSecretCredential(connection.tenantId, auth.clientId, auth.secret, options);
    case "servicePrincipalCertificate":
      return new ClientCertificateCredential(
        connection.tenantId,
        auth.clientId,
        { certificate: auth.certificatePem },
        options,
      );
    case "managedIdentity":
      return auth.clientId ? new ManagedIdentityCredential(auth.clientId) : new ManagedIdentityCredential();
    case "workloadIdentityFederation":
      return new AzurePipelinesCredential(
        connection.tenantId,
        auth.clientId,
        auth.serviceConnectionId,
        auth.systemAccessToken,
        options,
      );
  }
}
