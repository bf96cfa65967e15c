import { readFileSync } from "node:fs";
import * as path from "node:path";
import Ajv, { type ValidateFunction } from "ajv";

export const REFERENCE_DIRECTORY = path.join(__dirname, "reference");

type Swagger = { definitions: Record<string, unknown> };

export function readReferenceJson<T = unknown>(relativePath: string): T {
  // The Azure DevOps specs start with a UTF-8 BOM.
  return JSON.parse(
    readFileSync(`${REFERENCE_DIRECTORY}/${relativePath}`, "utf8").replace(/^\uFEFF/, ""),
  ) as T;
}

/** Swagger 2.0 definitions as JSON Schema: $refs stay "#/definitions/X", extra properties stay allowed. */
export class ReferenceSchemas {
  private readonly ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(
    private readonly id: string,
    swagger: Swagger,
    overrides: Record<string, unknown> = {},
  ) {
    this.ajv.addSchema({ $id: id, definitions: { ...swagger.definitions, ...overrides } });
  }

  /** Returns the validation errors of `value` against definition `name` (empty when it conforms). */
  errors(name: string, value: unknown): string[] {
    let validate = this.validators.get(name);
    if (!validate) {
      validate = this.ajv.compile({ $ref: `${this.id}#/definitions/${name}` });
      this.validators.set(name, validate);
    }
    return validate(value)
      ? []
      : (validate.errors ?? []).map((error) => `${error.instancePath} ${error.message}`);
  }
}

/**
 * Differences in JSON types between `actual` and `example` for the keys both have, recursively
 * (arrays compare their first elements). Returns paths like "properties.containers[0].name: number vs string".
 */
export function typeMismatches(actual: unknown, example: unknown, at = ""): string[] {
  const kind = (value: unknown): string =>
    Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
  if (kind(actual) !== kind(example)) return [`${at}: ${kind(actual)} vs ${kind(example)}`];
  if (Array.isArray(actual) && Array.isArray(example)) {
    return actual.length > 0 && example.length > 0 ? typeMismatches(actual[0], example[0], `${at}[0]`) : [];
  }
  if (kind(actual) !== "object") return [];
  const actualObject = actual as Record<string, unknown>;
  const exampleObject = example as Record<string, unknown>;
  return Object.keys(exampleObject)
    .filter((key) => key in actualObject)
    .flatMap((key) => typeMismatches(actualObject[key], exampleObject[key], at ? `${at}.${key}` : key));
}
