/** Service connections and the job's own access token, as the agent hands them to tasks. */
import * as tl from "azure-pipelines-task-lib/task";
import type { AgentHttpSettings, AzureAuthentication, AzureConnection } from "../clients/entra";
import { InputError } from "../core/errors";
import type { DockerConnection } from "../core/dockerEngine";

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
function secret<T extends string | undefined>(value: T): T {
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
  return secret(token);
}

/**
 * The agent's proxy (Agent.ProxyUrl, Agent.ProxyUsername, Agent.ProxyPassword, Agent.ProxyBypassList) and
 * certificates (Agent.CAInfo, Agent.ClientCert, Agent.ClientCertKey, Agent.ClientCertPassword), read through the
 * task library as Microsoft's tasks read them.
 */
export function agentHttpSettings(): AgentHttpSettings {
  const proxy = tl.getHttpProxyConfiguration();
  const certificates = tl.getHttpCertConfiguration();
  return {
    proxy: proxy
      ? {
          url: proxy.proxyUrl,
          username: proxy.proxyUsername,
          password: secret(proxy.proxyPassword),
          bypass: proxy.proxyBypassHosts ?? [],
        }
      : undefined,
    certificates: certificates
      ? {
          caFile: certificates.caFile,
          certFile: certificates.certFile,
          keyFile: certificates.keyFile,
          passphrase: secret(certificates.passphrase),
        }
      : undefined,
  };
}

/** An Azure Resource Manager service connection, as the agent hands it to tasks. */
export function readAzureConnection(id: string): AzureConnection {
  const auth = authorization(id);
  const scheme = (auth.scheme ?? "ServicePrincipal").toLowerCase();
  const param = auth.parameter;
  const data = (key: string) => tl.getEndpointDataParameter(id, key, true);
  // Microsoft's tasks recognise an Azure Stack Hub connection by its data 'environment' equal to 'AzureStack'
  // (azure-pipelines-tasks-azure-arm-rest, AzureRMEndpoint); Azure Stack Hub has no Container Instances.
  if (data("environment")?.toLowerCase() === "azurestack") {
    throw new InputError(
      "azureSubscription",
      "the connection is to Azure Stack Hub, which has no Azure Container Instances: on Azure Stack Hub, run the agents with provider 'docker' on a Docker host there.",
    );
  }
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
    agentHttp: agentHttpSettings(),
  };
}

/**
 * The registry an ACR-type connection names: its loginServer, which older connections hold as JSON
 * `{loginServer, id}` (docker-common's ACRAuthenticationTokenProvider reads both forms).
 */
function acrLoginServer(value: string | undefined): string | undefined {
  if (!value) return undefined;
  try {
    const parsed = JSON.parse(value) as { loginServer?: unknown };
    return typeof parsed.loginServer === "string" ? parsed.loginServer.toLowerCase() : undefined;
  } catch {
    return value.toLowerCase();
  }
}

/**
 * A Docker Registry service connection. Read as Microsoft's Docker tasks read it (azure-pipelines-tasks,
 * common-npm-packages/docker-common/registryauthenticationprovider): data parameter `registrytype` "ACR" means an
 * Azure Container Registry connection, whose authorization holds `loginServer`, `serviceprincipalid` and
 * `serviceprincipalkey`; any other holds `registry`, `username` and `password`.
 */
export function readRegistryConnection(id: string): { server: string; username: string; password: string } {
  const auth = authorization(id);
  const scheme = (auth.scheme ?? "").toLowerCase();
  if (scheme === "managedserviceidentity" || scheme === "workloadidentityfederation") {
    throw new InputError(
      "registryConnection",
      `the connection authenticates with ${scheme === "managedserviceidentity" ? "a managed identity" : "workload identity federation"}, which cannot be handed to a container: with provider aci, leave registryConnection empty and set registryIdentity to a user-assigned identity with AcrPull on the registry; otherwise use a connection with a service principal or a username and password.`,
    );
  }
  const param = auth.parameter;
  const isAcr = tl.getEndpointDataParameter(id, "registrytype", true)?.toUpperCase() === "ACR";
  const server = isAcr ? acrLoginServer(param("loginServer")) : param("registry");
  const username = isAcr ? param("serviceprincipalid") : param("username");
  const password = secret(isAcr ? param("serviceprincipalkey") : param("password"));
  if (!server || !username || !password) {
    throw new InputError(
      "registryConnection",
      isAcr
        ? "the Azure Container Registry connection has no login server, service principal id and key: recreate it with the service principal authentication type, or use registryIdentity."
        : "the connection has no registry, username and password: use a Docker Registry connection of type 'Others' with the registry's credentials, an 'Azure Container Registry' connection with a service principal, or registryIdentity.",
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
