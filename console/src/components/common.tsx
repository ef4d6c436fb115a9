import { Alert, Button, Tag, Tooltip, Typography } from "antd";
import type { MouseEvent, ReactNode } from "react";
import { formatTime, shortId, statusColor } from "../lib/format";
import { useI18n } from "../i18n";
import { ApiError } from "../api/client";

export function ShortId({ id }: { id: string | null | undefined }) {
  const { t } = useI18n();
  if (!id) return <>—</>;
  return (
    <Tooltip title={id}>
      <Typography.Text
        code
        copyable={{ text: id, tooltips: [t("Copy"), t("Copied")] }}
        data-id={id}
      >
        {shortId(id)}
      </Typography.Text>
    </Tooltip>
  );
}

export function Status({ value }: { value: string | null | undefined }) {
  if (!value) return <>—</>;
  return (
    <Tag color={statusColor(value)} data-status={value}>
      {value}
    </Tag>
  );
}

export function Time({ value }: { value: string | null | undefined }) {
  const { lang } = useI18n();
  if (!value) return <>—</>;
  return (
    <time dateTime={value} title={value}>
      {formatTime(value, lang === "zh" ? "zh-CN" : undefined)}
    </time>
  );
}

export function ErrorAlert({ error }: { error: unknown }) {
  if (!error) return null;
  const message =
    error instanceof ApiError ? `${error.code}: ${error.message}` : String((error as Error).message ?? error);
  const issues =
    error instanceof ApiError && Array.isArray(error.details?.issues)
      ? (error.details.issues as { path?: string; message?: string }[])
      : [];
  return (
    <Alert
      type="error"
      showIcon
      role="alert"
      message={message}
      description={
        issues.length ? (
          <ul style={{ margin: 0 }} data-testid="error-issues">
            {issues.map((i, n) => (
              <li key={n}>
                <code>{i.path || "(payload)"}</code> {i.message}
              </li>
            ))}
          </ul>
        ) : undefined
      }
      style={{ marginBottom: 16 }}
    />
  );
}

export function PageTitle({ children, extra }: { children: ReactNode; extra?: ReactNode }) {
  return (
    <div style={{ display: "flex", alignItems: "center", justifyContent: "space-between", marginBottom: 16, gap: 12, flexWrap: "wrap" }}>
      <Typography.Title level={2} style={{ margin: 0, fontSize: 22 }}>
        {children}
      </Typography.Title>
      <div style={{ display: "flex", gap: 8, flexWrap: "wrap" }}>{extra}</div>
    </div>
  );
}

export function JsonBlock({ value }: { value: unknown }) {
  return (
    <pre
      style={{ background: "#f6f8fa", padding: 12, borderRadius: 6, maxHeight: 360, overflow: "auto", margin: 0, fontSize: 12 }}
    >
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

/** A table's expand button with a name: Ant Design's own has none (axe: button-name). */
export function expandIcon(show: string, hide: string) {
  return function ExpandIcon<T>({
    expanded,
    onExpand,
    record,
  }: {
    expanded: boolean;
    onExpand: (record: T, e: MouseEvent<HTMLElement>) => void;
    record: T;
  }) {
    return (
      <Button size="small" type="text" aria-expanded={expanded} aria-label={expanded ? hide : show} onClick={(e) => onExpand(record, e)}>
        {expanded ? "−" : "+"}
      </Button>
    );
  };
}
