import { describe, expect, it } from "vitest";
import { translate } from "./i18n";
import { zh } from "./i18n-zh";
import { fragmentProblem, isProblem, parseLabels } from "./lib/topics";

describe("i18n", () => {
  it("translates to Chinese and falls back to English", () => {
    expect(translate("zh", "Agents")).toBe("代理");
    expect(translate("en", "Agents")).toBe("Agents");
    expect(translate("zh", "no such string")).toBe("no such string");
  });
  it("fills variables in both languages", () => {
    const text = "This action is {level}. Type the action name to confirm.";
    expect(translate("en", text, { level: "HIGH" })).toContain("is HIGH.");
    expect(translate("zh", text, { level: "HIGH" })).toContain("HIGH");
  });
  it("has every menu page in Chinese", () => {
    for (const page of ["Dashboard", "Agents", "Capsule Services", "Commands", "Capsule Bus", "Topics", "Audit Events", "Registration Tokens", "Users", "Settings"]) {
      expect(zh[page], page).toBeTruthy();
    }
  });
  it("has every literal string the pages translate in Chinese", () => {
    const sources = import.meta.glob("./**/*.tsx", { query: "?raw", import: "default", eager: true });
    const missing: string[] = [];
    for (const [file, text] of Object.entries(sources)) {
      for (const m of (text as string).matchAll(/\bt\(\s*"((?:[^"\\]|\\.)*)"/g)) {
        const key = JSON.parse(`"${m[1]}"`) as string;
        if (!zh[key]) missing.push(`${file}: ${key}`);
      }
    }
    expect(Object.keys(sources).length).toBeGreaterThan(10);
    expect(missing).toEqual([]);
  });
  it("has the topic form's validation messages in Chinese", () => {
    const problems = ["", "a.b", "x".repeat(81), "sp ace"].map((v) => fragmentProblem(v));
    const labels = ["a", "a=1,a=2", Array.from({ length: 21 }, (_, i) => `k${i}=v`).join(",")].map((v) => parseLabels(v));
    for (const p of [...problems, ...labels.map((l) => (isProblem(l) ? l.problem : null))]) {
      expect(p && zh[p], String(p)).toBeTruthy();
    }
  });
});
