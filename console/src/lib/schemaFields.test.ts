import { describe, expect, it } from "vitest";
import { cleanPayload, initialPayload, schemaFields } from "./schemaFields";

const schema = {
  type: "object",
  required: ["mode", "apiToken"],
  properties: {
    mode: { type: "string", enum: ["fast", "safe"], "x-enumLabels": ["Fast", "Safe"] },
    level: { oneOf: [{ const: 1, title: "One" }, { const: 2, title: "Two" }] },
    dryRun: { type: "boolean", default: true },
    count: { type: "integer", minimum: 1, maximum: 5, default: 2 },
    ratio: { type: "number" },
    apiToken: { type: "string" },
    pin: { type: "string", format: "password" },
    notes: { type: "string", format: "textarea" },
    name: { type: "string", title: "Display name", maxLength: 40 },
    generatedKey: { type: "string" },
    keyName: { type: "string" },
    tags: { type: "array" },
  },
};

describe("schemaFields", () => {
  const fields = Object.fromEntries(schemaFields(schema).map((f) => [f.key, f]));
  it("maps each JSON Schema type to its widget", () => {
    expect(fields.mode?.widget).toBe("select");
    expect(fields.mode?.options).toEqual([
      { value: "fast", label: "Fast" },
      { value: "safe", label: "Safe" },
    ]);
    expect(fields.level?.options?.map((o) => o.label)).toEqual(["One", "Two"]);
    expect(fields.dryRun?.widget).toBe("switch");
    expect(fields.count).toMatchObject({ widget: "number", integer: true, min: 1, max: 5 });
    expect(fields.ratio).toMatchObject({ widget: "number", integer: false });
    expect(fields.apiToken?.widget).toBe("password");
    expect(fields.pin?.widget).toBe("password");
    expect(fields.generatedKey?.widget).toBe("password");
    expect(fields.keyName?.widget).toBe("text");
    expect(fields.notes?.widget).toBe("textarea");
    expect(fields.name).toMatchObject({ widget: "text", label: "Display name", maxLength: 40 });
    expect(fields.tags?.widget).toBe("json");
  });
  it("marks required fields", () => {
    expect(fields.mode?.required).toBe(true);
    expect(fields.ratio?.required).toBe(false);
  });
  it("starts from defaults under the prepared payload", () => {
    expect(initialPayload(schema, { count: 4, apiToken: "x" })).toEqual({ dryRun: true, count: 4, apiToken: "x" });
    expect(schemaFields(undefined)).toEqual([]);
  });
  it("drops empty optional values", () => {
    expect(cleanPayload({ a: "", b: null, c: 0, d: false, e: "x" })).toEqual({ c: 0, d: false, e: "x" });
  });
});
