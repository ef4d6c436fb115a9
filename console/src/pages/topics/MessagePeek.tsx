// The latest messages of a topic (or a DLQ, an ordinary topic: ADR 0015), read through the
// admin peek, which consumes nothing. Refreshed on demand: a publish emits no live event.
import { useCallback, useEffect, useState } from "react";
import { Button, InputNumber, Select, Space, Table, Tag, Typography } from "antd";
import { get } from "../../api/client";
import type { TopicMessage, TopicMessages } from "../../api/types";
import { ErrorAlert, expandIcon, JsonBlock, Time } from "../../components/common";
import { useI18n } from "../../i18n";
import { payloadPreview, splitHeaders } from "../../lib/topics";

const enc = encodeURIComponent;

export function usePeek(topic: string, partition?: number, from?: number, limit = 20) {
  const [data, setData] = useState<TopicMessages | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const load = useCallback(() => {
    setLoading(true);
    get<TopicMessages>(`/api/admin/topics/${enc(topic)}/messages`, { partition, from, limit })
      .then((d) => {
        setData(d);
        setError(null);
      }, setError)
      .finally(() => setLoading(false));
  }, [topic, partition, from, limit]);
  useEffect(load, [load]);
  return { data, error, loading, reload: load };
}

function Headers({ headers, dlq }: { headers: Record<string, string>; dlq: boolean }) {
  const { origin, own } = splitHeaders(headers);
  return (
    <Space size={[4, 4]} wrap>
      {Object.entries(dlq ? origin : {}).map(([k, v]) => (
        <Tag key={k} color="purple" data-header={k}>
          {k.replace(/^opstage\./, "")}={v}
        </Tag>
      ))}
      {Object.entries(dlq ? own : headers).map(([k, v]) => (
        <Tag key={k} data-header={k}>
          {k}={v}
        </Tag>
      ))}
    </Space>
  );
}

export function MessagePeek({ topic, dlq = false }: { topic: string; dlq?: boolean }) {
  const { t } = useI18n();
  const [partition, setPartition] = useState<number | undefined>(undefined);
  const [from, setFrom] = useState<number | undefined>(undefined);
  const [limit, setLimit] = useState(20);
  const peek = usePeek(topic, partition, partition === undefined ? undefined : from, limit);
  const rows = peek.data?.messages ?? [];
  const partitions = peek.data?.partitions.length ?? 0;
  // The latest read comes oldest first; the newest is what an operator looks for.
  const shown = from === undefined ? [...rows].reverse() : rows;
  return (
    <Space direction="vertical" style={{ width: "100%" }}>
      <Space wrap>
        <Select
          aria-label={t("Partition")}
          style={{ minWidth: 160 }}
          value={partition ?? -1}
          onChange={(v: number) => {
            setPartition(v < 0 ? undefined : v);
            setFrom(undefined);
          }}
          options={[{ value: -1, label: t("All partitions") }, ...Array.from({ length: partitions }, (_, p) => ({ value: p, label: `${t("Partition")} ${p}` }))]}
        />
        <InputNumber
          aria-label={t("From offset")}
          placeholder={t("From offset")}
          min={0}
          disabled={partition === undefined}
          value={from ?? null}
          onChange={(v) => setFrom(v === null ? undefined : Number(v))}
          style={{ width: 150 }}
        />
        <Select
          aria-label={t("Limit")}
          value={limit}
          onChange={setLimit}
          options={[10, 20, 50, 100].map((n) => ({ value: n, label: `${n}` }))}
        />
        <Button onClick={peek.reload} data-testid={dlq ? "dlq-refresh" : "peek-refresh"}>
          {t("Refresh")}
        </Button>
        {from !== undefined && peek.data?.nextFrom != null && (
          <Button onClick={() => setFrom(peek.data?.nextFrom ?? undefined)}>{t("Next")}</Button>
        )}
      </Space>
      <ErrorAlert error={peek.error} />
      <Table<TopicMessage>
        rowKey={(m) => `${m.partition}:${m.offset}`}
        size="small"
        loading={peek.loading}
        dataSource={shown}
        pagination={false}
        data-testid={dlq ? "dlq-messages" : "topic-messages"}
        locale={{ emptyText: t("No messages") }}
        expandable={{
          expandedRowRender: (m) => <JsonBlock value={m.payload} />,
          expandIcon: expandIcon(t("Show payload"), t("Hide payload")),
        }}
        columns={[
          { title: t("Partition"), dataIndex: "partition", width: 90 },
          { title: t("Offset"), dataIndex: "offset", width: 90 },
          { title: t("Key"), dataIndex: "key", render: (v: string | null) => (v ? <Typography.Text code style={{ whiteSpace: "nowrap" }}>{v}</Typography.Text> : "—") },
          // The whole payload is one click away (the row's expand button).
          { title: t("Payload"), dataIndex: "payload", ellipsis: true, render: (v: unknown) => <Typography.Text code>{payloadPreview(v)}</Typography.Text> },
          { title: dlq ? t("Origin and headers") : t("Headers"), dataIndex: "headers", width: "40%", render: (v: Record<string, string>) => <Headers headers={v} dlq={dlq} /> },
          { title: t("Time"), dataIndex: "timestamp", render: (v: string) => <Time value={v} /> },
        ]}
      />
    </Space>
  );
}
