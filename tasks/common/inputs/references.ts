import { InputError } from "../core/errors";

const SUBNET_ID =
  /^\/subscriptions\/[0-9a-fA-F-]{36}\/resourceGroups\/[-\w.()]+\/providers\/Microsoft\.Network\/virtualNetworks\/[-\w.]+\/subnets\/[-\w.]+$/i;

export function parseSubnetId(value: string): string {
  if (!SUBNET_ID.test(value)) {
    throw new InputError(
      "subnetId",
      `'${value}' is not a subnet resource ID: use /subscriptions/<subscription id>/resourceGroups/<group>/providers/Microsoft.Network/virtualNetworks/<network>/subnets/<subnet> (the subnet's Properties page shows it).`,
    );
  }
  return value;
}

const USER_ASSIGNED_IDENTITY_ID =
  /^\/subscriptions\/[0-9a-fA-F-]{36}\/resourceGroups\/[-\w.()]+\/providers\/Microsoft\.ManagedIdentity\/userAssignedIdentities\/[-\w]+$/i;
const AZURE_CONTAINER_REGISTRY = /\.azurecr\.(io|cn|us)$/i;

function parseUserAssignedIdentity(input: string, value: string): string {
  if (!USER_ASSIGNED_IDENTITY_ID.test(value)) {
    throw new InputError(
      input,
      `'${value}' is not a user-assigned managed identity resource ID: use /subscriptions/<subscription id>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name> (the identity's Properties page shows it).`,
    );
  }
  return value;
}

/** A user-assigned identity pulls only from Azure Container Registry, and only when given by its resource ID. */
export function parseRegistryIdentity(value: string, image: ImageReference): string {
  parseUserAssignedIdentity("registryIdentity", value);
  if (!AZURE_CONTAINER_REGISTRY.test(image.registry)) {
    throw new InputError(
      "registryIdentity",
      `an identity can pull only from Azure Container Registry, but image '${image.reference}' comes from '${image.registry}': use an image in your registry (myregistry.azurecr.io/...), or clear registryIdentity.`,
    );
  }
  return value;
}

/**
 * The identity the job signs in with. A Linux container reaches it through the instance metadata endpoint; a
 * Windows container in a virtual network cannot reach any token endpoint (Microsoft Learn, "Use managed identities
 * with Azure Container Instances", Managed identity on Windows containers), so there it would never work.
 */
export function parseJobIdentity(
  value: string,
  container: { osType: "Linux" | "Windows"; subnetId?: string },
): string {
  parseUserAssignedIdentity("jobIdentity", value);
  if (container.osType === "Windows" && container.subnetId) {
    throw new InputError(
      "jobIdentity",
      "a Windows container in a virtual network cannot get tokens for a managed identity (Azure Container Instances offers it no token endpoint there): use osType Linux for jobs that sign in with the identity, or clear jobIdentity.",
    );
  }
  return value;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function parseDnsServers(value: string | undefined): string[] {
  const servers = (value ?? "")
    .split(/[,\s]+/)
    .map((server) => server.trim())
    .filter((server) => server !== "");
  for (const server of servers) {
    if (!IPV4.test(server)) {
      throw new InputError(
        "dnsServers",
        `'${server}' is not an IPv4 address: list DNS server addresses separated by commas.`,
      );
    }
  }
  return servers;
}

export interface ImageReference {
  /** The reference as given. */
  reference: string;
  /** Registry host; docker.io when the reference names none. */
  registry: string;
}

const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const IMAGE = new RegExp(
  `^(?:(${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?)/)?(${PATH_COMPONENT}(?:/${PATH_COMPONENT})*)(?::([\\w][\\w.-]{0,127}))?(?:@(sha256:[a-f0-9]{64}))?$`,
);

/** Checks an image reference with Docker's grammar and finds its registry, as Docker does. */
export function parseImage(value: string): ImageReference {
  const match = IMAGE.exec(value);
  if (!match) {
    throw new InputError(
      "image",
      `'${value}' is not an image reference: use [registry/]repository[:tag][@sha256:digest] with a lowercase repository, such as myregistry.azurecr.io/ephemeral-agent:1.`,
    );
  }
  const [, host] = match;
  const isRegistryHost =
    host !== undefined && (host.includes(".") || host.includes(":") || host === "localhost");
  if (host !== undefined && !isRegistryHost) {
    // "team/agent": the first component is a Docker Hub namespace, not a registry.
    return { reference: value, registry: "docker.io" };
  }
  return { reference: value, registry: host ?? "docker.io" };
}

function normaliseRegistry(registry: string): string {
  const host = registry
    .replace(/^https?:\/\//, "")
    .replace(/\/.*$/, "")
    .toLowerCase();
  return ["index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"].includes(host)
    ? "docker.io"
    : host;
}

/** A registry connection must belong to the image's registry, or its credentials would go to the wrong host. */
export function checkRegistryMatches(image: ImageReference, connectionRegistry: string): void {
  if (normaliseRegistry(connectionRegistry) !== normaliseRegistry(image.registry)) {
    throw new InputError(
      "registryConnection",
      `the connection is for registry '${connectionRegistry}' but image '${image.reference}' comes from '${image.registry}': prefix the image with the registry host, or pick the matching connection.`,
    );
  }
}
