import { App, Button, Popconfirm, Space, Table } from "antd";
import { post } from "../api/client";
import type { Agent } from "../api/types";
import { ErrorAlert, PageTitle, ShortId, Status, Time } from "../components/common";
import { SearchFilter, StatusFilter } from "../components/Filters";
import { useI18n } from "../i18n";
import { useServerTable } from "../lib/useServerTable";
import { useCan } from "../session";

const STATUSES = ["PENDING", "ONLINE", "OFFLINE", "DISABLED", "REVOKED"] as const;

export default function AgentsPage() {
  const { t } = useI18n();
  const { message } = App.useApp();
  const canWrite = useCan("agents:write");
  const table = useServerTable<Agent>("/api/admin/agents", ["status", "q"], ["agent."]);
  const act = (agent: Agent, verb: "disable" | "enable" | "revoke") =>
    post(`/api/admin/agents/${agent.id}/${verb}`).then(table.reload, (e: Error) => message.error(e.message));

  return (
    <>
      <PageTitle
        extra={
          <>
            <StatusFilter label={t("Status")} value={table.filters.status} options={STATUSES} onChange={(v) => table.setFilter("status", v)} />
            <SearchFilter label={t("Search")} value={table.filters.q} onChange={(v) => table.setFilter("q", v)} />
          </>
        }
      >
        {t("Agents")}
      </PageTitle>
      <ErrorAlert error={table.error} />
      <Table<Agent>
        rowKey="id"
        loading={table.loading}
        dataSource={table.rows}
        pagination={table.pagination}
        columns={[
          { title: t("Id"), dataIndex: "id", render: (v: string) => <ShortId id={v} /> },
          { title: t("Code"), dataIndex: "code" },
          { title: t("Name"), dataIndex: "name" },
          { title: t("Status"), dataIndex: "status", render: (v: string) => <Status value={v} /> },
          { title: t("Runtime"), dataIndex: "runtime" },
          { title: t("Last heartbeat"), dataIndex: "lastHeartbeatAt", render: (v: string) => <Time value={v} /> },
          { title: t("Created"), dataIndex: "createdAt", render: (v: string) => <Time value={v} /> },
          ...(canWrite
            ? [
                {
                  title: t("Actions"),
                  key: "actions",
                  render: (_: unknown, agent: Agent) => (
                    <Space>
                      {agent.status === "DISABLED" ? (
                        <Button size="small" onClick={() => act(agent, "enable")}>{t("Enable")}</Button>
                      ) : agent.status !== "REVOKED" ? (
                        <Button size="small" onClick={() => act(agent, "disable")}>{t("Disable")}</Button>
                      ) : null}
                      {agent.status !== "REVOKED" && (
                        <Popconfirm title={`${t("Revoke")} ${agent.code}?`} onConfirm={() => act(agent, "revoke")}>
                          <Button size="small" danger>{t("Revoke")}</Button>
                        </Popconfirm>
                      )}
                    </Space>
                  ),
                },
              ]
            : []),
        ]}
      />
    </>
  );
}
