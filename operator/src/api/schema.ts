/**
 * A small builder for Kubernetes structural OpenAPI v3 schemas whose TypeScript types are inferred
 * from the same object: one source of truth for the CRD (`crds/chatcluster.yaml` is generated from it),
 * the operator's types, defaulting in tests and the operator's defence-in-depth validation.
 *
 * Every builder returns a `Schema<Out, In, Defaulted>`: `json` is the OpenAPI fragment; `Out` is the
 * type as the API server stores it (after defaulting), `In` the type a user may write.
 */

export interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
  fieldPath?: string;
}

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps this project uses. */
export interface JSONSchemaProps {
  description?: string;
  type?: "object" | "array" | "string" | "integer" | "boolean" | "number";
  format?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  enum?: readonly unknown[];
  maxItems?: number;
  maxProperties?: number;
  properties?: Record<string, JSONSchemaProps>;
  required?: string[];
  items?: JSONSchemaProps;
  additionalProperties?: JSONSchemaProps;
  anyOf?: JSONSchemaProps[];
  "x-kubernetes-int-or-string"?: true;
  "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  "x-kubernetes-list-map-keys"?: string[];
  "x-kubernetes-map-type"?: "atomic" | "granular";
  "x-kubernetes-validations"?: CelRule[];
}

export interface Schema<Out, In = Out, Defaulted extends boolean = false> {
  readonly json: JSONSchemaProps;
  /** Phantom fields: types only, never set at run time. */
  readonly __out?: Out;
  readonly __in?: In;
  readonly __defaulted?: Defaulted;
}

type AnySchema = Schema<unknown, unknown, boolean>;
/** The stored (defaulted) type of a schema. */
export type Static<S> = S extends Schema<infer O, unknown, boolean> ? O : never;
/** The type a user writes (defaulted fields optional). */
export type Input<S> = S extends Schema<unknown, infer I, boolean> ? I : never;
type HasDefault<S> = S extends Schema<unknown, unknown, true> ? true : false;

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type Props = Record<string, AnySchema>;
type OutKeys<P extends Props, R extends PropertyKey> = {
  [K in keyof P]: K extends R ? K : HasDefault<P[K]> extends true ? K : never;
}[keyof P];
type ObjOut<P extends Props, R extends PropertyKey> = Simplify<
  { [K in OutKeys<P, R>]-?: Static<P[K]> } & { [K in Exclude<keyof P, OutKeys<P, R>>]?: Static<P[K]> }
>;
type ObjIn<P extends Props, R extends PropertyKey> = Simplify<
  { [K in Extract<keyof P, R>]-?: Input<P[K]> } & { [K in Exclude<keyof P, R>]?: Input<P[K]> }
>;

interface Common {
  description?: string;
}
type WithDefault<T> = Common & { default?: T };
type DefaultFlag<O> = O extends { default: unknown } ? true : false;

function make<Out, In, D extends boolean>(json: JSONSchemaProps): Schema<Out, In, D> {
  return { json };
}

function clean(json: JSONSchemaProps): JSONSchemaProps {
  return Object.fromEntries(Object.entries(json).filter(([, v]) => v !== undefined)) as JSONSchemaProps;
}

export interface StringOptions extends WithDefault<string> {
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  validations?: CelRule[];
}
export function str<const O extends StringOptions>(o?: O): Schema<string, string, DefaultFlag<O>> {
  const { validations, ...rest } = o ?? {};
  return make(clean({ type: "string", ...rest, "x-kubernetes-validations": validations }));
}

export interface IntegerOptions extends WithDefault<number> {
  minimum?: number;
  maximum?: number;
  format?: "int32" | "int64";
  validations?: CelRule[];
}
export function int<const O extends IntegerOptions>(o?: O): Schema<number, number, DefaultFlag<O>> {
  const { validations, format, ...rest } = o ?? {};
  return make(
    clean({ type: "integer", format: format ?? "int32", ...rest, "x-kubernetes-validations": validations }),
  );
}

export function bool<const O extends WithDefault<boolean>>(o?: O): Schema<boolean, boolean, DefaultFlag<O>> {
  return make(clean({ type: "boolean", ...(o ?? {}) }));
}

export function oneOf<const E extends readonly string[], const O extends WithDefault<E[number]>>(
  values: E,
  o?: O,
): Schema<E[number], E[number], DefaultFlag<O>> {
  return make(clean({ type: "string", enum: values, ...(o ?? {}) }));
}

export interface IntOrStringOptions extends WithDefault<number | string> {
  pattern?: string;
}
/** `x-kubernetes-int-or-string` (quantities, `maxUnavailable`). */
export function intOrString<const O extends IntOrStringOptions>(
  o?: O,
): Schema<number | string, number | string, DefaultFlag<O>> {
  return make(
    clean({
      "x-kubernetes-int-or-string": true,
      anyOf: [{ type: "integer" }, { type: "string" }],
      ...(o ?? {}),
    }),
  );
}

export interface ArrayOptions extends Common {
  maxItems?: number;
  listType?: "atomic" | "set" | "map";
  listMapKeys?: string[];
}
export function arrayOf<S extends AnySchema>(
  items: S,
  o: ArrayOptions = {},
): Schema<Static<S>[], Input<S>[], false> {
  return make(
    clean({
      type: "array",
      description: o.description,
      maxItems: o.maxItems,
      items: items.json,
      "x-kubernetes-list-type": o.listType,
      "x-kubernetes-list-map-keys": o.listMapKeys,
    }),
  );
}

