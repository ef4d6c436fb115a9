import { useCallback, useEffect, useState } from "react";
import { Card, Col, Row, Space, Statistic, Table, Tag, Typography } from "antd";
import { Link } from "react-router-dom";
import { get } from "../api/client";
import type { AuditEvent, Command, DashboardSummary } from "../api/types";
import { ErrorAlert, PageTitle, ShortId, Status, Time } from "../components/common";
import { useI18n } from "../i18n";
import { useLive } from "../live";
import { statusColor } from "../lib/format";

function Counts({ title, counts, to }: { title: string; counts: Record<string, number>; to: string }) {
  const total = counts.total ?? Object.entries(counts).reduce((n, [k, v]) => (k === "total" ? n : n + v), 0);
  return (
    <Card title={<Link to={to}>{title}</Link>} size="small">
      <Statistic value={total} />
      <Space wrap style={{ marginTop: 8 }}>
        {Object.entries(counts)
          .filter(([k, v]) => k !== "total" && v > 0)
          .map(([k, v]) => (
            <Tag key={k} color={statusColor(k)} data-count={`${k}:${v}`}>
              {k} {v}
            </Tag>
          ))}
      </Space>
    </Card>
  );
}

export default function DashboardPage() {
  const { t } = useI18n();
  const [data, setData] = useState<(DashboardSummary & { auditEventCount?: number }) | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(() => {
    get<DashboardSummary>("/api/admin/dashboard/summary").then(setData, setError);
  }, []);
  useEffect(load, [load]);
  useLive(["agent.", "service.", "command.", "audit."], load, 500);

  return (
    <>
      <PageTitle>{t("Dashboard")}</PageTitle>
      <ErrorAlert error={error} />
      {data && (
        <>
          <Row gutter={[16, 16]}>
            <Col xs={24} md={8}>
              <Counts title={t("Agents")} counts={data.agentCounts} to="/agents" />
            </Col>
            <Col xs={24} md={8}>
              <Counts title={t("Capsule Services")} counts={data.serviceCounts} to="/services" />
            </Col>
            <Col xs={24} md={8}>
              <Counts title={t("Commands")} counts={data.commandCounts} to="/commands" />
            </Col>
          </Row>
          <Row gutter={[16, 16]} style={{ marginTop: 16 }}>
            <Col xs={24} xl={12}>
              <Card title={t("Recent commands")} size="small">
                <Table<Command>
                  size="small"
                  rowKey="id"
                  pagination={false}
                  dataSource={data.recentCommands ?? []}
                  columns={[
                    { title: t("Id"), dataIndex: "id", render: (v: string) => <ShortId id={v} /> },
                    { title: t("Action"), dataIndex: "actionName" },
                    { title: t("Status"), dataIndex: "status", render: (v: string) => <Status value={v} /> },
                    { title: t("Created"), dataIndex: "createdAt", render: (v: string) => <Time value={v} /> },
                  ]}
                />
              </Card>
            </Col>
            <Col xs={24} xl={12}>
              <Card title={t("Recent audit events")} size="small">
                <Table<AuditEvent>
                  size="small"
                  rowKey="id"
                  pagination={false}
                  dataSource={data.recentAuditEvents ?? []}
                  columns={[
                    { title: t("Action"), dataIndex: "action", render: (v: string) => <Typography.Text code>{v}</Typography.Text> },
                    { title: t("Result"), dataIndex: "result", render: (v: string) => <Status value={v} /> },
                    { title: t("Time"), dataIndex: "createdAt", render: (v: string) => <Time value={v} /> },
                  ]}
                />
              </Card>
            </Col>
          </Row>
        </>
      )}
    </>
  );
}
