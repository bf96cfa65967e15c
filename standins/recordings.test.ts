import assert from "node:assert/strict";
import { ClientSecretCredential } from "@azure/identity";
import { STANDIN_DEFAULTS, startAll, type Standins } from "./index";
import { readReferenceJson } from "./reference-schemas";

/**
 * Replays the real Resource Manager exchanges in reference/aci/recordings against the ARM stand-in, in the order
 * the SDK's test suite ran them (create, get, list, delete), and compares what the product and the SDK read.
 */

interface RecordedEntry {
  RequestUri: string;
  RequestMethod: string;
  RequestBody: unknown;
  StatusCode: number;
  ResponseHeaders: Record<string, string | string[]>;
  ResponseBody: unknown;
}

type Json = Record<string, unknown>;

const RECORDED_RESOURCE_GROUP = "myjstest";
const RECORDED_LOCATION = "eastus2";
const RECORDED_SUBSCRIPTIONS =
  /\/subscriptions\/(azure_subscription_id|88888888-8888-8888-8888-888888888888)\//i;

/** Each run is one live run of the suite; the 2026 node run has no list or delete copy, so it ends with the browser's. */
const RUNS: Record<string, string[]> = {
  "2023-05-01": ["create", "get", "list", "delete"].map(
    (test) => `2023-05-01/recording_containergroups_${test}_test.json`,
  ),
  "2026-06-01-preview (node)": [
    "2026-06-01-preview/recording_containergroups_create_test.json",
    "2026-06-01-preview/recording_containergroups_get_test.json",
    "2026-06-01-preview/browsers/recording_containergroups_list_test.json",
    "2026-06-01-preview/browsers/recording_containergroups_delete_test.json",
  ],
  "2026-06-01-preview (browser)": ["create", "get", "list", "delete"].map(
    (test) => `2026-06-01-preview/browsers/recording_containergroups_${test}_test.json`,
  ),
};

/** Headers the SDK's poller and retry policy read, and ACI's quota headers (compared by presence). */
const HEADERS_READ = [
  "azure-asyncoperation",
  "location",
  "retry-after",
  "x-ms-ratelimit-remaining-subscription-reads",
  "x-ms-ratelimit-remaining-subscription-writes",
  "x-ms-ratelimit-remaining-subscription-deletes",
  "x-ms-ratelimit-remaining-subscription-resource-requests-pt5m",
  "x-ms-ratelimit-remaining-subscription-resource-requests-pt1h",
];
/** ACI's create/delete quota counts from a fresh subscription's first request, so their values match too. */
const HEADERS_COMPARED_BY_VALUE = [
  "x-ms-ratelimit-remaining-subscription-resource-requests-pt5m",
  "x-ms-ratelimit-remaining-subscription-resource-requests-pt1h",
];

function lowerCaseHeaders(headers: Record<string, string | string[]>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [name.toLowerCase(), String(value)]),
  );
}

function eventNames(instanceView: unknown): string[] {
  const events = (instanceView as { events?: { name: string }[] } | undefined)?.events ?? [];
  return events.map((event) => event.name);
}

/** Container events lag the container's state (recordings README), so a recording may show a prefix of them. */
function assertEventsStartWith(actual: string[], recorded: string[], where: string): void {
  assert.deepEqual(
    actual.slice(0, recorded.length),
    recorded,
    `${where}: events ${actual.join(",")} begin with ${recorded.join(",")}`,
  );
}

/** The fields the product reads from a container group. */
function assertGroupLike(actual: Json, recorded: Json, where: string, subscriptionId: string): void {
  assert.equal(actual.name, recorded.name, `${where}: name`);
  assert.equal(
    String(actual.id).toLowerCase(),
    String(recorded.id).replace(RECORDED_SUBSCRIPTIONS, `/subscriptions/${subscriptionId}/`).toLowerCase(),
    `${where}: id`,
  );
  assert.deepEqual(actual.tags, recorded.tags, `${where}: tags`);
  const actualProperties = actual.properties as Json;
  const recordedProperties = recorded.properties as Json;
  assert.equal(
    actualProperties.provisioningState,
    recordedProperties.provisioningState,
    `${where}: provisioningState`,
  );
  assert.equal(
    "instanceView" in actualProperties,
    "instanceView" in recordedProperties,
    `${where}: instanceView`,
  );
  if (recordedProperties.instanceView) {
    const actualView = actualProperties.instanceView as Json;
    const recordedView = recordedProperties.instanceView as Json;
    assert.equal(actualView.state, recordedView.state, `${where}: instanceView.state`);
    assert.deepEqual(eventNames(actualView), eventNames(recordedView), `${where}: group-level events`);
  }
  const actualContainers = actualProperties.containers as Json[];
  const recordedContainers = recordedProperties.containers as Json[];
  assert.equal(actualContainers.length, recordedContainers.length, `${where}: containers`);
  recordedContainers.forEach((recordedContainer, index) => {
    const actualContainerProperties = actualContainers[index].properties as Json;
    const recordedContainerProperties = recordedContainer.properties as Json;
    const label = `${where}: container ${index}`;
    assert.equal(
      "instanceView" in actualContainerProperties,
      "instanceView" in recordedContainerProperties,
      `${label} instanceView`,
    );
    const recordedView = recordedContainerProperties.instanceView as Json | undefined;
    if (!recordedView) return;
    const actualView = actualContainerProperties.instanceView as Json;
    assert.equal(
      (actualView.currentState as Json | undefined)?.state,
      (recordedView.currentState as Json | undefined)?.state,
      `${label} currentState.state`,
    );
    assertEventsStartWith(eventNames(actualView), eventNames(recordedView), label);
  });
}

