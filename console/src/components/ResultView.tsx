// A command's result as the operator reads it: message, then the structured parts the action
// returned — a detail view (`detail`), a table (`list`, or plain `columns` + `rows`) with
// column formats and row actions, one-time secrets with copy — and the raw JSON last.
import { Alert, Button, Descriptions, Space, Table, Tag, Typography } from "antd";
import type { ReactNode } from "react";
import type { CommandResult } from "../api/types";
import { useI18n } from "../i18n";
import { formatTime, humanBytes, humanDuration, pick, rowPayload, statusColor } from "../lib/format";
import { JsonBlock } from "./common";

export type ColumnFormat = "text" | "status" | "datetime" | "boolean" | "code" | "duration" | "bytes" | "secret";

export interface ResultColumn {
  key: string;
  title?: string;
  label?: string;
  format?: ColumnFormat;
  copyable?: boolean;
}

export interface RowAction {
  label: string;
  action: string;
  payload?: Record<string, unknown>;
  danger?: boolean;
}

export interface ResultTable {
  title?: string;
  columns: ResultColumn[];
  rows: Record<string, unknown>[];
  rowActions: RowAction[];
  total?: number;
}

export interface ResultDetail {
  title?: string;
  data: Record<string, unknown>;
  fields: ResultColumn[];
}

