// The topic bus (docs/topics.md): topics, server-paginated with the API's filters in the URL;
// the open topic's drawer is in the URL too (?topic=ns.tenant.name). Live through topic.changed.
import { useState } from "react";
import { App, Button, Form, Input, InputNumber, Modal, Popconfirm, Select, Space, Switch, Table, Typography } from "antd";
import { useSearchParams } from "react-router-dom";
import { ApiError, del, post } from "../../api/client";
import type { Topic, TopicCreateRequest } from "../../api/types";
import { ErrorAlert, PageTitle, Time } from "../../components/common";
import { SearchFilter } from "../../components/Filters";
import { useI18n } from "../../i18n";
import { fragmentProblem, humanRetention, isProblem, parseLabels, wireName } from "../../lib/topics";
import { useServerTable } from "../../lib/useServerTable";
import { useCan } from "../../session";
import { Labels, TopicDrawer } from "./TopicDrawer";

interface TopicForm {
  namespace: string;
  tenant: string;
  name: string;
  partitions: number;
  replication: number;
  retention?: number | null;
  retentionUnit: number;
  description?: string;
  labels?: string;
  auditPublish: boolean;
}

const HOUR = 3_600_000;
const UNITS = [
  { value: 60_000, label: "min" },
  { value: HOUR, label: "h" },
  { value: 24 * HOUR, label: "d" },
];

export function topicBody(v: TopicForm): TopicCreateRequest {
  const labels = parseLabels(v.labels);
  return {
    namespace: v.namespace.trim(),
    tenant: v.tenant.trim(),
    name: v.name.trim(),
    partitions: v.partitions,
    replication: v.replication,
    retentionMs: v.retention ? Math.round(v.retention * v.retentionUnit) : null,
    description: v.description?.trim() || null,
    labels: isProblem(labels) ? {} : labels,
    auditPublish: v.auditPublish,
  };
}

const fragmentRule = (t: (s: string) => string) => ({
  validator: async (_: unknown, v: string | undefined) => {
    const problem = fragmentProblem(v?.trim());
    if (problem) throw new Error(t(problem));
  },
});