function assertOperationLike(actual: Json, recorded: Json, where: string, subscriptionId: string): void {
  assert.equal(actual.status, recorded.status, `${where}: status`);
  assert.equal(
    String(actual.id).toLowerCase(),
    String(recorded.id).replace(RECORDED_SUBSCRIPTIONS, `/subscriptions/${subscriptionId}/`).toLowerCase(),
    `${where}: id`,
  );
  for (const key of ["name", "endTime"]) assert.equal(key in actual, key in recorded, `${where}: ${key}`);
  assertEventsStartWith(eventNames(actual.properties), eventNames(recorded.properties), where);
}

describe("ARM stand-in replaying the recorded Azure traffic (reference/aci/recordings)", () => {
  for (const [run, files] of Object.entries(RUNS)) {
    describe(run, () => {
      let standins: Standins;
      let token: string;
      /** The stand-in's own operation URL, used where the recording polls its operation. */
      let operationUrl: string | undefined;

      before(async () => {
        standins = await startAll({
          // Provisioning ends when the replay reaches the recorded Succeeded, never by the clock.
          arm: {
            resourceGroups: { [RECORDED_RESOURCE_GROUP]: RECORDED_LOCATION },
            provisioningDelayMs: 3_600_000,
          },
          simulateAgents: false,
        });
        const credential = new ClientSecretCredential(
          STANDIN_DEFAULTS.tenantId,
          STANDIN_DEFAULTS.clientId,
          STANDIN_DEFAULTS.clientSecret,
          { authorityHost: standins.entra.url, disableInstanceDiscovery: true },
        );
        token = (await credential.getToken(`${standins.arm.url}/.default`)).token;
      });

      after(() => standins.close());

      async function replay(
        entry: RecordedEntry,
      ): Promise<{ status: number; headers: Headers; body: unknown }> {
        const recorded = new URL(entry.RequestUri);
        const isOperation = /\/operations\//i.test(recorded.pathname);
        const target =
          isOperation && operationUrl
            ? new URL(operationUrl)
            : new URL(
                recorded.pathname.replace(
                  RECORDED_SUBSCRIPTIONS,
                  `/subscriptions/${standins.arm.subscriptionId}/`,
                ) + recorded.search,
                standins.arm.url,
              );
        const response = await fetch(target, {
          method: entry.RequestMethod,
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: entry.RequestBody ? JSON.stringify(entry.RequestBody) : undefined,
        });
        const text = await response.text();
        return {
          status: response.status,
          headers: response.headers,
          body: text ? JSON.parse(text) : undefined,
        };
      }

      for (const file of files) {
        it(`answers every exchange of ${file} as recorded`, async () => {
          const { Entries } = readReferenceJson<{ Entries: RecordedEntry[] }>(`aci/recordings/${file}`);
          for (const [index, entry] of Entries.entries()) {
            const where = `${file} entry ${index + 1} (${entry.RequestMethod} ${new URL(entry.RequestUri).pathname})`;
            const recordedBody = entry.ResponseBody as Json | null;
            if (recordedBody?.status && recordedBody.status !== "Pending") {
              standins.arm.finishProvisioning(
                String(recordedBody.id).split("/").pop() as string,
                RECORDED_RESOURCE_GROUP,
              );
            }
            const answer = await replay(entry);
            assert.equal(answer.status, entry.StatusCode, `${where}: status`);
            const recordedHeaders = lowerCaseHeaders(entry.ResponseHeaders);
            for (const name of HEADERS_READ) {
              assert.equal(answer.headers.has(name), name in recordedHeaders, `${where}: header ${name}`);
            }
            for (const name of HEADERS_COMPARED_BY_VALUE.filter((header) => header in recordedHeaders)) {
              assert.equal(answer.headers.get(name), recordedHeaders[name], `${where}: header ${name}`);
            }
            const asyncOperation = answer.headers.get("azure-asyncoperation");
            if (asyncOperation) {
              assert.match(
                asyncOperation,
                /\/providers\/Microsoft\.ContainerInstance\/locations\/eastus2\/operations\//,
              );
              assert.equal(new URL(asyncOperation).searchParams.get("api-version"), "2018-06-01");
              operationUrl = asyncOperation;
            }
            const body = answer.body as Json;
            if (!recordedBody) continue;
            if ("status" in recordedBody) {
              assertOperationLike(body, recordedBody, where, standins.arm.subscriptionId);
            } else if (Array.isArray(recordedBody.value)) {
              const items = body.value as Json[];
              assert.equal(items.length, recordedBody.value.length, `${where}: list length`);
              (recordedBody.value as Json[]).forEach((item, position) =>
                assertGroupLike(
                  items[position],
                  item,
                  `${where} item ${position}`,
                  standins.arm.subscriptionId,
                ),
              );
            } else {
              assertGroupLike(body, recordedBody, where, standins.arm.subscriptionId);
            }
          }
        });
      }
    });
  }
});
