// Expands a YAML template as Azure Pipelines does, for the few template expressions templates/ uses (Microsoft's
// "Template expressions" page and the each-expression design note of microsoft/azure-pipelines-yaml):
// - ${{ a.b.c }}: a parameter or loop variable, by property path. A scalar that is only the expression takes the
//   value, list or mapping included; inside a longer string the value (a scalar) is put in the text.
// - A list item that becomes a list is spliced into the list around it ("- ${{ parameters.steps }}").
// - "- ${{ each x in path }}:" in a list inserts its list once per item of the list at `path`;
//   "${{ each x in path }}:" in a mapping inserts its mapping once per entry of the mapping at `path`, with x.key
//   and x.value.
// Anything else in ${{ }} (functions, if, insert, variables) is refused, so the template cannot outgrow this.

type Value = string | Value[] | { [key: string]: Value };
type Scope = Record<string, unknown>;

interface ParameterDeclaration {
  name: string;
  type: string;
  default?: unknown;
}

const WHOLE = /^\$\{\{\s*(.*?)\s*\}\}$/;
const EMBEDDED = /\$\{\{\s*(.*?)\s*\}\}/g;
const EACH = /^each\s+([A-Za-z_]\w*)\s+in\s+(.+)$/;
const PATH = /^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$/;

/** The template's `jobs` (or `steps`, `stages`) with the given parameters, as the pipeline would see them. */
export function expandTemplate(
  template: Record<string, unknown>,
  parameters: Record<string, unknown>,
): unknown {
  const declared = (template.parameters ?? []) as ParameterDeclaration[];
  const names = new Set(declared.map((parameter) => parameter.name));
  for (const name of Object.keys(parameters)) {
    if (!names.has(name)) throw new Error(`unexpected parameter '${name}'`);
  }
  const values: Record<string, unknown> = {};
  for (const parameter of declared) {
    const value = parameters[parameter.name] ?? parameter.default;
    if (value === undefined) throw new Error(`parameter '${parameter.name}' is required`);
    if (["jobList", "stepList", "stageList"].includes(parameter.type) && !Array.isArray(value))
      throw new Error(`parameter '${parameter.name}' must be a list (${parameter.type})`);
    if (parameter.type === "string" && typeof value !== "string")
      throw new Error(`parameter '${parameter.name}' must be a string`);
    values[parameter.name] = value;
  }
  const body = Object.fromEntries(Object.entries(template).filter(([key]) => key !== "parameters"));
  return expand(body as Value, { parameters: values });
}

function expand(node: Value, scope: Scope): unknown {
  if (typeof node === "string") return expandString(node, scope);
  if (Array.isArray(node)) return expandList(node, scope);
  return expandMapping(node, scope);
}

function expandString(text: string, scope: Scope): unknown {
  const whole = WHOLE.exec(text);
  if (whole && !whole[1].includes("}}")) return evaluate(whole[1], scope);
  return text.replace(EMBEDDED, (_, expression: string) => {
    const value = evaluate(expression, scope);
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean")
      throw new Error(`\${{ ${expression} }} is not a scalar inside '${text}'`);
    return String(value);
  });
}

function expandList(items: Value[], scope: Scope): unknown[] {
  const result: unknown[] = [];
  for (const item of items) {
    const each = eachOf(item);
    if (each) {
      const collection = evaluate(each.path, scope);
      if (!Array.isArray(collection)) throw new Error(`each over '${each.path}': not a list`);
      if (!Array.isArray(each.body))
        throw new Error(`each over '${each.path}' in a list: its body must be a list`);
      for (const element of collection as unknown[])
        result.push(...expandList(each.body, { ...scope, [each.variable]: element }));
      continue;
    }
    const value = expand(item, scope);
    if (typeof item === "string" && WHOLE.test(item) && Array.isArray(value))
      result.push(...(value as unknown[]));
    else result.push(value);
  }
  return result;
}

function expandMapping(mapping: { [key: string]: Value }, scope: Scope): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(mapping)) {
    const each = eachOf({ [key]: value });
    if (each) {
      const collection = evaluate(each.path, scope);
      if (typeof collection !== "object" || collection === null || Array.isArray(collection))
        throw new Error(`each over '${each.path}' in a mapping: not a mapping`);
      for (const [entryKey, entryValue] of Object.entries(collection as Record<string, unknown>)) {
        const entry = { key: entryKey, value: entryValue };
        Object.assign(
          result,
          expandMapping(each.body as { [key: string]: Value }, { ...scope, [each.variable]: entry }),
        );
      }
      continue;
    }
    const expandedKey = expandString(key, scope);
    if (typeof expandedKey !== "string") throw new Error(`key '${key}' is not a string`);
    result[expandedKey] = expand(value, scope);
  }
  return result;
}

/** The each expression of `- ${{ each x in path }}: body` or `${{ each x in path }}: body`. */
function eachOf(item: Value): { variable: string; path: string; body: Value } | undefined {
  if (typeof item !== "object" || Array.isArray(item)) return undefined;
  const keys = Object.keys(item);
  if (keys.length !== 1) return undefined;
  const expression = WHOLE.exec(keys[0])?.[1];
  const each = expression ? EACH.exec(expression) : null;
  if (!each) return undefined;
  return { variable: each[1], path: each[2].trim(), body: item[keys[0]] };
}

function evaluate(expression: string, scope: Scope): unknown {
  if (!PATH.test(expression)) throw new Error(`unsupported template expression: \${{ ${expression} }}`);
  let value: unknown = scope;
  for (const part of expression.split(".")) {
    if (typeof value !== "object" || value === null || !(part in value))
      throw new Error(`\${{ ${expression} }}: '${part}' is not defined`);
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}
