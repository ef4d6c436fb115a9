import { describe, expect, it } from "vitest";
import { translate } from "./i18n";
import { zh } from "./i18n-zh";

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
    for (const page of ["Dashboard", "Agents", "Capsule Services", "Commands", "Capsule Bus", "Audit Events", "Registration Tokens", "Users", "Settings"]) {
      expect(zh[page], page).toBeTruthy();
    }
  });
});
