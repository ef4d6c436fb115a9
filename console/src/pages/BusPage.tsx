import { useState } from "react";
import { Alert, App, Button, Form, Input, Modal, Popconfirm, Select, Space, Switch, Table, Tabs, Typography } from "antd";
import { useSearchParams } from "react-router-dom";
import { ApiError, del, post, put } from "../api/client";
import type { AuditEvent, BusEvent, BusRoute, BusRouteRequest } from "../api/types";
import { ErrorAlert, expandIcon, JsonBlock, PageTitle, ShortId, Status, Time } from "../components/common";
import { useI18n } from "../i18n";
import { useServerTable } from "../lib/useServerTable";
import { useCan } from "../session";

interface RouteForm {
  name: string;
  description?: string;
  status: BusRoute["status"];
  eventType: string;
  sourceServiceCode?: string;
  serviceCode: string;
  actionName: string;
  inputMapping: string;
  filters: string;
  preApproved: boolean;
}

const json = (text: string | undefined, empty: unknown): unknown => (text?.trim() ? JSON.parse(text) : empty);

// The PUT replaces the whole route: what the form does not show (metadata) is sent back as it was.
export function routeBody(v: RouteForm, metadata: Record<string, unknown> = {}): BusRouteRequest {
  return {
    name: v.name,
    description: v.description || null,
    status: v.status,
    match: { eventType: v.eventType, sourceServiceCode: v.sourceServiceCode || null },
    target: { serviceCode: v.serviceCode, actionName: v.actionName },
    inputMapping: json(v.inputMapping, {}) as BusRouteRequest["inputMapping"],
    filters: json(v.filters, []) as BusRouteRequest["filters"],
    metadata,
    preApproved: v.preApproved,
  };
}

export function routeForm(r: BusRoute): RouteForm {
  return {
    name: r.name,
    description: r.description ?? undefined,
    status: r.status,
    eventType: r.match.eventType,
    sourceServiceCode: r.match.sourceServiceCode ?? undefined,
    serviceCode: r.target.serviceCode,
    actionName: r.target.actionName,
    inputMapping: JSON.stringify(r.inputMapping, null, 2),
    filters: JSON.stringify(r.filters, null, 2),
    preApproved: r.preApproved,
  };
}

const jsonRule = (isArray: boolean) => ({
  validator: async (_: unknown, v: string) => {
    if (!v?.trim()) return;
    const parsed: unknown = JSON.parse(v);
    if (Array.isArray(parsed) !== isArray || typeof parsed !== "object" || parsed === null) {
      throw new Error(isArray ? "[ … ]" : "{ … }");
    }
  },
});

function RouteFields() {
  const { t } = useI18n();
  return (
    <>
      <Form.Item name="name" label={t("Name")} rules={[{ required: true }]}><Input /></Form.Item>
      <Form.Item name="eventType" label={t("Event type")} rules={[{ required: true }]}><Input placeholder="order.created" /></Form.Item>
      <Form.Item name="sourceServiceCode" label={t("Source service")}><Input /></Form.Item>
      <Form.Item name="serviceCode" label={t("Target service")} rules={[{ required: true }]}><Input /></Form.Item>
      <Form.Item name="actionName" label={t("Target action")} rules={[{ required: true }]}><Input /></Form.Item>
      <Form.Item
        name="inputMapping"
        label={t("Input mapping (JSON)")}
        rules={[jsonRule(false)]}
      >
        <Input.TextArea rows={3} placeholder={`{"message": "/payload/text"}`} style={{ fontFamily: "monospace" }} />
      </Form.Item>
      <Form.Item name="filters" label={t("Filters (JSON)")} rules={[jsonRule(true)]}>
        <Input.TextArea rows={3} placeholder={`[{"path": "/payload/level", "op": "equals", "value": "error"}]`} style={{ fontFamily: "monospace" }} />
      </Form.Item>
      <Form.Item name="status" label={t("Status")}>
        <Select options={["ENABLED", "DRY_RUN", "DISABLED"].map((s) => ({ value: s, label: s }))} />
      </Form.Item>
      <Form.Item name="preApproved" label={t("Pre-approved")} valuePropName="checked"><Switch /></Form.Item>
    </>
  );
}

