import { describe, expect, it } from "vitest";
import { fragmentProblem, isProblem, humanRetention, parseLabels, payloadPreview, splitHeaders, wireName } from "./topics";

describe("topic names", () => {
  it("accepts the server's fragments and refuses the rest", () => {
    for (const ok of ["shop", "orders-v2", "A_b-9", "x".repeat(80)]) expect(fragmentProblem(ok), ok).toBeNull();
    expect(fragmentProblem("")).toBe("required");
    expect(fragmentProblem(undefined)).toBe("required");
    expect(fragmentProblem("a.b")).toBe("dots are reserved");
    expect(fragmentProblem("x".repeat(81))).toBe("at most 80 characters");
    expect(fragmentProblem("sp ace")).toMatch(/only/);
    expect(fragmentProblem("ünï")).toMatch(/only/);
    expect(fragmentProblem("a/b")).toMatch(/only/);
  });
  it("joins the wire name", () => {
    expect(wireName("shop", "default", "orders")).toBe("shop.default.orders");
  });
});

describe("retention", () => {
  it("is forever without a value, humanised with one", () => {
    expect(humanRetention(null)).toBe("forever");
    expect(humanRetention(undefined, "永久")).toBe("永久");
    expect(humanRetention(86_400_000)).toBe("1 d");
    expect(humanRetention(3_600_000 * 26)).toBe("1 d 2 h");
    expect(humanRetention(90_000)).toBe("1 min 30 s");
  });
});

describe("labels", () => {
  it("parses key=value pairs separated by commas or lines", () => {
    expect(parseLabels("team=ops, tier = gold\nempty=")).toEqual({ team: "ops", tier: "gold", empty: "" });
    expect(parseLabels("")).toEqual({});
    expect(parseLabels(undefined)).toEqual({});
    expect(parseLabels("a=b=c")).toEqual({ a: "b=c" });
  });
  it("names what is wrong", () => {
    expect(parseLabels("team")).toEqual({ problem: '"{pair}" is not key=value', vars: { pair: "team" } });
    expect(parseLabels("=x")).toEqual({ problem: '"{pair}" is not key=value', vars: { pair: "=x" } });
    expect(parseLabels("a=1,a=2")).toEqual({ problem: '"{key}" is given twice', vars: { key: "a" } });
    const many = Array.from({ length: 21 }, (_, i) => `k${i}=v`).join(",");
    expect(parseLabels(many)).toEqual({ problem: "at most {max} labels", vars: { max: 20 } });
    expect(isProblem(parseLabels("a=b"))).toBe(false);
    expect(isProblem(parseLabels("a"))).toBe(true);
  });
});

describe("messages", () => {
  it("separates a DLQ message's origin headers from the publisher's", () => {
    const { origin, own } = splitHeaders({
      trace: "t1",
      "opstage.origin.topic": "shop.default.orders",
      "opstage.dlq.reason": "nack",
    });
    expect(own).toEqual({ trace: "t1" });
    expect(origin).toEqual({ "opstage.origin.topic": "shop.default.orders", "opstage.dlq.reason": "nack" });
    expect(splitHeaders(undefined)).toEqual({ origin: {}, own: {} });
  });
  it("previews payloads on one line", () => {
    expect(payloadPreview({ n: 1 })).toBe('{"n":1}');
    expect(payloadPreview("plain")).toBe("plain");
    expect(payloadPreview(null)).toBe("null");
    expect(payloadPreview("x".repeat(100), 10)).toBe("xxxxxxxxx…");
  });
});
