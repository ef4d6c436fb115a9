import { fireEvent, render, screen, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { I18nProvider } from "../i18n";
import { inferFormat, ResultView, resultDetail, resultSecrets, resultTable } from "./ResultView";
import { SchemaForm } from "./SchemaForm";
import { schemaFields } from "../lib/schemaFields";

const base = {
  id: "res_1",
  commandId: "cmd_1",
  agentId: "agt_1",
  message: null,
  data: {},
  error: {},
  startedAt: null,
  finishedAt: null,
  reportedAt: "2026-01-01T00:00:00Z",
  createdAt: "2026-01-01T00:00:00Z",
};
const wrap = (node: React.ReactNode) => render(<I18nProvider lang="en">{node}</I18nProvider>);

describe("result parsing", () => {
  it("finds tables in both shapes", () => {
    expect(resultTable({ columns: ["a"], rows: [{ a: 1 }] })?.columns).toEqual([{ key: "a" }]);
    expect(resultTable({ list: { data: [{ x: 1, y: 2 }] } })?.columns).toEqual([{ key: "x" }, { key: "y" }]);
    expect(resultTable({ rows: [{ a: 1 }] })).toBeUndefined(); // rows alone are just data
    expect(resultTable(null)).toBeUndefined();
  });
  it("infers status and timestamp columns", () => {
    expect(inferFormat("status", "ACTIVE")).toBe("status");
    expect(inferFormat("updatedAt", "2026-05-01T09:12:00Z")).toBe("datetime");
    expect(inferFormat("name", "2026-05-01")).toBeUndefined();
    expect(inferFormat("status", 3)).toBeUndefined();
  });
  it("finds details and one-time secrets", () => {
    expect(resultDetail({ detail: { data: { a: 1 } } })?.fields).toEqual([{ key: "a" }]);
    expect(resultSecrets({ secret: { label: "key", value: "s3cr3t" } })).toEqual([{ label: "key", value: "s3cr3t" }]);
    expect(resultSecrets({ secrets: [{ value: 1 }] })).toEqual([]);
  });
});

describe("ResultView", () => {
  it("renders a table with column formats and row actions with their payloads", () => {
    const onRowAction = vi.fn();
    wrap(
      <ResultView
        onRowAction={onRowAction}
        result={{
          ...base,
          success: true,
          message: "2 things",
          data: {
            list: {
              columns: [
                { key: "name", title: "Name" },
                { key: "size", title: "Size", format: "bytes" },
                { key: "took", title: "Took", format: "duration" },
                { key: "state", title: "State", format: "status" },
              ],
              data: [{ id: "t1", name: "alpha", size: 2048, took: 1500, state: "FAILED" }],
              rowActions: [{ label: "Restart", action: "restart", payload: { thingId: "$row.id" } }],
            },
          },
        }}
      />,
    );
    expect(screen.getByTestId("result-message").textContent).toBe("2 things");
    const row = screen.getByText("alpha").closest("tr")!;
    expect(within(row).getByText("2.0 KB")).toBeTruthy();
    expect(within(row).getByText("1.5 s")).toBeTruthy();
    expect(within(row).getByText("FAILED")).toBeTruthy();
    fireEvent.click(within(row).getByRole("button", { name: "Restart" }));
    expect(onRowAction).toHaveBeenCalledWith("restart", { thingId: "t1" });
  });

  it("shows a failure with its error code, a detail view and a one-time secret", () => {
    wrap(
      <ResultView
        result={{
          ...base,
          success: false,
          error: { code: "KEY_NOT_GENERATED", message: "Use the generated key." },
          data: { detail: { title: "Key", data: { keyId: "k-1" } }, secret: { label: "apiKey", value: "sk_live_1" } },
        }}
      />,
    );
    expect(screen.getByText("Failed")).toBeTruthy();
    expect(screen.getByText("KEY_NOT_GENERATED")).toBeTruthy();
    expect(screen.getByText("k-1")).toBeTruthy();
    expect(screen.getByTestId("one-time-secret").textContent).toContain("sk_live_1");
  });
});

describe("SchemaForm", () => {
  it("reports typed values to the payload", () => {
    const onChange = vi.fn();
    const fields = schemaFields({ type: "object", properties: { message: { type: "string" }, loud: { type: "boolean" } } });
    wrap(<SchemaForm fields={fields} value={{ message: "", loud: false }} onChange={onChange} />);
    fireEvent.change(screen.getByLabelText("message"), { target: { value: "hi" } });
    expect(onChange).toHaveBeenLastCalledWith({ message: "hi", loud: false });
    fireEvent.click(screen.getByRole("switch"));
    expect(onChange).toHaveBeenLastCalledWith({ message: "hi", loud: true });
  });
});