const EMPTY: Partial<RouteForm> = { status: "ENABLED", inputMapping: "{}", filters: "[]", preApproved: false };

function RoutesTab() {
  const { t } = useI18n();
  const { message } = App.useApp();
  const canWrite = useCan("bus:write");
  const table = useServerTable<BusRoute>("/api/admin/bus/routes", [], ["bus.route."]);
  // The modal creates a route (null) or edits one (the route being changed).
  const [editing, setEditing] = useState<BusRoute | null | undefined>(undefined);
  const [simulation, setSimulation] = useState<unknown>(null);
  const [form] = Form.useForm<RouteForm>();
  const open = (route: BusRoute | null) => {
    form.resetFields();
    form.setFieldsValue(route ? routeForm(route) : EMPTY);
    setEditing(route);
  };
  const save = async () => {
    const values = await form.validateFields();
    try {
      if (editing) {
        await put(`/api/admin/bus/routes/${editing.id}`, routeBody(values, editing.metadata));
        message.success(t("Route saved"));
      } else {
        await post("/api/admin/bus/routes", routeBody(values));
        message.success(t("Route created"));
      }
      setEditing(undefined);
      table.reload();
    } catch (e) {
      message.error((e as Error).message);
    }
  };
  if (table.error instanceof ApiError && table.error.code === "CAPSULE_BUS_DISABLED") {
    return <Alert type="info" showIcon message={t("The Capsule Bus is switched off (OPSTAGE_CAPSULE_BUS_ENABLED=true turns it on).")} />;
  }
  return (
    <>
      {canWrite && <Button type="primary" onClick={() => open(null)} style={{ marginBottom: 12 }}>{t("New route")}</Button>}
      <ErrorAlert error={table.error} />
      <Table<BusRoute>
        rowKey="id"
        loading={table.loading}
        dataSource={table.rows}
        pagination={table.pagination}
        columns={[
          { title: t("Id"), dataIndex: "id", render: (v: string) => <ShortId id={v} /> },
          { title: t("Name"), dataIndex: "name" },
          { title: t("Event type"), key: "match", render: (_: unknown, r) => <Typography.Text code>{r.match.eventType}</Typography.Text> },
          { title: t("Target"), key: "target", render: (_: unknown, r) => `${r.target.serviceCode} → ${r.target.actionName}` },
          { title: t("Status"), dataIndex: "status", render: (v: string) => <Status value={v} /> },
          { title: t("Updated"), dataIndex: "updatedAt", render: (v: string) => <Time value={v} /> },
          ...(canWrite
            ? [{
                title: t("Actions"),
                key: "actions",
                render: (_: unknown, r: BusRoute) => (
                  <Space>
                    <Button size="small" onClick={() => open(r)}>{t("Edit")}</Button>
                    <Button size="small" onClick={() => post(`/api/admin/bus/routes/${r.id}/simulate`, { limit: 50 }).then(setSimulation, (e: Error) => message.error(e.message))}>
                      {t("Simulate")}
                    </Button>
                    <Popconfirm title={`${t("Delete")} ${r.name}?`} onConfirm={() => del(`/api/admin/bus/routes/${r.id}`).then(table.reload, (e: Error) => message.error(e.message))}>
                      <Button size="small" danger>{t("Delete")}</Button>
                    </Popconfirm>
                  </Space>
                ),
              }]
            : []),
        ]}
      />
      {simulation ? <JsonBlock value={simulation} /> : null}
      <Modal
        open={editing !== undefined}
        title={editing ? `${t("Edit route")} ${editing.name}` : t("New route")}
        onOk={() => void save()}
        onCancel={() => setEditing(undefined)}
        okText={editing ? t("Save") : t("Create")}
        width={640}
        forceRender
      >
        <Form form={form} layout="vertical" initialValues={EMPTY}>
          <RouteFields />
        </Form>
      </Modal>
    </>
  );
}

