/** One entry of ARM's Microsoft.Authorization/permissions answer. */
export interface ArmPermission {
  actions?: string[];
  notActions?: string[];
}

function matches(pattern: string, action: string): boolean {
  const expression = pattern
    .split("*")
    .map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${expression}$`, "i").test(action);
}

/** The actions that none of the caller's permissions grants (an action is granted by one entry that allows it and does not exclude it). */
export function missingArmActions(
  permissions: readonly ArmPermission[],
  actions: readonly string[],
): string[] {
  return actions.filter(
    (action) =>
      !permissions.some(
        (permission) =>
          (permission.actions ?? []).some((pattern) => matches(pattern, action)) &&
          !(permission.notActions ?? []).some((pattern) => matches(pattern, action)),
      ),
  );
}
