// An action's input JSON Schema turned into form fields: which widget, which label, which
// bounds. Pure, so component tests pin the mapping.

export type Widget = "select" | "switch" | "number" | "password" | "textarea" | "text" | "json";

export interface FieldSpec {
  key: string;
  label: string;
  description?: string;
  widget: Widget;
  required: boolean;
  options?: { value: string | number | boolean; label: string }[];
  min?: number;
  max?: number;
  integer?: boolean;
  maxLength?: number;
  defaultValue?: unknown;
}

type Schema = Record<string, unknown>;

// Names that hold credentials ("generatedKey", "apiToken") are masked like passwords.
const SECRET_NAME = /(password|secret|token|apikey|api_key|key)$/i;

function enumOptions(prop: Schema): FieldSpec["options"] | undefined {
  if (Array.isArray(prop.oneOf) && prop.oneOf.every((o) => o && typeof o === "object" && "const" in (o as Schema))) {
    return (prop.oneOf as Schema[]).map((o) => ({
      value: o.const as string,
      label: typeof o.title === "string" ? o.title : String(o.const),
    }));
  }
  if (!Array.isArray(prop.enum)) return undefined;
  const labels = (prop["x-enumLabels"] ?? prop.enumNames) as unknown;
  return (prop.enum as (string | number | boolean)[]).map((value, i) => {
    const fromList = Array.isArray(labels) ? labels[i] : undefined;
    const fromMap = labels && typeof labels === "object" && !Array.isArray(labels) ? (labels as Record<string, unknown>)[String(value)] : undefined;
    const label = fromList ?? fromMap;
    return { value, label: typeof label === "string" ? label : String(value) };
  });
}

export function schemaFields(schema: unknown): FieldSpec[] {
  if (!schema || typeof schema !== "object") return [];
  const s = schema as Schema;
  const props = (s.properties ?? {}) as Record<string, Schema>;
  const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
  return Object.entries(props).map(([key, prop]) => {
    const type = Array.isArray(prop.type) ? (prop.type as string[]).find((t) => t !== "null") : (prop.type as string | undefined);
    const spec: FieldSpec = {
      key,
      label: typeof prop.title === "string" ? prop.title : key,
      description: typeof prop.description === "string" ? prop.description : undefined,
      widget: "text",
      required: required.has(key),
      defaultValue: prop.default,
    };
    const options = enumOptions(prop);
    if (options) return { ...spec, widget: "select", options };
    if (type === "boolean") return { ...spec, widget: "switch" };
    if (type === "integer" || type === "number") {
      return {
        ...spec,
        widget: "number",
        integer: type === "integer",
        min: typeof prop.minimum === "number" ? prop.minimum : undefined,
        max: typeof prop.maximum === "number" ? prop.maximum : undefined,
      };
    }
    if (type === "object" || type === "array") return { ...spec, widget: "json" };
    const maxLength = typeof prop.maxLength === "number" ? prop.maxLength : undefined;
    if (prop.format === "password" || prop.writeOnly === true || SECRET_NAME.test(key)) {
      return { ...spec, widget: "password", maxLength };
    }
    if (prop.format === "textarea" || prop["x-widget"] === "textarea" || (maxLength ?? 0) > 200) {
      return { ...spec, widget: "textarea", maxLength };
    }
    return { ...spec, maxLength };
  });
}

/** The payload a form starts from: the schema's defaults under the prepared payload. */
export function initialPayload(schema: unknown, prepared?: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of schemaFields(schema)) if (f.defaultValue !== undefined) out[f.key] = f.defaultValue;
  return { ...out, ...(prepared ?? {}) };
}

/** Drop empty optional values so the server's schema check sees what the operator meant. */
export function cleanPayload(values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined && v !== null && v !== ""));
}
