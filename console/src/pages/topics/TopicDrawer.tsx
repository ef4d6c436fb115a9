// One topic: its settings and partition figures, its messages (a peek), its durable
// subscriptions with their lag, and the messages of their DLQs with the origin headers.
import { useCallback, useEffect, useState } from "react";
import { Descriptions, Drawer, Empty, Select, Space, Table, Tabs, Tag, Typography } from "antd";
import { get } from "../../api/client";
import type { Topic, TopicPartitionBounds } from "../../api/types";
import { ErrorAlert, Time } from "../../components/common";
import { useI18n } from "../../i18n";
import { useLive } from "../../live";
import { humanRetention } from "../../lib/topics";
import { MessagePeek, usePeek } from "./MessagePeek";
import { SubscriptionsPanel, useSubscriptions } from "./SubscriptionsPanel";

function useTopic(wire: string) {
  const [topic, setTopic] = useState<Topic | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(() => {
    get<Topic>(`/api/admin/topics/${encodeURIComponent(wire)}`).then((t) => {
      setTopic(t);
      setError(null);
    }, setError);
  }, [wire]);
  useEffect(load, [load]);
  useLive(["topic.changed"], load);
  return { topic, error };
}

export function Labels({ labels }: { labels: Record<string, string> }) {
  const entries = Object.entries(labels);
  if (!entries.length) return <>—</>;
  return (
    <Space size={[4, 4]} wrap>
      {entries.map(([k, v]) => (
        <Tag key={k}>
          {k}={v}
        </Tag>
      ))}
    </Space>
  );
}

function Overview({ topic }: { topic: Topic }) {
  const { t } = useI18n();
  const peek = usePeek(topic.topic, undefined, undefined, 1);
  useLive(["topic.subscription_changed"], peek.reload);
  return (
    <Space direction="vertical" style={{ width: "100%" }} size="large">
      <Descriptions bordered size="small" column={1}>
        <Descriptions.Item label={t("Wire name")}><Typography.Text code copyable>{topic.topic}</Typography.Text></Descriptions.Item>
        <Descriptions.Item label={t("Namespace")}>{topic.namespace}</Descriptions.Item>
        <Descriptions.Item label={t("Tenant")}>{topic.tenant}</Descriptions.Item>
        <Descriptions.Item label={t("Name")}>{topic.name}</Descriptions.Item>
        <Descriptions.Item label={t("Partitions")}>{topic.partitions}</Descriptions.Item>
        <Descriptions.Item label={t("Replication")}>{topic.replication}</Descriptions.Item>
        <Descriptions.Item label={t("Retention")}>{humanRetention(topic.retentionMs, t("forever"))}</Descriptions.Item>
        <Descriptions.Item label={t("Audit every publish")}>{topic.auditPublish ? t("Yes") : t("No")}</Descriptions.Item>
        <Descriptions.Item label={t("Description")}>{topic.description || "—"}</Descriptions.Item>
        <Descriptions.Item label={t("Labels")}><Labels labels={topic.labels} /></Descriptions.Item>
        <Descriptions.Item label={t("Created")}><Time value={topic.createdAt} /></Descriptions.Item>
      </Descriptions>
      <ErrorAlert error={peek.error} />
      <Table<TopicPartitionBounds>
        rowKey="partition"
        size="small"
        pagination={false}
        loading={peek.loading}
        dataSource={peek.data?.partitions ?? []}
        data-testid="partition-bounds"
        columns={[
          { title: t("Partition"), dataIndex: "partition" },
          { title: t("First offset"), dataIndex: "firstOffset" },
          { title: t("End offset"), dataIndex: "endOffset" },
          { title: t("Messages held"), dataIndex: "messages" },
        ]}
      />
    </Space>
  );
}

function DlqPanel({ topic }: { topic: string }) {
  const { t } = useI18n();
  const subs = useSubscriptions(topic);
  const dlqs = [...new Set(subs.rows.map((s) => s.dlqTopic).filter((d): d is string => Boolean(d)))];
  const [chosen, setChosen] = useState<string | undefined>(undefined);
  const dlq = chosen && dlqs.includes(chosen) ? chosen : dlqs[0];
  if (!subs.loading && !dlqs.length) return <Empty description={t("No subscription of this topic has a DLQ.")} />;
  return (
    <Space direction="vertical" style={{ width: "100%" }}>
      <ErrorAlert error={subs.error} />
      <Select aria-label={t("DLQ topic")} style={{ minWidth: 320 }} value={dlq} onChange={setChosen} options={dlqs.map((d) => ({ value: d, label: d }))} />
      {dlq && <MessagePeek key={dlq} topic={dlq} dlq />}
    </Space>
  );
}

export function TopicDrawer({ wire, onClose }: { wire: string; onClose: () => void }) {
  const { t } = useI18n();
  const { topic, error } = useTopic(wire);
  const [tab, setTab] = useState("overview");
  return (
    <Drawer open title={<Typography.Text code>{wire}</Typography.Text>} width={1080} onClose={onClose} destroyOnClose data-testid="topic-drawer">
      <ErrorAlert error={error} />
      {topic && (
        <Tabs
          activeKey={tab}
          onChange={setTab}
          destroyInactiveTabPane
          items={[
            { key: "overview", label: t("Overview"), children: <Overview topic={topic} /> },
            { key: "messages", label: t("Messages"), children: <MessagePeek topic={wire} /> },
            { key: "subscriptions", label: t("Subscriptions"), children: <SubscriptionsPanel topic={wire} /> },
            { key: "dlq", label: t("Dead letters"), children: <DlqPanel topic={wire} /> },
          ]}
        />
      )}
    </Drawer>
  );
}