export interface MapOptions extends Common {
  maxProperties?: number;
  /** `atomic`: replaced as a whole by server-side apply (no per-key ownership). */
  mapType?: "atomic" | "granular";
}
export function mapOf<S extends AnySchema>(
  values: S,
  o: MapOptions = {},
): Schema<Record<string, Static<S>>, Record<string, Input<S>>, false> {
  const { mapType, ...rest } = o;
  return make(
    clean({ type: "object", ...rest, additionalProperties: values.json, "x-kubernetes-map-type": mapType }),
  );
}

export interface ObjectOptions<R extends string> extends Common {
  required?: readonly R[];
  /** Usually `{}` so that nested defaults apply when the whole object is omitted. */
  default?: Record<string, unknown>;
  validations?: CelRule[];
}
export function obj<P extends Props, const R extends Extract<keyof P, string> = never>(
  properties: P,
  o: ObjectOptions<R> & { default: Record<string, unknown> },
): Schema<ObjOut<P, R>, ObjIn<P, R>, true>;
export function obj<P extends Props, const R extends Extract<keyof P, string> = never>(
  properties: P,
  o?: ObjectOptions<R> & { default?: undefined },
): Schema<ObjOut<P, R>, ObjIn<P, R>, false>;
export function obj(properties: Props, o?: ObjectOptions<string>): AnySchema {
  const props: Record<string, JSONSchemaProps> = {};
  for (const [k, v] of Object.entries(properties)) props[k] = v.json;
  return make(
    clean({
      type: "object",
      description: o?.description,
      default: o?.default,
      required: o?.required && o.required.length > 0 ? [...o.required] : undefined,
      properties: Object.keys(props).length > 0 ? props : undefined,
      "x-kubernetes-validations": o?.validations,
    }),
  );
}

/** Returns a copy of `schema` with a description (keeps the type). */
export function describe<S extends AnySchema>(schema: S, description: string): S {
  return { ...schema, json: { description, ...schema.json } };
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Structural defaulting as the API server does it: a property absent from an object gets its
 * `default` (deep-copied), and defaults apply recursively inside both given and defaulted values.
 */
export function applyDefaults(schema: JSONSchemaProps, value: unknown): unknown {
  if (Array.isArray(value)) {
    return schema.items ? value.map((v) => applyDefaults(schema.items as JSONSchemaProps, v)) : value;
  }
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = { ...value };
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    if (out[key] === undefined && prop.default !== undefined) out[key] = structuredClone(prop.default);
    if (out[key] !== undefined) out[key] = applyDefaults(prop, out[key]);
  }
  if (schema.additionalProperties) {
    for (const [key, v] of Object.entries(out)) out[key] = applyDefaults(schema.additionalProperties, v);
  }
  return out;
}

function typeProblem(schema: JSONSchemaProps, value: unknown): string | undefined {
  if (schema["x-kubernetes-int-or-string"]) {
    return Number.isInteger(value) || typeof value === "string"
      ? undefined
      : "must be an integer or a string";
  }
  switch (schema.type) {
    case "object":
      return isRecord(value) ? undefined : "must be an object";
    case "array":
      return Array.isArray(value) ? undefined : "must be an array";
    case "string":
      return typeof value === "string" ? undefined : "must be a string";
    case "integer":
      return Number.isInteger(value) ? undefined : "must be an integer";
    case "number":
      return typeof value === "number" ? undefined : "must be a number";
    case "boolean":
      return typeof value === "boolean" ? undefined : "must be a boolean";
    default:
      return undefined;
  }
}

function boundProblems(schema: JSONSchemaProps, value: unknown): string[] {
  const out: string[] = [];
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum)
      out.push(`must be at least ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) out.push(`must be at most ${schema.maximum}`);
  }
  if (typeof value === "string") {
    if (schema.minLength !== undefined && value.length < schema.minLength) {
      out.push(`must be at least ${schema.minLength} characters`);
    }
    if (schema.maxLength !== undefined && value.length > schema.maxLength) {
      out.push(`must be at most ${schema.maxLength} characters`);
    }
    if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) {
      out.push(`must match ${schema.pattern}`);
    }
  }
  if (schema.enum && !schema.enum.includes(value)) out.push(`must be one of ${schema.enum.join(", ")}`);
  return out;
}

/**
 * Checks a value against the schema's types, required fields, bounds, patterns and enums (not CEL
 * rules). Returns `path: problem` lines; empty when valid. Used as defence in depth by the operator,
 * since an old CRD or a disabled validation must never lead to a half-applied cluster.
 */
export function validateAgainst(schema: JSONSchemaProps, value: unknown, path = ""): string[] {
  const typeErr = typeProblem(schema, value);
  if (typeErr) return [`${path || "<root>"}: ${typeErr}`];
  const out = boundProblems(schema, value).map((p) => `${path || "<root>"}: ${p}`);
  if (Array.isArray(value) && schema.items) {
    value.forEach((v, i) =>
      out.push(...validateAgainst(schema.items as JSONSchemaProps, v, `${path}[${i}]`)),
    );
  }
  if (isRecord(value)) {
    for (const req of schema.required ?? []) {
      if (value[req] === undefined) out.push(`${path ? `${path}.` : ""}${req}: is required`);
    }
    for (const [key, v] of Object.entries(value)) {
      const prop = schema.properties?.[key] ?? schema.additionalProperties;
      if (prop && v !== undefined) out.push(...validateAgainst(prop, v, path ? `${path}.${key}` : key));
    }
  }
  return out;
}
