import { useState } from "react";
import { App, Button, DatePicker, Drawer, Table, Typography } from "antd";
import dayjs from "dayjs";
import type { AuditEvent } from "../api/types";
import { download } from "../api/client";
import { ErrorAlert, JsonBlock, PageTitle, ShortId, Status, Time } from "../components/common";
import { SearchFilter, StatusFilter } from "../components/Filters";
import { useI18n } from "../i18n";
import { useServerTable } from "../lib/useServerTable";
import { useCan } from "../session";

const FILTERS = ["actorType", "result", "action", "targetType", "targetId", "from", "to"] as const;

export default function AuditPage() {
  const { t } = useI18n();
  const { message } = App.useApp();
  const canExport = useCan("audit:export");
  const table = useServerTable<AuditEvent>("/api/admin/audit-events", FILTERS, ["audit."]);
  const [detail, setDetail] = useState<AuditEvent | null>(null);
  const exportAs = async (format: "csv" | "json") => {
    try {
      const query = Object.fromEntries(Object.entries(table.filters).filter(([, v]) => v));
      const blob = await download("/api/admin/audit-events/export", { ...query, format });
      const url = URL.createObjectURL(blob);
      const link = document.createElement("a");
      link.href = url;
      link.download = `opstage-audit.${format}`;
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (e) {
      message.error((e as Error).message);
    }
  };
  const range = [table.filters.from, table.filters.to].map((v) => (v ? dayjs(v) : null)) as [dayjs.Dayjs | null, dayjs.Dayjs | null];

  return (
    <>
      <PageTitle
        extra={
          <>
            <StatusFilter label={t("Actor")} value={table.filters.actorType} options={["USER", "AGENT", "SYSTEM"]} onChange={(v) => table.setFilter("actorType", v)} />
            <StatusFilter label={t("Result")} value={table.filters.result} options={["SUCCESS", "FAILURE", "DENIED"]} onChange={(v) => table.setFilter("result", v)} />
            <SearchFilter label={t("Action")} value={table.filters.action} onChange={(v) => table.setFilter("action", v)} />
            <DatePicker.RangePicker
              showTime
              value={range}
              aria-label={t("Time")}
              onChange={(v) => {
                table.setFilter("from", v?.[0]?.toISOString());
                table.setFilter("to", v?.[1]?.toISOString());
              }}
            />
            {canExport && (
              <>
                <Button onClick={() => void exportAs("csv")} data-testid="export-csv">{t("Export CSV")}</Button>
                <Button onClick={() => void exportAs("json")}>{t("Export JSON")}</Button>
              </>
            )}
          </>
        }
      >
        {t("Audit Events")}
      </PageTitle>
      <ErrorAlert error={table.error} />
      <Table<AuditEvent>
        rowKey="id"
        loading={table.loading}
        dataSource={table.rows}
        pagination={table.pagination}
        onRow={(row) => ({ onClick: () => setDetail(row), style: { cursor: "pointer" } })}
        columns={[
          { title: t("Time"), dataIndex: "createdAt", render: (v: string) => <Time value={v} /> },
          { title: t("Action"), dataIndex: "action", render: (v: string) => <Typography.Text code>{v}</Typography.Text> },
          { title: t("Result"), dataIndex: "result", render: (v: string) => <Status value={v} /> },
          { title: t("Actor"), key: "actor", render: (_: unknown, e) => <>{e.actorType} <ShortId id={e.actorId} /></> },
          { title: t("Target"), key: "target", render: (_: unknown, e) => <>{e.targetType} <ShortId id={e.targetId} /></> },
          { title: t("Message"), dataIndex: "message", ellipsis: true },
        ]}
      />
      {detail && (
        <Drawer open width={640} onClose={() => setDetail(null)} title={detail.action}>
          <JsonBlock value={detail} />
        </Drawer>
      )}
    </>
  );
}
