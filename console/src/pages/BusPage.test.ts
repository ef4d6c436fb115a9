import { describe, expect, it } from "vitest";
import type { BusRoute } from "../api/types";
import { routeBody, routeForm } from "./BusPage";

const route: BusRoute = {
  id: "brt_1",
  name: "announce",
  description: null,
  status: "ENABLED",
  match: { eventType: "demo.announced", sourceServiceCode: null },
  target: { serviceCode: "demo-service", actionName: "echo" },
  inputMapping: { message: "/payload/text" },
  filters: [{ path: "/payload/level", op: "in", value: ["error", "warn"] }],
  metadata: { owner: "ops" },
  preApproved: false,
  preApprovedByUserId: null,
  preApprovedAt: null,
  createdAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-01T00:00:00.000Z",
  experimental: "v0.4-experimental",
};

describe("bus route editing", () => {
  it("sends back the whole route it was given, with what the form changed", () => {
    const form = { ...routeForm(route), status: "DRY_RUN" as const, actionName: "announce" };
    const body = routeBody(form, route.metadata);
    expect(body).toEqual({
      name: "announce",
      description: null,
      status: "DRY_RUN",
      match: { eventType: "demo.announced", sourceServiceCode: null },
      target: { serviceCode: "demo-service", actionName: "announce" },
      inputMapping: { message: "/payload/text" },
      filters: [{ path: "/payload/level", op: "in", value: ["error", "warn"] }],
      metadata: { owner: "ops" },
      preApproved: false,
    });
  });

  it("reads empty JSON fields as no mapping and no filters", () => {
    const body = routeBody({ ...routeForm(route), inputMapping: " ", filters: "" });
    expect(body.inputMapping).toEqual({});
    expect(body.filters).toEqual([]);
    expect(body.metadata).toEqual({});
  });
});
