import assert from "node:assert/strict";
import { AccessError, UserError } from "../../tasks/common/core/errors";
import {
  AciQuotaRefusal,
  deniedByPolicies,
  explainArmError,
  isSubnetBusy,
  linkedPermission,
  missingPermission,
  narrowestRole,
} from "../../tasks/common/providers/aci/armErrors";

const SCOPE =
  "/subscriptions/s1/resourceGroups/rg-agents/providers/Microsoft.ContainerInstance/containerGroups/a1";
const SUBNET =
  "/subscriptions/s1/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/hub/subnets/aci";
const CONTEXT = { action: "create container group a1", resourceGroup: "rg-agents", image: "acr.io/agent:1" };

/** An ARM failure as the SDK's RestError carries it. */
function armFailure(statusCode: number, code: string, message: string) {
  return Object.assign(new Error(message), { statusCode, details: { error: { code, message } } });
}

describe("ACI provider: ARM errors explained", () => {
  it("names the narrowest built-in role for an action", () => {
    assert.equal(
      narrowestRole("Microsoft.ContainerInstance/containerGroups/write"),
      "Azure Container Instances Contributor Role",
    );
    assert.equal(
      narrowestRole("Microsoft.Network/virtualNetworks/subnets/join/action"),
      "Network Contributor",
    );
    assert.equal(
      narrowestRole("Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"),
      "Managed Identity Operator",
    );
    assert.equal(narrowestRole("Microsoft.Resources/subscriptions/resourceGroups/read"), "Reader");
    assert.equal(narrowestRole("Microsoft.ContainerInstance/containerGroupProfiles/read"), "Reader");
    assert.equal(narrowestRole("Microsoft.Storage/storageAccounts/write"), "Contributor");
  });

  it("reads the policy assignments out of a RequestDisallowedByPolicy message", () => {
    const identifiers = JSON.stringify([
      {
        policyAssignment: { name: "deny-public", id: "/x" },
        policyDefinition: { name: "no-public-ip", id: "/y" },
      },
    ]);
    assert.deepEqual(
      deniedByPolicies(`Resource 'a1' was disallowed by policy. Policy identifiers: '${identifiers}'.`),
      ["'deny-public' (definition 'no-public-ip')"],
    );
    assert.deepEqual(deniedByPolicies("Resource 'a1' was disallowed by policy."), []);
  });

  it("reads action and scope out of AuthorizationFailed and LinkedAuthorizationFailed messages", () => {
    assert.deepEqual(
      missingPermission(
        `The client 'c' with object id 'c' does not have authorization to perform action 'Microsoft.ContainerInstance/containerGroups/write' over scope '${SCOPE}' or the scope is invalid.`,
      ),
      { action: "Microsoft.ContainerInstance/containerGroups/write", scope: SCOPE },
    );
    assert.deepEqual(
      linkedPermission(
        `The client 'c' has permission to perform action 'x' on scope 'y'; however, it does not have permission to perform action(s) 'Microsoft.Network/virtualNetworks/subnets/join/action' on the linked scope(s) '${SUBNET}' or the linked scope(s) are invalid.`,
      ),
      { action: "Microsoft.Network/virtualNetworks/subnets/join/action", scope: SUBNET },
    );
  });

  it("says that no role lifts a policy deny, naming the policy", () => {
    const identifiers = JSON.stringify([{ policyAssignment: { name: "deny-aci" } }]);
    const explained = explainArmError(
      armFailure(
        403,
        "RequestDisallowedByPolicy",
        `Resource 'a1' was disallowed by policy. Policy identifiers: '${identifiers}'.`,
      ),
      CONTEXT,
    );
    assert.ok(explained instanceof AccessError);
    assert.match(explained.message, /policy assignment 'deny-aci'/);
    assert.match(explained.message, /No role assignment lifts a policy deny/);
  });

  it("names the linked scope, its action and the role that grants it", () => {
    const explained = explainArmError(
      armFailure(
        403,
        "LinkedAuthorizationFailed",
        `… does not have permission to perform action(s) 'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action' on the linked scope(s) '/subscriptions/s1/resourceGroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pull' or the linked scope(s) are invalid.`,
      ),
      CONTEXT,
    );
    assert.match(
      explained.message,
      /lacks Microsoft\.ManagedIdentity\/userAssignedIdentities\/assign\/action/,
    );
    assert.match(explained.message, /userAssignedIdentities\/pull/);
    assert.match(explained.message, /'Managed Identity Operator'/);
  });

  it("names the narrowest role and Contributor for AuthorizationFailed, and a role for a bare 403", () => {
    const explained = explainArmError(
      armFailure(
        403,
        "AuthorizationFailed",
        `… does not have authorization to perform action 'Microsoft.ContainerInstance/containerGroups/write' over scope '${SCOPE}' or the scope is invalid.`,
      ),
      CONTEXT,
    );
    assert.match(explained.message, /'Azure Container Instances Contributor Role'/);
    assert.match(explained.message, /Contributor includes it/);
    const bare = explainArmError({ statusCode: 403, message: "Forbidden" }, CONTEXT);
    assert.match(bare.message, /Azure Container Instances Contributor Role.*resource group 'rg-agents'/);
  });

  it("says what to check for InaccessibleImage", () => {
    const explained = explainArmError(
      armFailure(
        400,
        "InaccessibleImage",
        "The image 'acr.io/agent:1' in container group 'a1' is not accessible.",
      ),
      CONTEXT,
    );
    assert.ok(explained instanceof UserError);
    for (const hint of [
      /acr\.io\/agent:1/,
      /name and tag/,
      /registryConnection/,
      /AcrPull/,
      /trusted Azure services/,
    ])
      assert.match(explained.message, hint);
  });

  it("reports ACI's request quota and the region's quota as quotas", () => {
    const refusal = new AciQuotaRefusal(
      { error: { code: "TooManyRequests", message: "limit of 100" } },
      300_000,
    );
    assert.match(explainArmError(refusal, CONTEXT).message, /quota of container group creates and deletes/);
    const region = armFailure(409, "ContainerGroupQuotaReached", "quota 'StandardCores' exceeded");
    assert.match(explainArmError(region, CONTEXT).message, /region's Azure Container Instances quota/);
  });

  it("knows the 409s that pass by themselves", () => {
    assert.ok(isSubnetBusy(armFailure(409, "ServiceAssociationLinkNotReady", "Network is not ready")));
    assert.ok(isSubnetBusy(armFailure(409, "AnotherOperationInProgress", "busy")));
    assert.ok(!isSubnetBusy(armFailure(409, "Conflict", "other")));
    assert.ok(!isSubnetBusy(armFailure(400, "ServiceAssociationLinkNotReady", "wrong status")));
  });

  it("passes user errors through and keeps others' status and code", () => {
    const mine = new UserError("already explained");
    assert.equal(explainArmError(mine, CONTEXT), mine);
    assert.match(
      explainArmError(armFailure(500, "InternalServerError", "boom"), CONTEXT).message,
      /Could not create container group a1 \(HTTP 500\): InternalServerError: boom/,
    );
  });
});
