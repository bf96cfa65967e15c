/** The layers of tasks/common and what each may import (README, "Layout"). */
const SDKS = ["@azure/*", "azure-devops-node-api", "azure-devops-node-api/*", "dockerode", "tar-stream"];
const TASK_LIBRARY = ["azure-pipelines-task-lib", "azure-pipelines-task-lib/*"];

/**
 * Forbids importing the given packages, and the given sibling folders of tasks/common (a relative path that
 * climbs to the folder). Flat config does not merge one rule across blocks: the file globs must not overlap.
 */
function layer(files, { packages = [], folders = [], because }) {
  return {
    files,
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            ...(packages.length ? [{ group: packages, message: because }] : []),
            ...folders.map((folder) => ({
              regex: `^(\\.\\./)+${folder}(/|$)`,
              message: because,
            })),
          ],
        },
      ],
    },
  };
}

const PURE =
  "core, inputs, start and teardown are pure: they reach SDKs, the task library and providers through core/ports.";

export const layers = [
  layer(
    ["tasks/common/core/**", "tasks/common/inputs/**", "tasks/common/start/**", "tasks/common/teardown/**"],
    {
      packages: [...SDKS, ...TASK_LIBRARY],
      folders: ["platform", "clients", "providers"],
      because: PURE,
    },
  ),
  layer(["tasks/common/clients/azureDevOps.ts"], {
    packages: [...TASK_LIBRARY, "@azure/*", "dockerode", "tar-stream"],
    folders: ["platform", "providers", "start", "teardown"],
    because: "clients/azureDevOps wraps azure-devops-node-api only; only platform reads the task library.",
  }),
  layer(["tasks/common/clients/entra.ts"], {
    packages: [
      ...TASK_LIBRARY,
      "azure-devops-node-api",
      "azure-devops-node-api/*",
      "@azure/arm-*",
      "dockerode",
      "tar-stream",
    ],
    folders: ["platform", "providers", "start", "teardown"],
    because: "clients/entra wraps @azure/identity only; only platform reads the task library.",
  }),
  layer(["tasks/common/clients/retailPrices.ts"], {
    packages: [
      ...TASK_LIBRARY,
      "azure-devops-node-api",
      "azure-devops-node-api/*",
      "@azure/arm-*",
      "@azure/identity",
      "dockerode",
      "tar-stream",
    ],
    folders: ["platform", "providers", "start", "teardown"],
    because:
      "clients/retailPrices reads the Azure Retail Prices API through @azure/core-rest-pipeline only; only platform reads the task library.",
  }),
  layer(["tasks/common/providers/aci/**"], {
    packages: [
      ...TASK_LIBRARY,
      "azure-devops-node-api",
      "azure-devops-node-api/*",
      "@azure/identity",
      "dockerode",
      "tar-stream",
    ],
    folders: ["docker", "inputs", "platform", "start", "teardown"],
    because:
      "the aci provider uses the Resource Manager SDK and clients/entra; it never imports the docker provider, the inputs or the task library (shared types live in core).",
  }),
  layer(["tasks/common/providers/docker/**"], {
    packages: [...TASK_LIBRARY, "@azure/*", "azure-devops-node-api", "azure-devops-node-api/*"],
    folders: ["aci", "clients", "inputs", "platform", "start", "teardown"],
    because:
      "the docker provider uses dockerode only; it never imports the aci provider, the inputs or the task library (shared types live in core).",
  }),
  layer(["tasks/common/providers/index.ts"], {
    packages: [...SDKS, ...TASK_LIBRARY],
    folders: ["platform"],
    because: "providers/index makes a provider from resolved settings, without the task library.",
  }),
  layer(["tasks/common/platform/**"], {
    packages: [...SDKS],
    folders: ["providers/aci", "providers/docker"],
    because:
      "platform adapts the task library; SDKs live in clients and providers, reached through providers/index (shared types live in core).",
  }),
  layer(["tasks/*/index.ts"], {
    packages: [...SDKS, ...TASK_LIBRARY],
    because: "entry files stay thin: the task library through platform, SDKs through clients and providers.",
  }),
];