export default function TopicsPage() {
  const { t } = useI18n();
  const { message } = App.useApp();
  const canWrite = useCan("topics:write");
  const [params, setParams] = useSearchParams();
  const table = useServerTable<Topic>("/api/admin/topics", ["namespace", "tenant", "namePrefix"], ["topic.changed"]);
  const [creating, setCreating] = useState(false);
  const [createError, setCreateError] = useState<unknown>(null);
  const [form] = Form.useForm<TopicForm>();
  const open = params.get("topic");
  const setOpen = (wire: string | null) => {
    const next = new URLSearchParams(params);
    if (wire) next.set("topic", wire);
    else next.delete("topic");
    setParams(next);
  };

  const create = async () => {
    const values = await form.validateFields();
    setCreateError(null);
    try {
      const made = await post<Topic>("/api/admin/topics", topicBody(values));
      message.success(`${t("Topic created")}: ${made.topic}`);
      setCreating(false);
      form.resetFields();
      table.reload();
    } catch (e) {
      setCreateError(e);
    }
  };

  if (table.error instanceof ApiError && table.error.code === "TOPIC_BUS_DISABLED") {
    return (
      <>
        <PageTitle>{t("Topics")}</PageTitle>
        <ErrorAlert error={table.error} />
      </>
    );
  }
  return (
    <>
      <PageTitle
        extra={
          <>
            <SearchFilter label={t("Namespace")} value={table.filters.namespace} onChange={(v) => table.setFilter("namespace", v)} />
            <SearchFilter label={t("Tenant")} value={table.filters.tenant} onChange={(v) => table.setFilter("tenant", v)} />
            <SearchFilter label={t("Name starts with")} value={table.filters.namePrefix} onChange={(v) => table.setFilter("namePrefix", v)} />
            {canWrite && (
              <Button
                type="primary"
                onClick={() => {
                  setCreateError(null);
                  setCreating(true);
                }}
              >
                {t("New topic")}
              </Button>
            )}
          </>
        }
      >
        {t("Topics")}
      </PageTitle>
      <ErrorAlert error={table.error} />
      <Table<Topic>
        rowKey="id"
        loading={table.loading}
        dataSource={table.rows}
        pagination={table.pagination}
        data-testid="topics"
        columns={[
          {
            title: t("Wire name"),
            dataIndex: "topic",
            render: (v: string) => (
              <Button type="link" style={{ padding: 0 }} onClick={() => setOpen(v)} data-topic={v}>
                <Typography.Text code>{v}</Typography.Text>
              </Button>
            ),
          },
          { title: t("Partitions"), dataIndex: "partitions" },
          { title: t("Retention"), dataIndex: "retentionMs", render: (v: number | null) => humanRetention(v, t("forever")) },
          { title: t("Labels"), dataIndex: "labels", render: (v: Record<string, string>) => <Labels labels={v} /> },
          { title: t("Created"), dataIndex: "createdAt", render: (v: string) => <Time value={v} /> },
          ...(canWrite
            ? [{
                title: t("Actions"),
                key: "actions",
                render: (_: unknown, topic: Topic) => (
                  <Popconfirm
                    title={`${t("Delete")} ${topic.topic}?`}
                    description={t("Its messages and subscriptions are deleted with it.")}
                    onConfirm={() =>
                      del(`/api/admin/topics/${encodeURIComponent(topic.topic)}`).then(
                        () => {
                          if (open === topic.topic) setOpen(null);
                          table.reload();
                        },
                        (e: Error) => message.error(e.message),
                      )
                    }
                  >
                    <Button size="small" danger>{t("Delete")}</Button>
                  </Popconfirm>
                ),
              }]
            : []),
        ]}
      />
      {open && <TopicDrawer key={open} wire={open} onClose={() => setOpen(null)} />}
      <Modal open={creating} title={t("New topic")} onOk={() => void create()} onCancel={() => setCreating(false)} okText={t("Create")} width={600} forceRender>
        <ErrorAlert error={createError} />
        <Form
          form={form}
          name="topic-create"
          layout="vertical"
          initialValues={{ tenant: "default", partitions: 3, replication: 1, retentionUnit: 24 * HOUR, auditPublish: false }}
        >
          <Form.Item name="namespace" label={t("Namespace")} rules={[fragmentRule(t)]} extra={t("1-80 of A-Z, a-z, 0-9, '_', '-'; no dots.")}>
            <Input placeholder="shop" />
          </Form.Item>
          <Form.Item name="tenant" label={t("Tenant")} rules={[fragmentRule(t)]}>
            <Input />
          </Form.Item>
          <Form.Item name="name" label={t("Name")} rules={[fragmentRule(t)]}>
            <Input placeholder="orders" />
          </Form.Item>
          <Form.Item noStyle shouldUpdate>
            {({ getFieldValue }) => {
              const parts = ["namespace", "tenant", "name"].map((k) => String(getFieldValue(k) ?? "").trim());
              return parts.every((p) => !fragmentProblem(p)) ? (
                <Typography.Paragraph type="secondary">
                  {t("Wire name")}: <Typography.Text code data-testid="wire-preview">{wireName(parts[0]!, parts[1]!, parts[2]!)}</Typography.Text>
                </Typography.Paragraph>
              ) : null;
            }}
          </Form.Item>
          <Form.Item name="partitions" label={t("Partitions")} rules={[{ required: true }]}>
            <InputNumber min={1} max={64} />
          </Form.Item>
          <Form.Item name="replication" label={t("Replication")} rules={[{ required: true }]}>
            <InputNumber min={1} max={5} />
          </Form.Item>
          <Form.Item label={t("Retention")} extra={t("Empty: kept until the topic is deleted.")}>
            <Space.Compact>
              <Form.Item name="retention" noStyle>
                <InputNumber min={1} aria-label={t("Retention")} style={{ width: 140 }} />
              </Form.Item>
              <Form.Item name="retentionUnit" noStyle>
                <Select aria-label={t("Retention unit")} options={UNITS} style={{ width: 90 }} />
              </Form.Item>
            </Space.Compact>
          </Form.Item>
          <Form.Item name="description" label={t("Description")} rules={[{ max: 1000 }]}>
            <Input.TextArea rows={2} />
          </Form.Item>
          <Form.Item
            name="labels"
            label={t("Labels")}
            extra={t("key=value, separated by commas")}
            rules={[
              {
                validator: async (_: unknown, v: string | undefined) => {
                  const parsed = parseLabels(v);
                  if (isProblem(parsed)) throw new Error(t(parsed.problem, parsed.vars));
                },
              },
            ]}
          >
            <Input placeholder="team=ops, tier=gold" />
          </Form.Item>
          <Form.Item name="auditPublish" label={t("Audit every publish")} valuePropName="checked">
            <Switch />
          </Form.Item>
        </Form>
      </Modal>
    </>
  );
}