function EventsTab() {
  const { t } = useI18n();
  const table = useServerTable<BusEvent>("/api/admin/bus/events", [], ["bus.event."]);
  return (
    <>
      <ErrorAlert error={table.error} />
      <Table<BusEvent>
        rowKey="id"
        loading={table.loading}
        dataSource={table.rows}
        pagination={table.pagination}
        expandable={{
          expandedRowRender: (e) => <JsonBlock value={e.payload} />,
          expandIcon: expandIcon(t("Show payload"), t("Hide payload")),
        }}
        columns={[
          { title: t("Id"), dataIndex: "id", render: (v: string) => <ShortId id={v} /> },
          { title: t("Event type"), dataIndex: "eventType", render: (v: string) => <Typography.Text code>{v}</Typography.Text> },
          { title: t("Source service"), dataIndex: "sourceServiceCode" },
          { title: t("Matched routes"), dataIndex: "routeCount" },
          { title: t("Dry run"), dataIndex: "dryRun", render: (v: boolean) => (v ? "✓" : "") },
          { title: t("Time"), dataIndex: "acceptedAt", render: (v: string) => <Time value={v} /> },
        ]}
      />
    </>
  );
}

function AuditTab() {
  const { t } = useI18n();
  const table = useServerTable<AuditEvent>("/api/admin/bus/audit", [], ["audit.", "bus."]);
  return (
    <>
      <ErrorAlert error={table.error} />
      <Table<AuditEvent>
        rowKey="id"
        loading={table.loading}
        dataSource={table.rows}
        pagination={table.pagination}
        columns={[
          { title: t("Time"), dataIndex: "createdAt", render: (v: string) => <Time value={v} /> },
          { title: t("Action"), dataIndex: "action", render: (v: string) => <Typography.Text code>{v}</Typography.Text> },
          { title: t("Result"), dataIndex: "result", render: (v: string) => <Status value={v} /> },
          { title: t("Target"), key: "target", render: (_: unknown, e) => <>{e.targetType} <ShortId id={e.targetId} /></> },
          { title: t("Message"), dataIndex: "message", ellipsis: true },
        ]}
      />
    </>
  );
}

function SimulationTab() {
  const { t } = useI18n();
  const [form] = Form.useForm<RouteForm>();
  const [result, setResult] = useState<unknown>(null);
  const [error, setError] = useState<unknown>(null);
  const run = async () => {
    const values = await form.validateFields();
    setError(null);
    try {
      setResult(await post("/api/admin/bus/routes/simulate", { limit: 50, route: routeBody(values) }));
    } catch (e) {
      setError(e);
    }
  };
  return (
    <Space direction="vertical" style={{ width: "100%" }}>
      <Form form={form} layout="vertical" initialValues={{ ...EMPTY, name: "draft" }} style={{ maxWidth: 560 }}>
        <RouteFields />
        <Button type="primary" onClick={() => void run()}>{t("Simulate")}</Button>
      </Form>
      <ErrorAlert error={error} />
      {result ? <JsonBlock value={result} /> : null}
    </Space>
  );
}

export default function BusPage() {
  const { t } = useI18n();
  const [params, setParams] = useSearchParams();
  return (
    <>
      <PageTitle>{t("Capsule Bus")}</PageTitle>
      <Tabs
        activeKey={params.get("tab") ?? "routes"}
        onChange={(tab) => setParams({ tab })}
        destroyInactiveTabPane
        items={[
          { key: "routes", label: t("Routes"), children: <RoutesTab /> },
          { key: "events", label: t("Events"), children: <EventsTab /> },
          { key: "audit", label: t("Bus audit"), children: <AuditTab /> },
          { key: "simulation", label: t("Simulation"), children: <SimulationTab /> },
        ]}
      />
    </>
  );
}
