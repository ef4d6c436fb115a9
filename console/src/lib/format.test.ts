import { describe, expect, it } from "vitest";
import { fillTemplate, humanBytes, humanDuration, rowPayload, shortId, statusColor } from "./format";

describe("format", () => {
  it("shortens ids but keeps their prefix", () => {
    expect(shortId("cmd_01M969NY43KSTEAC4KY2ETFCXB")).toBe("cmd_01M969NY…");
    expect(shortId("abc")).toBe("abc");
    expect(shortId(null)).toBe("");
  });
  it("humanises durations", () => {
    expect(humanDuration(250)).toBe("250 ms");
    expect(humanDuration(1500)).toBe("1.5 s");
    expect(humanDuration(125_000)).toBe("2 min 5 s");
    expect(humanDuration(3_600_000 + 240_000)).toBe("1 h 4 min");
    expect(humanDuration(-5)).toBe("0 ms");
    expect(humanDuration(undefined)).toBe("—");
  });
  it("humanises bytes", () => {
    expect(humanBytes(512)).toBe("512 B");
    expect(humanBytes(1536)).toBe("1.5 KB");
    expect(humanBytes(50 * 1024 * 1024)).toBe("50 MB");
    expect(humanBytes(Number.NaN)).toBe("—");
  });
  it("colours statuses", () => {
    expect(statusColor("ONLINE")).toBe("green");
    expect(statusColor("FAILED")).toBe("red");
    expect(statusColor("whatever")).toBe("default");
  });
  it("fills payload templates from a row", () => {
    const row = { id: "t-1", owner: { team: "ai" }, n: 3 };
    expect(rowPayload({ thingId: "$row.id", team: "$row.owner.team", n: "{{row.n}}", note: "id {{row.id}}" }, row)).toEqual({
      thingId: "t-1",
      team: "ai",
      n: 3,
      note: "id t-1",
    });
    expect(fillTemplate(["{{a}}", { b: "{{missing}}" }], { a: 1 })).toEqual([1, { b: undefined }]);
  });
});