export interface Secret {
  label: string;
  value: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  Boolean(v) && typeof v === "object" && !Array.isArray(v);

function toColumns(raw: unknown, rows: Record<string, unknown>[]): ResultColumn[] {
  if (Array.isArray(raw) && raw.length) {
    return raw.map((c) => (typeof c === "string" ? { key: c } : (c as ResultColumn)));
  }
  return Object.keys(rows[0] ?? {}).slice(0, 10).map((key) => ({ key }));
}

/** The table a result carries, if any: `data.list {data|rows, columns, rowActions}` or `data.{columns, rows}`. */
export function resultTable(data: unknown): ResultTable | undefined {
  if (!isRecord(data)) return undefined;
  const source = isRecord(data.list) ? data.list : data;
  const rows = (Array.isArray(source.rows) ? source.rows : Array.isArray(source.data) ? source.data : undefined) as
    | Record<string, unknown>[]
    | undefined;
  if (!rows || !(source !== data || Array.isArray(data.columns))) return undefined;
  return {
    title: typeof source.title === "string" ? source.title : undefined,
    rows,
    columns: toColumns(source.columns, rows),
    rowActions: (Array.isArray(source.rowActions) ? source.rowActions : []) as RowAction[],
    total: typeof source.total === "number" ? source.total : undefined,
  };
}

export function resultDetail(data: unknown): ResultDetail | undefined {
  if (!isRecord(data) || !isRecord(data.detail) || !isRecord(data.detail.data)) return undefined;
  const detail = data.detail;
  const values = detail.data as Record<string, unknown>;
  return {
    title: typeof detail.title === "string" ? detail.title : undefined,
    data: values,
    fields: toColumns(detail.fields, [values]),
  };
}

/** One-time secrets: `data.secrets [{label, value}]` or `data.secret {label, value}`. */
export function resultSecrets(data: unknown): Secret[] {
  if (!isRecord(data)) return [];
  const raw = Array.isArray(data.secrets) ? data.secrets : isRecord(data.secret) ? [data.secret] : [];
  return raw.filter((s): s is Secret => isRecord(s) && typeof s.value === "string").map((s) => ({
    label: typeof s.label === "string" ? s.label : "secret",
    value: s.value,
  }));
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

/** A column without a declared format: statuses by name, ISO timestamps by shape. */
export function inferFormat(key: string, value: unknown): ColumnFormat | undefined {
  if (/status$/i.test(key) && typeof value === "string") return "status";
  if (typeof value === "string" && ISO_TIME.test(value)) return "datetime";
  return undefined;
}

export function formatCell(value: unknown, format: ColumnFormat | undefined, copyable?: boolean, key = ""): ReactNode {
  if (value === undefined || value === null || value === "") return "—";
  switch (format ?? inferFormat(key, value)) {
    case "status":
      return <Tag color={statusColor(String(value))}>{String(value)}</Tag>;
    case "boolean":
      return <Tag color={value ? "green" : "default"}>{value ? "YES" : "NO"}</Tag>;
    case "datetime":
      return formatTime(String(value));
    case "duration":
      return humanDuration(Number(value));
    case "bytes":
      return humanBytes(Number(value));
    case "code":
      return <Typography.Text code copyable={copyable}>{String(value)}</Typography.Text>;
    case "secret":
      return <Typography.Text code copyable={{ text: String(value) }}>••••••••</Typography.Text>;
    default: {
      const text = typeof value === "object" ? JSON.stringify(value) : String(value);
      return copyable ? <Typography.Text copyable>{text}</Typography.Text> : text;
    }
  }
}

export function ResultView({
  result,
  onRowAction,
}: {
  result: CommandResult | null | undefined;
  onRowAction?: (action: string, payload: Record<string, unknown>) => void;
}) {
  const { t } = useI18n();
  if (!result) return null;
  const table = resultTable(result.data);
  const detail = resultDetail(result.data);
  const secrets = resultSecrets(result.data);
  const error = result.error as { code?: string; message?: string } | undefined;
  return (
    <Space direction="vertical" style={{ width: "100%" }} data-testid="command-result">
      <Alert
        type={result.success ? "success" : "error"}
        showIcon
        message={result.success ? t("Succeeded") : t("Failed")}
        description={
          <>
            {result.message && <div data-testid="result-message">{result.message}</div>}
            {error?.code && (
              <div>
                <Typography.Text code>{error.code}</Typography.Text> {error.message}
              </div>
            )}
          </>
        }
      />
      {secrets.map((s) => (
        <Alert
          key={s.label}
          type="warning"
          showIcon
          message={t("One-time secret: copy it now, it is not shown again.")}
          description={
            <Typography.Text code copyable={{ text: s.value }} data-testid="one-time-secret">
              {s.label}: {s.value}
            </Typography.Text>
          }
        />
      ))}
      {detail && (
        <Descriptions title={detail.title} bordered size="small" column={1}>
          {detail.fields.map((f) => (
            <Descriptions.Item key={f.key} label={f.label ?? f.title ?? f.key}>
              {formatCell(pick(detail.data, f.key), f.format, f.copyable, f.key)}
            </Descriptions.Item>
          ))}
        </Descriptions>
      )}
      {table && (
        <Table<Record<string, unknown>>
          title={table.title ? () => table.title : undefined}
          size="small"
          rowKey={(row) => String(row.id ?? JSON.stringify(row))}
          dataSource={table.rows}
          pagination={table.rows.length > 10 ? { pageSize: 10 } : false}
          scroll={{ x: true }}
          columns={[
            ...table.columns.map((c) => ({
              key: c.key,
              title: c.title ?? c.label ?? c.key,
              render: (_: unknown, row: Record<string, unknown>) => formatCell(pick(row, c.key), c.format, c.copyable, c.key),
            })),
            ...(table.rowActions.length && onRowAction
              ? [
                  {
                    key: "__actions",
                    title: t("Actions"),
                    render: (_: unknown, row: Record<string, unknown>) => (
                      <Space>
                        {table.rowActions.map((a) => (
                          <Button
                            key={a.action + a.label}
                            size="small"
                            danger={a.danger}
                            onClick={() => onRowAction(a.action, rowPayload(a.payload, row))}
                          >
                            {a.label}
                          </Button>
                        ))}
                      </Space>
                    ),
                  },
                ]
              : []),
          ]}
        />
      )}
      {result.data !== undefined && (
        <details>
          <summary>JSON</summary>
          <JsonBlock value={result.data} />
        </details>
      )}
    </Space>
  );
}
