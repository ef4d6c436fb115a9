import { useCallback, useEffect, useState } from "react";
import { Button, Card, Descriptions, Drawer, Empty, Space, Table, Tabs, Tag, Typography } from "antd";
import { get } from "../../api/client";
import type { ActionDefinition, ConfigItem, ServiceDetail } from "../../api/types";
import { ErrorAlert, JsonBlock, ShortId, Status, Time } from "../../components/common";
import { useI18n } from "../../i18n";
import { useLive } from "../../live";
import { statusColor } from "../../lib/format";
import { useCan } from "../../session";
import { ActionModal, needsConfirmation } from "./ActionModal";

export function groupActions(actions: ActionDefinition[]): [string, ActionDefinition[]][] {
  const groups = new Map<string, ActionDefinition[]>();
  for (const a of actions) {
    const key = a.category || "General";
    groups.set(key, [...(groups.get(key) ?? []), a]);
  }
  return [...groups.entries()];
}

export function maskedValue(item: ConfigItem): string {
  if (item.sensitive) return item.secretRef ? `•••••• (${item.secretRef})` : "••••••";
  return item.valuePreview ?? item.defaultValue ?? "—";
}

export function ServiceDrawer({ serviceId, onClose }: { serviceId: string; onClose: () => void }) {
  const { t } = useI18n();
  const canRun = useCan("actions:execute");
  const [service, setService] = useState<ServiceDetail | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [open, setOpen] = useState<{ action: ActionDefinition; preset?: Record<string, unknown> } | null>(null);
  const load = useCallback(() => {
    get<ServiceDetail>(`/api/admin/capsule-services/${serviceId}`).then(setService, setError);
  }, [serviceId]);
  useEffect(load, [load]);
  useLive(["service."], load, 300);
  const actions = (service?.actions ?? []) as ActionDefinition[];
  const openAction = (name: string, preset?: Record<string, unknown>) => {
    const action = actions.find((a) => a.name === name);
    if (action) setOpen({ action, preset });
  };

  return (
    <Drawer open width={820} onClose={onClose} title={service ? `${service.name} (${service.code})` : t("Service")}>
      <ErrorAlert error={error} />
      {service && (
        <Tabs
          items={[
            {
              key: "overview",
              label: t("Details"),
              children: (
                <Descriptions bordered size="small" column={1}>
                  <Descriptions.Item label={t("Id")}><ShortId id={service.id} /></Descriptions.Item>
                  <Descriptions.Item label={t("Status")}><Status value={service.status} /></Descriptions.Item>
                  <Descriptions.Item label={t("Health")}><Status value={service.healthStatus} /></Descriptions.Item>
                  <Descriptions.Item label={t("Version")}>{service.version ?? "—"}</Descriptions.Item>
                  <Descriptions.Item label={t("Agent")}><ShortId id={service.agentId} /></Descriptions.Item>
                  <Descriptions.Item label={t("Description")}>{service.description ?? "—"}</Descriptions.Item>
                  <Descriptions.Item label={t("Updated")}><Time value={service.lastReportedAt} /></Descriptions.Item>
                </Descriptions>
              ),
            },
            {
              key: "actions",
              label: t("Actions"),
              children: actions.length ? (
                <Space direction="vertical" style={{ width: "100%" }}>
                  {groupActions(actions).map(([category, items]) => (
                    <Card key={category} size="small" title={category === "General" ? t("General") : category}>
                      <Table<ActionDefinition>
                        size="small"
                        rowKey="name"
                        pagination={false}
                        dataSource={items}
                        columns={[
                          { title: t("Action"), dataIndex: "label", render: (v: string, a) => <><b>{v || a.name}</b> <Typography.Text type="secondary" code>{a.name}</Typography.Text></> },
                          { title: t("Description"), dataIndex: "description" },
                          { title: t("Danger"), dataIndex: "dangerLevel", render: (v: string, a) => <Space size={4}><Tag color={statusColor(v)}>{v}</Tag>{needsConfirmation(a) && <Tag>{t("confirm")}</Tag>}</Space> },
                          ...(canRun
                            ? [{
                                key: "run",
                                title: "",
                                render: (_: unknown, a: ActionDefinition) => (
                                  <Button size="small" type="primary" onClick={() => openAction(a.name)} aria-label={`${t("Run")} ${a.name}`} data-action={a.name}>
                                    {t("Run")}
                                  </Button>
                                ),
                              }]
                            : []),
                        ]}
                      />
                    </Card>
                  ))}
                </Space>
              ) : (
                <Empty />
              ),
            },
            {
              key: "health",
              label: t("Health"),
              children: service.health ? (
                <Descriptions bordered size="small" column={1}>
                  <Descriptions.Item label={t("Status")}><Status value={service.health.status} /></Descriptions.Item>
                  <Descriptions.Item label={t("Message")}>{service.health.message ?? "—"}</Descriptions.Item>
                  <Descriptions.Item label={t("Time")}><Time value={service.health.reportedAt} /></Descriptions.Item>
                  <Descriptions.Item label={t("Details")}><JsonBlock value={service.health.details ?? {}} /></Descriptions.Item>
                </Descriptions>
              ) : (
                <Empty />
              ),
            },
            {
              key: "configs",
              label: t("Configs"),
              children: (
                <Table<ConfigItem>
                  size="small"
                  rowKey="key"
                  pagination={false}
                  dataSource={service.configs ?? []}
                  columns={[
                    { title: t("Key"), dataIndex: "key", render: (v: string, c) => <><Typography.Text code>{v}</Typography.Text> {c.label}</> },
                    { title: t("Value"), key: "value", render: (_: unknown, c) => <span data-sensitive={c.sensitive || undefined}>{maskedValue(c)}</span> },
                    { title: t("Source"), dataIndex: "source" },
                    { title: t("Sensitive"), dataIndex: "sensitive", render: (v: boolean) => (v ? <Tag color="red">{t("Sensitive")}</Tag> : null) },
                  ]}
                />
              ),
            },
            { key: "manifest", label: t("Manifest"), children: <JsonBlock value={service.manifest ?? {}} /> },
          ]}
        />
      )}
      {open && service && (
        <ActionModal
          key={open.action.name + JSON.stringify(open.preset ?? {})}
          serviceId={service.id}
          action={open.action}
          preset={open.preset}
          onClose={() => setOpen(null)}
          onOpenAction={openAction}
        />
      )}
    </Drawer>
  );
}
