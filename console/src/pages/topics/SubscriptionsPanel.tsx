// A topic's durable subscriptions (ADR 0015) with their lag per partition and in total.
// Their changes (created, deleted, acked, dead-lettered) arrive on the live stream.
import { useCallback, useEffect, useState } from "react";
import { App, Button, Form, Input, InputNumber, Modal, Popconfirm, Radio, Table, Tag, Typography } from "antd";
import { del, list, post } from "../../api/client";
import type { PartitionPosition, TopicSubscription, TopicSubscriptionCreateRequest } from "../../api/types";
import { ErrorAlert, expandIcon, Time } from "../../components/common";
import { useI18n } from "../../i18n";
import { useLive } from "../../live";
import { SUBSCRIPTION_NAME } from "../../lib/topics";
import { useCan } from "../../session";

const enc = encodeURIComponent;

interface SubscriptionForm {
  name: string;
  from: "earliest" | "latest";
  maxDeliveries?: number | null;
  dlqTopic?: string;
}

export function subscriptionBody(v: SubscriptionForm): TopicSubscriptionCreateRequest {
  return {
    topic: null,
    name: v.name.trim(),
    from: v.from,
    maxDeliveries: v.maxDeliveries ?? null,
    dlqTopic: v.dlqTopic?.trim() || null,
  };
}

export function useSubscriptions(topic: string) {
  const [rows, setRows] = useState<TopicSubscription[]>([]);
  const [total, setTotal] = useState(0);
  const [page, setPage] = useState(1);
  const [pageSize, setPageSize] = useState(20);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const load = useCallback(() => {
    setLoading(true);
    list<TopicSubscription>(`/api/admin/topics/${enc(topic)}/subscriptions`, { page, pageSize })
      .then((r) => {
        setRows(r.items);
        setTotal(r.total);
        setError(null);
      }, setError)
      .finally(() => setLoading(false));
  }, [topic, page, pageSize]);
  useEffect(load, [load]);
  useLive(["topic.subscription_changed"], load);
  return {
    rows,
    error,
    loading,
    reload: load,
    pagination: {
      current: page,
      pageSize,
      total,
      onChange: (p: number, s: number) => {
        setPage(p);
        setPageSize(s);
      },
    },
  };
}

export function SubscriptionsPanel({ topic }: { topic: string }) {
  const { t } = useI18n();
  const { message } = App.useApp();
  const canWrite = useCan("topics:write");
  const subs = useSubscriptions(topic);
  const [creating, setCreating] = useState(false);
  const [createError, setCreateError] = useState<unknown>(null);
  const [form] = Form.useForm<SubscriptionForm>();
  const create = async () => {
    const values = await form.validateFields();
    try {
      await post(`/api/admin/topics/${enc(topic)}/subscriptions`, subscriptionBody(values));
      message.success(t("Subscription created"));
      setCreating(false);
      form.resetFields();
      subs.reload();
    } catch (e) {
      setCreateError(e);
    }
  };
  return (
    <>
      {canWrite && (
        <Button
          type="primary"
          style={{ marginBottom: 12 }}
          onClick={() => {
            setCreateError(null);
            setCreating(true);
          }}
        >
          {t("New subscription")}
        </Button>
      )}
      <ErrorAlert error={subs.error} />
      <Table<TopicSubscription>
        rowKey="id"
        size="small"
        loading={subs.loading}
        dataSource={subs.rows}
        pagination={subs.pagination}
        data-testid="subscriptions"
        expandable={{
          expandedRowRender: (s) => (
            <Table<PartitionPosition>
              rowKey="partition"
              size="small"
              pagination={false}
              dataSource={s.partitions}
              columns={[
                { title: t("Partition"), dataIndex: "partition" },
                { title: t("Committed"), dataIndex: "committed" },
                { title: t("End offset"), dataIndex: "end" },
                { title: t("Lag"), dataIndex: "lag" },
              ]}
            />
          ),
          expandIcon: expandIcon(t("Show partitions"), t("Hide partitions")),
        }}
        columns={[
          { title: t("Name"), dataIndex: "name", render: (v: string) => <Typography.Text code style={{ whiteSpace: "nowrap" }}>{v}</Typography.Text> },
          {
            title: t("Lag"),
            dataIndex: "lag",
            render: (v: number) => (
              <Tag color={v > 0 ? "orange" : "green"} data-testid="subscription-lag">
                {v}
              </Tag>
            ),
          },
          {
            title: t("Lag per partition"),
            key: "partitions",
            render: (_: unknown, s) => s.partitions.map((p) => `${p.partition}:${p.lag}`).join(" · "),
          },
          { title: t("Max deliveries"), dataIndex: "maxDeliveries", render: (v: number | null) => v ?? "—" },
          { title: t("DLQ topic"), dataIndex: "dlqTopic", render: (v: string | null) => (v ? <Typography.Text code>{v}</Typography.Text> : "—") },
          { title: t("Created"), dataIndex: "createdAt", render: (v: string) => <Time value={v} /> },
          ...(canWrite
            ? [{
                title: t("Actions"),
                key: "actions",
                render: (_: unknown, s: TopicSubscription) => (
                  <Popconfirm
                    title={`${t("Delete")} ${s.name}?`}
                    onConfirm={() =>
                      del(`/api/admin/topics/${enc(topic)}/subscriptions/${enc(s.name)}`).then(subs.reload, (e: Error) => message.error(e.message))
                    }
                  >
                    <Button size="small" danger>{t("Delete")}</Button>
                  </Popconfirm>
                ),
              }]
            : []),
        ]}
      />
      <Modal open={creating} title={t("New subscription")} onOk={() => void create()} onCancel={() => setCreating(false)} okText={t("Create")} forceRender>
        <ErrorAlert error={createError} />
        <Form form={form} name="subscription-create" layout="vertical" initialValues={{ from: "latest" }}>
          <Form.Item
            name="name"
            label={t("Name")}
            rules={[{ required: true }, { pattern: SUBSCRIPTION_NAME, message: t("1-200 of A-Z, a-z, 0-9, '_', '.', ':', '-'") }]}
          >
            <Input />
          </Form.Item>
          <Form.Item name="from" label={t("Start from")}>
            <Radio.Group options={[{ value: "latest", label: t("Latest") }, { value: "earliest", label: t("Earliest") }]} />
          </Form.Item>
          <Form.Item name="dlqTopic" label={t("DLQ topic")} extra={t("An existing topic of the same tenant.")}>
            <Input placeholder="shop.default.orders-dlq" />
          </Form.Item>
          <Form.Item
            name="maxDeliveries"
            label={t("Max deliveries")}
            dependencies={["dlqTopic"]}
            rules={[
              ({ getFieldValue }) => ({
                validator: async (_: unknown, v: number | null | undefined) => {
                  if (v && !String(getFieldValue("dlqTopic") ?? "").trim()) throw new Error(t("Max deliveries needs a DLQ topic."));
                },
              }),
            ]}
          >
            <InputNumber min={1} max={1000} />
          </Form.Item>
        </Form>
      </Modal>
    </>
  );
}
