import { useState } from "react";
import { App, Button, Drawer, Space, Table } from "antd";
import type { Command, CommandDetail } from "../api/types";
import { get, post } from "../api/client";
import { ErrorAlert, JsonBlock, PageTitle, ShortId, Status, Time } from "../components/common";
import { SearchFilter, StatusFilter } from "../components/Filters";
import { ResultView } from "../components/ResultView";
import { useI18n } from "../i18n";
import { durationBetween } from "../lib/format";
import { useServerTable } from "../lib/useServerTable";
import { useCan } from "../session";

const STATUSES = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "EXPIRED", "CANCELLED"] as const;
const TYPES = ["ACTION_EXECUTE", "ACTION_PREPARE"] as const;

export default function CommandsPage() {
  const { t } = useI18n();
  const { message } = App.useApp();
  const canWrite = useCan("commands:write");
  const table = useServerTable<Command>("/api/admin/commands", ["status", "type", "actionName", "serviceId", "agentId"], ["command."]);
  const [detail, setDetail] = useState<CommandDetail | null>(null);
  const open = (id: string) => get<CommandDetail>(`/api/admin/commands/${id}`).then(setDetail, (e: Error) => message.error(e.message));
  const act = (id: string, verb: "cancel" | "retry") =>
    post(`/api/admin/commands/${id}/${verb}`).then(() => {
      table.reload();
      void open(id);
    }, (e: Error) => message.error(e.message));

  return (
    <>
      <PageTitle
        extra={
          <>
            <StatusFilter label={t("Status")} value={table.filters.status} options={STATUSES} onChange={(v) => table.setFilter("status", v)} />
            <StatusFilter label={t("Type")} value={table.filters.type} options={TYPES} onChange={(v) => table.setFilter("type", v)} />
            <SearchFilter label={t("Action")} value={table.filters.actionName} onChange={(v) => table.setFilter("actionName", v)} />
          </>
        }
      >
        {t("Commands")}
      </PageTitle>
      <ErrorAlert error={table.error} />
      <Table<Command>
        rowKey="id"
        loading={table.loading}
        dataSource={table.rows}
        pagination={table.pagination}
        onRow={(row) => ({ onClick: () => void open(row.id), style: { cursor: "pointer" } })}
        columns={[
          { title: t("Id"), dataIndex: "id", render: (v: string) => <ShortId id={v} /> },
          { title: t("Action"), dataIndex: "actionName" },
          { title: t("Type"), dataIndex: "type" },
          { title: t("Status"), dataIndex: "status", render: (v: string) => <Status value={v} /> },
          { title: t("Service"), dataIndex: "serviceId", render: (v: string) => <ShortId id={v} /> },
          { title: t("Created"), dataIndex: "createdAt", render: (v: string) => <Time value={v} /> },
          { title: t("Duration"), key: "duration", render: (_: unknown, c) => durationBetween(c.startedAt ?? c.createdAt, c.completedAt) },
        ]}
      />
      {detail && (
        <Drawer open width={720} onClose={() => setDetail(null)} title={<>{t("Command")} <ShortId id={detail.id} /></>}>
          <Space direction="vertical" style={{ width: "100%" }}>
            <Space>
              <Status value={detail.status} /> {detail.actionName} ({detail.type})
              {canWrite && ["PENDING", "RUNNING"].includes(detail.status) && (
                <Button size="small" onClick={() => act(detail.id, "cancel")}>{t("Cancel")}</Button>
              )}
              {canWrite && ["FAILED", "EXPIRED", "CANCELLED"].includes(detail.status) && (
                <Button size="small" onClick={() => act(detail.id, "retry")}>{t("Retry")}</Button>
              )}
            </Space>
            <ResultView result={detail.result} />
            <h3>{t("Payload")}</h3>
            <JsonBlock value={detail.payload ?? {}} />
          </Space>
        </Drawer>
      )}
    </>
  );
}
